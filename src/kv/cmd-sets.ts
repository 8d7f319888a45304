/** Set commands. A set is a Set of binary strings. */
import type { Ctx } from './context.js';
import { fail, msg } from './errors.js';
import { arg, type ImplTable, parseScan, scanReply, scanStep } from './impl.js';
import type { SetValue } from './keyspace.js';
import { globMatch, parseLong, parsePositive } from './parse.js';
import { sampleDistinct } from './random.js';
import { bulk, bulkOrNull, emptyArray, integer, nullReply, type Reply } from './reply.js';

function setReply(values: Iterable<string>): Reply {
  const items: Reply[] = [];
  for (const v of values) items.push(bulk(v));
  return { kind: 'set', items };
}

function getSet(ctx: Ctx, key: string): SetValue | undefined {
  return ctx.set(key)?.[1];
}

function sadd(ctx: Ctx, argv: readonly string[]): Reply {
  const key = arg(argv, 1);
  const found = ctx.set(key, true);
  const s: SetValue = found?.[1] ?? new Set();
  let added = 0;
  for (const m of argv.slice(2)) {
    if (!s.has(m)) {
      s.add(m);
      added++;
    }
  }
  if (found === undefined) ctx.store(key, s);
  else if (added > 0) ctx.touched(key, found[0]);
  return integer(added);
}

function srem(ctx: Ctx, argv: readonly string[]): Reply {
  const key = arg(argv, 1);
  const found = ctx.set(key, true);
  if (found === undefined) return integer(0);
  let n = 0;
  for (const m of argv.slice(2)) if (found[1].delete(m)) n++;
  if (n > 0) ctx.touched(key, found[0]);
  return integer(n);
}

function spopCount(argv: readonly string[]): number | undefined {
  if (argv.length > 3) fail(msg.syntax);
  return argv.length === 3 ? parsePositive(arg(argv, 2)) : undefined;
}

function spop(ctx: Ctx, argv: readonly string[]): Reply {
  const count = spopCount(argv);
  const key = arg(argv, 1);
  const found = ctx.set(key, true);
  if (found === undefined) return count === undefined ? nullReply : setReply([]);
  const [e, s] = found;
  const picked = sampleDistinct(s, s.size, count ?? 1, ctx);
  for (const m of picked) s.delete(m);
  if (picked.length > 0) ctx.touched(key, e);
  return count === undefined ? bulkOrNull(picked[0]) : setReply(picked);
}

function srandmember(ctx: Ctx, argv: readonly string[]): Reply {
  if (argv.length > 3) fail(msg.syntax);
  const count = argv.length === 3 ? parseLong(arg(argv, 2)) : undefined;
  const s = getSet(ctx, arg(argv, 1));
  if (count === undefined) {
    if (s === undefined) return nullReply;
    return bulkOrNull(sampleDistinct(s, s.size, 1, ctx)[0]);
  }
  if (s === undefined || count === 0) return emptyArray;
  if (count > 0) return { kind: 'array', items: sampleDistinct(s, s.size, count, ctx).map(bulk) };
  const all = [...s];
  return {
    kind: 'array',
    items: Array.from({ length: -count }, () => bulk(all[ctx.randomInt(all.length)] as string)),
  };
}

/** The sets of keys (missing = empty); WRONGTYPE for any non-set. */
function sources(ctx: Ctx, keys: readonly string[]): SetValue[] {
  return keys.map((k) => getSet(ctx, k) ?? new Set<string>());
}

function inter(sets: SetValue[]): Set<string> {
  if (sets.length === 0) return new Set();
  const sorted = [...sets].sort((a, b) => a.size - b.size);
  const [first, ...rest] = sorted;
  const out = new Set<string>();
  for (const m of first ?? []) if (rest.every((s) => s.has(m))) out.add(m);
  return out;
}

function union(sets: SetValue[]): Set<string> {
  const out = new Set<string>();
  for (const s of sets) for (const m of s) out.add(m);
  return out;
}

