/** The shape of a command implementation and helpers shared by the groups. */
import { constants } from 'node:buffer';
import type { Ctx } from './context.js';
import { fail, msg } from './errors.js';
import { parseLong } from './parse.js';
import { array, bulk, type Reply } from './reply.js';

export interface CommandImpl {
  /**
   * Stateless validation for prepareWrite (syntax, numbers, option
   * conflicts): throws KvError. `run` repeats the same checks at apply.
   */
  readonly check?: (argv: readonly string[]) => void;
  /** Runs the command; throws KvError before mutating anything. */
  readonly run: (ctx: Ctx, argv: readonly string[]) => Reply;
}

export type ImplTable = Readonly<Record<string, CommandImpl>>;

/** Largest string value: Redis's proto-max-bulk-len, capped by V8's string limit. */
export const stringBytesMax = Math.min(512 * 1024 * 1024, constants.MAX_STRING_LENGTH);

/** argv[i], which the arity check guarantees exists. */
export function arg(argv: readonly string[], i: number): string {
  const v = argv[i];
  if (v === undefined) fail(msg.syntax);
  return v;
}

export function upper(s: string): string {
  return s.toUpperCase();
}

export function bulks(values: readonly string[]): Reply {
  return array(values.map(bulk));
}

/** Redis's start/end index normalisation for LRANGE/GETRANGE/ZRANGE: [start, end] or null. */
export function clampRange(start: number, end: number, size: number): [number, number] | null {
  let s = start < 0 ? size + start : start;
  let e = end < 0 ? size + end : end;
  if (s < 0) s = 0;
  if (s > e || s >= size) return null;
  if (e >= size) e = size - 1;
  return [s, e];
}

export interface ScanOptions {
  readonly cursor: number;
  readonly match: string | undefined;
  readonly count: number;
  readonly type: string | undefined;
}

/** Parses `cursor [MATCH p] [COUNT n] [TYPE t]` starting at argv[from]. */
export function parseScan(argv: readonly string[], from: number, allowType: boolean): ScanOptions {
  const c = arg(argv, from);
  if (!/^[0-9]{1,20}$/.test(c)) fail('ERR invalid cursor');
  let match: string | undefined;
  let count = 10;
  let type: string | undefined;
  for (let i = from + 1; i < argv.length; i += 2) {
    const opt = upper(arg(argv, i));
    if (i + 1 >= argv.length) fail(msg.syntax);
    const v = arg(argv, i + 1);
    if (opt === 'MATCH') match = v;
    else if (opt === 'COUNT') {
      count = parseLong(v);
      if (count < 1) fail(msg.syntax);
    } else if (opt === 'TYPE' && allowType) type = v.toLowerCase();
    else fail(msg.syntax);
  }
  return { cursor: Number(c), match, count, type };
}

interface CachedIterator {
  readonly it: Iterator<unknown>;
  readonly generation: number;
}

/**
 * Local (never replicated) cache of live iterators keyed by the collection
 * and the cursor, so a SCAN continuation is O(COUNT). A cursor is the number
 * of elements passed so far; without a cached iterator (another node, or
 * evicted) the scan resumes by skipping that many elements, which stays
 * correct when nothing was deleted meanwhile but may then skip elements.
 */
export class ScanCursors {
  private readonly byCollection = new WeakMap<object, Map<number, CachedIterator>>();
  private static readonly perCollectionMax = 32;

  take<T>(
    collection: object,
    cursor: number,
    generation: number,
    fresh: () => Iterator<T>,
  ): Iterator<T> {
    const m = this.byCollection.get(collection);
    const cached = m?.get(cursor);
    if (cached !== undefined && cached.generation === generation) {
      m?.delete(cursor);
      return cached.it as Iterator<T>;
    }
    const it = fresh();
    for (let i = 0; i < cursor; i++) if (it.next().done === true) break;
    return it;
  }

  put(collection: object, cursor: number, generation: number, it: Iterator<unknown>): void {
    let m = this.byCollection.get(collection);
    if (m === undefined) {
      m = new Map();
      this.byCollection.set(collection, m);
    }
    if (m.size >= ScanCursors.perCollectionMax) {
      const oldest = m.keys().next();
      if (oldest.done !== true) m.delete(oldest.value);
    }
    m.set(cursor, { it, generation });
  }
}

/**
 * One SCAN step over a live collection: examines up to `count` elements
 * starting at `cursor`, returns the next cursor (0 when done) and the
 * elements examined (the caller filters them).
 */
export function scanStep<T>(
  cursors: ScanCursors,
  collection: object,
  generation: number,
  opts: ScanOptions,
  fresh: () => Iterator<T>,
): [number, T[]] {
  const it = cursors.take(collection, opts.cursor, generation, fresh);
  const out: T[] = [];
  let done = false;
  while (out.length < opts.count) {
    const step = it.next();
    if (step.done === true) {
      done = true;
      break;
    }
    out.push(step.value);
  }
  if (done) return [0, out];
  const next = opts.cursor + out.length;
  cursors.put(collection, next, generation, it);
  return [next, out];
}

export function scanReply(cursor: number, items: readonly Reply[]): Reply {
  return array([bulk(String(cursor)), array(items)]);
}
