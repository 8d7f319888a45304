/**
 * The replicated data: 16 databases of keys, each key an entry with a value,
 * an absolute expiry and the log index of its last modification (revision),
 * plus the monotonic clock. Mutations go through `beforeMutate` so that an
 * in-progress snapshot can keep the value it has not written out yet.
 */
import { assert } from '../raft/assert.js';
import { Deque } from './deque.js';
import type { DbKey } from './entry-codec.js';
import { dbCount } from './entry-codec.js';
import { ScanCursors } from './impl.js';
import type { ZSet } from './zset.js';

export type HashValue = Map<string, string>;
export type SetValue = Set<string>;
export type Value = string | HashValue | SetValue | Deque | ZSet;
export type TypeName = 'string' | 'hash' | 'list' | 'set' | 'zset';

export function typeOf(v: Value): TypeName {
  if (typeof v === 'string') return 'string';
  if (v instanceof Map) return 'hash';
  if (v instanceof Set) return 'set';
  if (v instanceof Deque) return 'list';
  return 'zset';
}

export function valueSize(v: Value): number {
  if (typeof v === 'string') return v.length;
  return v.size;
}

export function cloneValue(v: Value): Value {
  if (typeof v === 'string') return v;
  if (v instanceof Map) return new Map(v);
  if (v instanceof Set) return new Set(v);
  return v.clone();
}

/**
 * One key. A class (not a closure or Buffer) to keep per-key overhead to one
 * small object. `expireAtMs` is 0 for no expiry.
 */
export class KeyEntry {
  /** Id of the snapshot that already wrote this entry out (see SnapshotCapture). */
  snapMark = 0;

  constructor(
    public value: Value,
    public expireAtMs: number,
    public revision: number,
  ) {}
}

/**
 * What a snapshot keeps for a key mutated before it was written: a deep copy
 * of its old entry, or nothing (the key did not exist, or was already
 * written). Copying is O(size of that value) once per key per snapshot;
 * cloning a Map measured about 2x faster than encoding it on the spot.
 */
type Undo = KeyEntry | null;

/**
 * The copy-on-write view behind one snapshot. Starting one is O(dbs): it
 * keeps the live Map objects and an empty undo log per db. Before a key is
 * mutated, `preserve` saves its old entry (deep-copied) unless the snapshot has
 * already written it (marked by `snapMark`) or it did not exist at the start.
 * FLUSHDB/FLUSHALL replace the live Map, so the captured one is frozen from
 * then on and needs no undo.
 */
export class SnapshotCapture {
  readonly maps: readonly Map<string, KeyEntry>[];
  readonly undo: Map<string, Undo>[];

  constructor(
    readonly id: number,
    maps: readonly Map<string, KeyEntry>[],
    readonly clockMs: number,
    readonly appliedIndex: number,
  ) {
    this.maps = [...maps];
    this.undo = maps.map(() => new Map<string, Undo>());
  }

  preserve(db: number, key: string, live: Map<string, KeyEntry>): void {
    if (this.maps[db] !== live) return;
    const undo = this.undo[db] as Map<string, Undo>;
    if (undo.has(key)) return;
    const e = live.get(key);
    if (e === undefined || e.snapMark === this.id) undo.set(key, null);
    else undo.set(key, new KeyEntry(cloneValue(e.value), e.expireAtMs, e.revision));
  }

  /** Every key as of the start, each exactly once; pull between applies freely. */
  *records(): Generator<[number, string, KeyEntry]> {
    for (let db = 0; db < this.maps.length; db++) {
      const map = this.maps[db] as Map<string, KeyEntry>;
      const undo = this.undo[db] as Map<string, Undo>;
      for (const [key, e] of map) {
        const u = undo.get(key);
        if (u !== undefined) {
          if (u !== null) {
            undo.set(key, null);
            yield [db, key, u];
          }
          continue;
        }
        if (e.snapMark === this.id) continue;
        e.snapMark = this.id;
        yield [db, key, e];
      }
      for (const [key, u] of undo) {
        if (u !== null) {
          undo.set(key, null);
          yield [db, key, u];
        }
      }
    }
  }
}

export interface DbStats {
  readonly db: number;
  readonly keys: number;
  readonly expires: number;
}

export class Keyspace {
  /** Live key maps, one per db. Replaced (not cleared) by flush; see SnapshotCapture. */
  readonly dbs: Map<string, KeyEntry>[];
  /** Keys with an expiry, per db (derived from the entries; not in snapshots). */
  readonly volatile: Set<string>[];
  /** Invariant: never decreases. max(entry nowMs) over every applied entry. */
  clockMs = 0;
  /** Invariant: strictly increases with each applied entry. */
  appliedIndex = 0;
  private capture: SnapshotCapture | null = null;
  private captureIds = 0;
  private expireCursorDb = 0;
  private expireCursor: Iterator<string> | null = null;
  /** Bumped by flushes, so cached iterators (SCAN) know they are stale. */
  generation = 0;
  /** Local SCAN iterator cache: not replicated, never affects state. */
  readonly scans = new ScanCursors();