function diff(sets: SetValue[]): Set<string> {
  const [first, ...rest] = sets;
  const out = new Set<string>();
  for (const m of first ?? []) if (!rest.some((s) => s.has(m))) out.add(m);
  return out;
}

function store(ctx: Ctx, argv: readonly string[], op: (sets: SetValue[]) => Set<string>): Reply {
  const dst = arg(argv, 1);
  const result = op(sources(ctx, argv.slice(2)));
  ctx.del(dst);
  if (result.size > 0) ctx.store(dst, result);
  return integer(result.size);
}

function parseSintercard(argv: readonly string[]): { keys: string[]; limit: number } {
  const n = parseLong(arg(argv, 1));
  if (n <= 0) fail('ERR numkeys should be greater than 0');
  if (n > argv.length - 2) fail("ERR Number of keys can't be greater than number of args");
  let limit = 0;
  for (let i = 2 + n; i < argv.length; i += 2) {
    if (arg(argv, i).toUpperCase() !== 'LIMIT' || i + 1 >= argv.length) fail(msg.syntax);
    limit = parseLong(arg(argv, i + 1));
    if (limit < 0) fail("ERR LIMIT can't be negative");
  }
  return { keys: argv.slice(2, 2 + n), limit };
}

function smove(ctx: Ctx, argv: readonly string[]): Reply {
  const src = arg(argv, 1);
  const dst = arg(argv, 2);
  const member = arg(argv, 3);
  const from = ctx.set(src, true);
  const to = ctx.set(dst, true);
  if (from === undefined || !from[1].has(member)) return integer(0);
  if (src === dst) return integer(1);
  from[1].delete(member);
  ctx.touched(src, from[0]);
  if (to === undefined) ctx.store(dst, new Set([member]));
  else if (!to[1].has(member)) {
    to[1].add(member);
    ctx.touched(dst, to[0]);
  }
  return integer(1);
}

export const setCommands: ImplTable = {
  sadd: { run: sadd },
  srem: { run: srem },
  smembers: { run: (ctx, argv) => setReply(getSet(ctx, arg(argv, 1)) ?? []) },
  sismember: {
    run: (ctx, argv) => integer(getSet(ctx, arg(argv, 1))?.has(arg(argv, 2)) === true ? 1 : 0),
  },
  smismember: {
    run: (ctx, argv) => {
      const s = getSet(ctx, arg(argv, 1));
      return {
        kind: 'array',
        items: argv.slice(2).map((m) => integer(s?.has(m) === true ? 1 : 0)),
      };
    },
  },
  scard: { run: (ctx, argv) => integer(getSet(ctx, arg(argv, 1))?.size ?? 0) },
  spop: { check: (argv) => void spopCount(argv), run: spop },
  srandmember: { run: srandmember },
  sinter: { run: (ctx, argv) => setReply(inter(sources(ctx, argv.slice(1)))) },
  sunion: { run: (ctx, argv) => setReply(union(sources(ctx, argv.slice(1)))) },
  sdiff: { run: (ctx, argv) => setReply(diff(sources(ctx, argv.slice(1)))) },
  sinterstore: { run: (ctx, argv) => store(ctx, argv, inter) },
  sunionstore: { run: (ctx, argv) => store(ctx, argv, union) },
  sdiffstore: { run: (ctx, argv) => store(ctx, argv, diff) },
  sintercard: {
    run: (ctx, argv) => {
      const { keys, limit } = parseSintercard(argv);
      const n = inter(sources(ctx, keys)).size;
      return integer(limit > 0 ? Math.min(limit, n) : n);
    },
  },
  smove: { run: smove },
  sscan: {
    run: (ctx, argv) => {
      const opts = parseScan(argv, 2, false);
      const s = getSet(ctx, arg(argv, 1));
      if (s === undefined) return scanReply(0, []);
      const [next, items] = scanStep(ctx.ks.scans, s, ctx.ks.generation, opts, () => s.values());
      const out: Reply[] = [];
      for (const m of items)
        if (opts.match === undefined || globMatch(opts.match, m)) out.push(bulk(m));
      return scanReply(next, out);
    },
  },
};
