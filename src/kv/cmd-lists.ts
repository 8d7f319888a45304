/** List commands. A list is a Deque (ring buffer): O(1) at both ends. */
import type { Ctx } from './context.js';
import { Deque } from './deque.js';
import { fail, msg } from './errors.js';
import { arg, bulks, clampRange, type ImplTable, upper } from './impl.js';
import { parseLong, parsePositive } from './parse.js';
import {
  bulk,
  bulkOrNull,
  emptyArray,
  integer,
  nullArray,
  nullReply,
  ok,
  type Reply,
} from './reply.js';

type End = 'left' | 'right';

function getList(ctx: Ctx, key: string): Deque | undefined {
  return ctx.list(key)?.[1];
}

function push(ctx: Ctx, argv: readonly string[], end: End, onlyExisting: boolean): Reply {
  const key = arg(argv, 1);
  const found = ctx.list(key, true);
  if (found === undefined && onlyExisting) return integer(0);
  const list = found?.[1] ?? new Deque();
  for (const v of argv.slice(2)) {
    if (end === 'left') list.pushFront(v);
    else list.pushBack(v);
  }
  if (found === undefined) ctx.store(key, list);
  else ctx.touched(key, found[0]);
  return integer(list.size);
}

function popCount(argv: readonly string[]): number | undefined {
  if (argv.length > 3) fail(msg.syntax);
  return argv.length === 3 ? parsePositive(arg(argv, 2)) : undefined;
}

function pop(ctx: Ctx, argv: readonly string[], end: End): Reply {
  const count = popCount(argv);
  const key = arg(argv, 1);
  const found = ctx.list(key, true);
  if (found === undefined) return count === undefined ? nullReply : nullArray;
  const [e, list] = found;
  if (count === 0) return emptyArray;
  const out: string[] = [];
  for (let i = 0; i < (count ?? 1) && list.size > 0; i++) {
    out.push((end === 'left' ? list.popFront() : list.popBack()) as string);
  }
  ctx.touched(key, e);
  return count === undefined ? bulkOrNull(out[0]) : bulks(out);
}

function lrange(ctx: Ctx, argv: readonly string[]): Reply {
  const start = parseLong(arg(argv, 2));
  const end = parseLong(arg(argv, 3));
  const list = getList(ctx, arg(argv, 1));
  if (list === undefined) return emptyArray;
  const r = clampRange(start, end, list.size);
  return r === null ? emptyArray : bulks(list.slice(r[0], r[1]));
}

function lindex(ctx: Ctx, argv: readonly string[]): Reply {
  const i = parseLong(arg(argv, 2));
  const list = getList(ctx, arg(argv, 1));
  if (list === undefined) return nullReply;
  const j = i < 0 ? list.size + i : i;
  return j >= 0 && j < list.size ? bulk(list.at(j)) : nullReply;
}

function lset(ctx: Ctx, argv: readonly string[]): Reply {
  const i = parseLong(arg(argv, 2));
  const key = arg(argv, 1);
  const found = ctx.list(key, true);
  if (found === undefined) fail(msg.noSuchKey);
  const [e, list] = found;
  const j = i < 0 ? list.size + i : i;
  if (j < 0 || j >= list.size) fail(msg.indexRange);
  list.set(j, arg(argv, 3));
  ctx.touched(key, e);
  return ok;
}

function lrem(ctx: Ctx, argv: readonly string[]): Reply {
  const count = parseLong(arg(argv, 2));
  const key = arg(argv, 1);
  const value = arg(argv, 3);
  const found = ctx.list(key, true);
  if (found === undefined) return integer(0);
  const [e, list] = found;
  const items = list.toArray();
  let removed = 0;
  const limit = count === 0 ? Number.POSITIVE_INFINITY : Math.abs(count);
  if (count >= 0) {
    const kept: string[] = [];
    for (const v of items) {
      if (v === value && removed < limit) removed++;
      else kept.push(v);
    }
    if (removed > 0) list.replaceAll(kept);
  } else {
    const kept: string[] = [];
    for (let i = items.length - 1; i >= 0; i--) {
      const v = items[i] as string;
      if (v === value && removed < limit) removed++;
      else kept.push(v);
    }
    if (removed > 0) list.replaceAll(kept.reverse());
  }
  if (removed > 0) ctx.touched(key, e);
  return integer(removed);
}

function ltrim(ctx: Ctx, argv: readonly string[]): Reply {
  const start = parseLong(arg(argv, 2));
  const end = parseLong(arg(argv, 3));
  const key = arg(argv, 1);
  const found = ctx.list(key, true);
  if (found === undefined) return ok;
  const [e, list] = found;
  const r = clampRange(start, end, list.size);
  if (r === null) list.replaceAll([]);
  else {
    for (let i = list.size - 1; i > r[1]; i--) list.popBack();
    for (let i = 0; i < r[0]; i++) list.popFront();
  }
  ctx.touched(key, e);
  return ok;
}

function parseWhere(s: string): boolean {
  const w = upper(s);
  if (w !== 'BEFORE' && w !== 'AFTER') fail(msg.syntax);
  return w === 'BEFORE';
}