  constructor() {
    this.dbs = Array.from({ length: dbCount }, () => new Map<string, KeyEntry>());
    this.volatile = Array.from({ length: dbCount }, () => new Set<string>());
  }

  map(db: number): Map<string, KeyEntry> {
    const m = this.dbs[db];
    assert(m !== undefined, 'db index in range');
    return m;
  }

  /** Must be called before any change to the key's entry, value, expiry or existence. */
  beforeMutate(db: number, key: string): void {
    if (this.capture !== null) this.capture.preserve(db, key, this.map(db));
  }

  startCapture(): SnapshotCapture {
    if (this.capture !== null) {
      throw new Error('kv snapshot: one is already in progress; finish or close it first');
    }
    this.captureIds++;
    this.capture = new SnapshotCapture(this.captureIds, this.dbs, this.clockMs, this.appliedIndex);
    return this.capture;
  }

  endCapture(c: SnapshotCapture): void {
    if (this.capture === c) this.capture = null;
  }

  get capturing(): boolean {
    return this.capture !== null;
  }

  /** Installs a new entry for the key (replacing any). */
  put(db: number, key: string, entry: KeyEntry): void {
    this.beforeMutate(db, key);
    this.map(db).set(key, entry);
    this.trackExpiry(db, key, entry.expireAtMs);
  }

  remove(db: number, key: string): boolean {
    const m = this.map(db);
    if (!m.has(key)) return false;
    this.beforeMutate(db, key);
    m.delete(key);
    (this.volatile[db] as Set<string>).delete(key);
    return true;
  }

  setExpiry(db: number, key: string, entry: KeyEntry, expireAtMs: number): void {
    this.beforeMutate(db, key);
    entry.expireAtMs = expireAtMs;
    this.trackExpiry(db, key, expireAtMs);
  }

  private trackExpiry(db: number, key: string, expireAtMs: number): void {
    const v = this.volatile[db] as Set<string>;
    if (expireAtMs !== 0) v.add(key);
    else if (v.size !== 0) v.delete(key); // no second hash lookup per write without TTLs
  }

  flush(db: number): void {
    this.dbs[db] = new Map();
    this.volatile[db] = new Set();
    this.expireCursor = null;
    this.generation++;
  }

  isExpired(entry: KeyEntry, nowMs: number): boolean {
    return entry.expireAtMs !== 0 && entry.expireAtMs <= nowMs;
  }

  /**
   * Up to `max` expired keys, examining a bounded number of keys with an
   * expiry per call and resuming where the previous call stopped.
   */
  expiredCandidates(nowMs: number, max: number): DbKey[] {
    const now = Math.max(nowMs, this.clockMs);
    const out: DbKey[] = [];
    let budget = Math.max(100, max * 20);
    let dbsVisited = 0;
    while (out.length < max && budget > 0 && dbsVisited < dbCount) {
      const db = this.expireCursorDb;
      if (this.expireCursor === null) this.expireCursor = this.volatile[db]?.values() ?? null;
      const step = this.expireCursor?.next();
      if (step === undefined || step.done === true) {
        this.expireCursor = null;
        this.expireCursorDb = (db + 1) % dbCount;
        dbsVisited++;
        continue;
      }
      budget--;
      const e = this.map(db).get(step.value);
      if (e !== undefined && this.isExpired(e, now)) out.push({ db, key: step.value });
    }
    return out;
  }

  stats(): DbStats[] {
    return this.dbs.map((m, db) => ({
      db,
      keys: m.size,
      expires: (this.volatile[db] as Set<string>).size,
    }));
  }

  /**
   * Approximate heap bytes of the data: sampled entry sizes (up to 64 keys per
   * db, first in iteration order) scaled by the key count.
   */
  approxMemoryBytes(): number {
    let total = 0;
    for (const m of this.dbs) {
      if (m.size === 0) continue;
      let sampled = 0;
      let bytes = 0;
      for (const [k, e] of m) {
        bytes += 120 + k.length + approxValueBytes(e.value);
        if (++sampled >= 64) break;
      }
      total += (bytes / sampled) * m.size;
    }
    return Math.round(total);
  }
}

function approxValueBytes(v: Value): number {
  if (typeof v === 'string') return 16 + v.length;
  let bytes = 64;
  let n = 0;
  const per = (s: string): number => 40 + s.length;
  if (v instanceof Map) {
    for (const [f, x] of v) {
      bytes += per(f) + per(x);
      if (++n >= 16) break;
    }
  } else if (v instanceof Set) {
    for (const x of v) {
      bytes += per(x);
      if (++n >= 16) break;
    }
  } else if (v instanceof Deque) {
    for (const x of v) {
      bytes += per(x) - 24;
      if (++n >= 16) break;
    }
  } else {
    for (const [x] of v.entries()) {
      bytes += per(x) + 120;
      if (++n >= 16) break;
    }
  }
  return n === 0 ? bytes : 64 + ((bytes - 64) / n) * v.size;
}