function linsert(ctx: Ctx, argv: readonly string[]): Reply {
  const before = parseWhere(arg(argv, 2));
  const key = arg(argv, 1);
  const found = ctx.list(key, true);
  if (found === undefined) return integer(0);
  const [e, list] = found;
  const items = list.toArray();
  const at = items.indexOf(arg(argv, 3));
  if (at < 0) return integer(-1);
  items.splice(before ? at : at + 1, 0, arg(argv, 4));
  list.replaceAll(items);
  ctx.touched(key, e);
  return integer(list.size);
}

interface LposArgs {
  readonly rank: number;
  readonly count: number | undefined;
  readonly maxlen: number;
}

function parseLpos(argv: readonly string[]): LposArgs {
  let rank = 1;
  let count: number | undefined;
  let maxlen = 0;
  for (let i = 3; i < argv.length; i += 2) {
    const o = upper(arg(argv, i));
    if (i + 1 >= argv.length) fail(msg.syntax);
    const v = arg(argv, i + 1);
    if (o === 'RANK') {
      rank = parseLong(v);
      if (rank === 0) {
        fail(
          "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
        );
      }
    } else if (o === 'COUNT') {
      count = parseLong(v);
      if (count < 0) fail("ERR COUNT can't be negative");
    } else if (o === 'MAXLEN') {
      maxlen = parseLong(v);
      if (maxlen < 0) fail("ERR MAXLEN can't be negative");
    } else fail(msg.syntax);
  }
  return { rank, count, maxlen };
}

function lpos(ctx: Ctx, argv: readonly string[]): Reply {
  const o = parseLpos(argv);
  const list = getList(ctx, arg(argv, 1));
  const want = arg(argv, 2);
  if (list === undefined) return o.count === undefined ? nullReply : emptyArray;
  const matches: number[] = [];
  const limit = o.count === undefined ? 1 : o.count === 0 ? Number.POSITIVE_INFINITY : o.count;
  let skip = Math.abs(o.rank) - 1;
  const n = list.size;
  const scan = o.maxlen === 0 ? n : Math.min(n, o.maxlen);
  for (let k = 0; k < scan && matches.length < limit; k++) {
    const i = o.rank > 0 ? k : n - 1 - k;
    if (list.at(i) !== want) continue;
    if (skip > 0) {
      skip--;
      continue;
    }
    matches.push(i);
  }
  if (o.count === undefined) return matches.length > 0 ? integer(matches[0] as number) : nullReply;
  return { kind: 'array', items: matches.map((i) => integer(i)) };
}

function parseEnd(s: string): End {
  const w = upper(s);
  if (w !== 'LEFT' && w !== 'RIGHT') fail(msg.syntax);
  return w === 'LEFT' ? 'left' : 'right';
}

function lmove(ctx: Ctx, src: string, dst: string, from: End, to: End): Reply {
  const source = ctx.list(src, true);
  const target = ctx.list(dst, true);
  if (source === undefined) return nullReply;
  const [se, list] = source;
  const v = (from === 'left' ? list.popFront() : list.popBack()) as string;
  const dest = src === dst ? list : (target?.[1] ?? new Deque());
  if (to === 'left') dest.pushFront(v);
  else dest.pushBack(v);
  ctx.touched(src, se);
  if (src !== dst) {
    if (target === undefined) ctx.store(dst, dest);
    else ctx.touched(dst, target[0]);
  }
  return bulk(v);
}

const blocking = { check: () => fail(msg.blocking), run: () => fail(msg.blocking) };

export const listCommands: ImplTable = {
  lpush: { run: (ctx, argv) => push(ctx, argv, 'left', false) },
  rpush: { run: (ctx, argv) => push(ctx, argv, 'right', false) },
  lpushx: { run: (ctx, argv) => push(ctx, argv, 'left', true) },
  rpushx: { run: (ctx, argv) => push(ctx, argv, 'right', true) },
  lpop: { check: (argv) => void popCount(argv), run: (ctx, argv) => pop(ctx, argv, 'left') },
  rpop: { check: (argv) => void popCount(argv), run: (ctx, argv) => pop(ctx, argv, 'right') },
  llen: { run: (ctx, argv) => integer(getList(ctx, arg(argv, 1))?.size ?? 0) },
  lrange: { run: lrange },
  lindex: { run: lindex },
  lset: { check: (argv) => void parseLong(arg(argv, 2)), run: lset },
  lrem: { check: (argv) => void parseLong(arg(argv, 2)), run: lrem },
  ltrim: {
    check: (argv) => {
      parseLong(arg(argv, 2));
      parseLong(arg(argv, 3));
    },
    run: ltrim,
  },
  linsert: { check: (argv) => void parseWhere(arg(argv, 2)), run: linsert },
  lpos: { run: lpos },
  lmove: {
    check: (argv) => {
      parseEnd(arg(argv, 3));
      parseEnd(arg(argv, 4));
    },
    run: (ctx, argv) =>
      lmove(ctx, arg(argv, 1), arg(argv, 2), parseEnd(arg(argv, 3)), parseEnd(arg(argv, 4))),
  },
  rpoplpush: { run: (ctx, argv) => lmove(ctx, arg(argv, 1), arg(argv, 2), 'right', 'left') },
  blpop: blocking,
  brpop: blocking,
  blmove: blocking,
};
