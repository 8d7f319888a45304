/** Sorted set commands over ZSet (Map + skip list). */
import type { Ctx } from './context.js';
import { fail, msg } from './errors.js';
import { arg, clampRange, type ImplTable, parseScan, scanReply, upper } from './impl.js';
import { globMatch, parseFloatArg, parseLong, parsePositive, tryParseFloat } from './parse.js';
import { array, bulk, emptyArray, integer, nullReply, type Reply } from './reply.js';
import { type LexBound, type ScoreBound, ZSet } from './zset.js';

function double(value: number): Reply {
  return { kind: 'double', value };
}

function getZset(ctx: Ctx, key: string): ZSet | undefined {
  return ctx.zset(key)?.[1];
}

interface ZaddArgs {
  readonly nx: boolean;
  readonly xx: boolean;
  readonly gt: boolean;
  readonly lt: boolean;
  readonly ch: boolean;
  readonly incr: boolean;
  readonly pairs: readonly (readonly [number, string])[];
}

function parseZadd(argv: readonly string[]): ZaddArgs {
  const f = { nx: false, xx: false, gt: false, lt: false, ch: false, incr: false };
  let i = 2;
  for (; i < argv.length; i++) {
    const o = upper(arg(argv, i));
    if (o === 'NX') f.nx = true;
    else if (o === 'XX') f.xx = true;
    else if (o === 'GT') f.gt = true;
    else if (o === 'LT') f.lt = true;
    else if (o === 'CH') f.ch = true;
    else if (o === 'INCR') f.incr = true;
    else break;
  }
  const rest = argv.length - i;
  if (rest === 0 || rest % 2 !== 0) fail(msg.syntax);
  if (f.nx && f.xx) fail('ERR XX and NX options at the same time are not compatible');
  if ((f.gt && f.nx) || (f.lt && f.nx) || (f.gt && f.lt)) {
    fail('ERR GT, LT, and/or NX options at the same time are not compatible');
  }
  if (f.incr && rest > 2) fail('ERR INCR option supports a single increment-element pair');
  const pairs: [number, string][] = [];
  for (; i < argv.length; i += 2) pairs.push([parseFloatArg(arg(argv, i)), arg(argv, i + 1)]);
  return { ...f, pairs };
}

function zadd(ctx: Ctx, argv: readonly string[]): Reply {
  const a = parseZadd(argv);
  const key = arg(argv, 1);
  const found = ctx.zset(key, true);
  if (found === undefined && a.xx) return a.incr ? nullReply : integer(0);
  const z = found?.[1] ?? new ZSet();
  let added = 0;
  let changed = 0;
  let result: number | undefined;
  for (const [score, member] of a.pairs) {
    const old = z.score(member);
    if ((old !== undefined && a.nx) || (old === undefined && a.xx)) continue;
    let next = score;
    if (a.incr && old !== undefined) {
      next = old + score;
      if (Number.isNaN(next)) fail('ERR resulting score is not a number (NaN)');
    }
    if (old !== undefined && ((a.gt && next <= old) || (a.lt && next >= old))) continue;
    result = next;
    if (old === undefined) added++;
    else if (old !== next) changed++;
    z.set(member, next);
  }
  if (z.size > 0) {
    if (found === undefined) ctx.store(key, z);
    else if (added + changed > 0) ctx.touched(key, found[0]);
  }
  if (a.incr) return result === undefined ? nullReply : double(result);
  return integer(a.ch ? added + changed : added);
}

function zincrby(ctx: Ctx, argv: readonly string[]): Reply {
  const by = parseFloatArg(arg(argv, 2));
  const key = arg(argv, 1);
  const member = arg(argv, 3);
  const found = ctx.zset(key, true);
  const z = found?.[1] ?? new ZSet();
  const next = (z.score(member) ?? 0) + by;
  if (Number.isNaN(next)) fail('ERR resulting score is not a number (NaN)');
  z.set(member, next);
  if (found === undefined) ctx.store(key, z);
  else ctx.touched(key, found[0]);
  return double(next);
}

export function parseScoreBound(s: string): ScoreBound {
  const exclusive = s.startsWith('(');
  const v = tryParseFloat(exclusive ? s.slice(1) : s);
  if (v === undefined) fail(msg.minMaxFloat);
  return { value: v, exclusive };
}

export function parseLexBound(s: string): LexBound {
  if (s === '-') return { kind: 'min' };
  if (s === '+') return { kind: 'max' };
  if (s.startsWith('[')) return { kind: 'value', value: s.slice(1), exclusive: false };
  if (s.startsWith('(')) return { kind: 'value', value: s.slice(1), exclusive: true };
  fail(msg.minMaxLex);
}

type RangeBy = 'rank' | 'score' | 'lex';

interface RangeArgs {
  readonly by: RangeBy;
  readonly rev: boolean;
  readonly min: string;
  readonly max: string;
  readonly offset: number;
  readonly count: number;
  readonly withScores: boolean;
  readonly hasLimit: boolean;
}

/** ZRANGE's grammar (also used by ZRANGESTORE, from argv[first] = min). */
function parseZrange(argv: readonly string[], first: number, store: boolean): RangeArgs {
  let by: RangeBy = 'rank';
  let rev = false;
  let withScores = false;
  let offset = 0;
  let count = -1;
  let hasLimit = false;
  for (let i = first + 2; i < argv.length; i++) {
    const o = upper(arg(argv, i));
    if (o === 'BYSCORE') by = 'score';
    else if (o === 'BYLEX') by = 'lex';
    else if (o === 'REV') rev = true;
    else if (o === 'WITHSCORES' && !store) withScores = true;
    else if (o === 'LIMIT' && i + 2 < argv.length) {
      offset = parseLong(arg(argv, i + 1));
      count = parseLong(arg(argv, i + 2));
      hasLimit = true;
      i += 2;
    } else fail(msg.syntax);
  }
  if (hasLimit && by === 'rank') {
    fail('ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX');
  }
  if (withScores && by === 'lex') {
    fail('ERR syntax error, WITHSCORES not supported in combination with BYLEX');
  }
  const a = arg(argv, first);
  const b = arg(argv, first + 1);
  // With REV and BYSCORE/BYLEX the arguments come as max, min.
  const [min, max] = rev && by !== 'rank' ? [b, a] : [a, b];
  checkBounds(by, min, max);
  return { by, rev, min, max, offset, count, withScores, hasLimit };
}

function checkBounds(by: RangeBy, min: string, max: string): void {
  if (by === 'rank') {
    parseLong(min);
    parseLong(max);
  } else if (by === 'score') {
    parseScoreBound(min);
    parseScoreBound(max);
  } else {
    parseLexBound(min);
    parseLexBound(max);
  }
}

/** The selected elements, in reply order. */
function selectRange(z: ZSet, r: RangeArgs): [string, number][] {
  const n = z.size;
  if (r.by === 'rank') {
    const range = clampRange(parseLong(r.min), parseLong(r.max), n);
    return range === null ? [] : z.rangeByRank(range[0], range[1], r.rev);
  }
  const [from, to] =
    r.by === 'score'
      ? z.scoreRankRange(parseScoreBound(r.min), parseScoreBound(r.max))
      : z.lexRankRange(parseLexBound(r.min), parseLexBound(r.max));
  if (r.offset < 0) return [];
  const total = to - from;
  const skip = Math.min(r.offset, total);
  const take = r.count < 0 ? total - skip : Math.min(r.count, total - skip);
  if (take <= 0) return [];
  // Descending: ranks from the top of [from, to), expressed as reverse ranks.
  if (r.rev) return z.rangeByRank(n - to + skip, n - to + skip + take - 1, true);
  return z.rangeByRank(from + skip, from + skip + take - 1, false);
}

function rangeReply(items: readonly [string, number][], withScores: boolean): Reply {
  const out: Reply[] = [];
  for (const [m, s] of items) {
    out.push(bulk(m));
    if (withScores) out.push(double(s));
  }
  return array(out);
}

function zrange(ctx: Ctx, r: RangeArgs, key: string): Reply {
  const z = getZset(ctx, key);
  if (z === undefined) return emptyArray;
  return rangeReply(selectRange(z, r), r.withScores);
}

/** The legacy forms ZRANGEBYSCORE/ZREVRANGEBYSCORE/ZRANGEBYLEX/ZREVRANGE. */
function legacyRange(argv: readonly string[], by: RangeBy, rev: boolean): RangeArgs {
  let withScores = false;
  let offset = 0;
  let count = -1;
  let hasLimit = false;
  for (let i = 4; i < argv.length; i++) {
    const o = upper(arg(argv, i));
    if (o === 'WITHSCORES' && by !== 'lex') withScores = true;
    else if (o === 'LIMIT' && by !== 'rank' && i + 2 < argv.length) {
      offset = parseLong(arg(argv, i + 1));
      count = parseLong(arg(argv, i + 2));
      hasLimit = true;
      i += 2;
    } else fail(msg.syntax);
  }
  const a = arg(argv, 2);
  const b = arg(argv, 3);
  const [min, max] = rev && by !== 'rank' ? [b, a] : [a, b];
  checkBounds(by, min, max);
  return { by, rev, min, max, offset, count, withScores, hasLimit };
}

function zrank(ctx: Ctx, argv: readonly string[], rev: boolean): Reply {
  if (argv.length > 4 || (argv.length === 4 && upper(arg(argv, 3)) !== 'WITHSCORE')) {
    fail(msg.syntax);
  }
  const z = getZset(ctx, arg(argv, 1));
  const member = arg(argv, 2);
  const rank = z?.rank(member);
  if (z === undefined || rank === undefined) return argv.length === 4 ? nullArray() : nullReply;
  const r = rev ? z.size - 1 - rank : rank;
  if (argv.length === 4) return array([integer(r), double(z.score(member) as number)]);
  return integer(r);
}

function nullArray(): Reply {
  return { kind: 'nullArray' };
}

function zpop(ctx: Ctx, argv: readonly string[], max: boolean): Reply {
  if (argv.length > 3) fail(msg.syntax);
  const count = argv.length === 3 ? parsePositive(arg(argv, 2)) : 1;
  const key = arg(argv, 1);
  const found = ctx.zset(key, true);
  if (found === undefined || count === 0) return emptyArray;
  const [e, z] = found;
  const n = Math.min(count, z.size);
  const items = z.rangeByRank(0, n - 1, max);
  for (const [m] of items) z.delete(m);
  ctx.touched(key, e);
  return rangeReply(items, true);
}

function zrangestore(ctx: Ctx, argv: readonly string[]): Reply {
  const r = parseZrange(argv, 3, true);
  const dst = arg(argv, 1);
  const z = getZset(ctx, arg(argv, 2));
  const items = z === undefined ? [] : selectRange(z, r);
  ctx.del(dst);
  if (items.length > 0) {
    const out = new ZSet();
    for (const [m, s] of items) out.set(m, s);
    ctx.store(dst, out);
  }
  return integer(items.length);
}

function zscan(ctx: Ctx, argv: readonly string[]): Reply {
  const opts = parseScan(argv, 2, false);
  const z = getZset(ctx, arg(argv, 1));
  if (z === undefined || opts.cursor >= z.size) return scanReply(0, []);
  // The cursor is a rank: deterministic and O(log n) to resume.
  const end = Math.min(z.size, opts.cursor + opts.count);
  const out: Reply[] = [];
  for (const [m, s] of z.rangeByRank(opts.cursor, end - 1, false)) {
    if (opts.match !== undefined && !globMatch(opts.match, m)) continue;
    out.push(bulk(m), double(s));
  }
  return scanReply(end >= z.size ? 0 : end, out);
}

const blocking = { check: () => fail(msg.blocking), run: () => fail(msg.blocking) };

export const zsetCommands: ImplTable = {
  zadd: { check: (argv) => void parseZadd(argv), run: zadd },
  zincrby: { check: (argv) => void parseFloatArg(arg(argv, 2)), run: zincrby },
  zrem: {
    run: (ctx, argv) => {
      const key = arg(argv, 1);
      const found = ctx.zset(key, true);
      if (found === undefined) return integer(0);
      let n = 0;
      for (const m of argv.slice(2)) if (found[1].delete(m)) n++;
      if (n > 0) ctx.touched(key, found[0]);
      return integer(n);
    },
  },
  zscore: {
    run: (ctx, argv) => {
      const s = getZset(ctx, arg(argv, 1))?.score(arg(argv, 2));
      return s === undefined ? nullReply : double(s);
    },
  },
  zmscore: {
    run: (ctx, argv) => {
      const z = getZset(ctx, arg(argv, 1));
      return array(
        argv.slice(2).map((m) => {
          const s = z?.score(m);
          return s === undefined ? nullReply : double(s);
        }),
      );
    },
  },
  zcard: { run: (ctx, argv) => integer(getZset(ctx, arg(argv, 1))?.size ?? 0) },
  zcount: {
    run: (ctx, argv) => {
      const min = parseScoreBound(arg(argv, 2));
      const max = parseScoreBound(arg(argv, 3));
      const z = getZset(ctx, arg(argv, 1));
      if (z === undefined) return integer(0);
      const [from, to] = z.scoreRankRange(min, max);
      return integer(to - from);
    },
  },
  zlexcount: {
    run: (ctx, argv) => {
      const min = parseLexBound(arg(argv, 2));
      const max = parseLexBound(arg(argv, 3));
      const z = getZset(ctx, arg(argv, 1));
      if (z === undefined) return integer(0);
      const [from, to] = z.lexRankRange(min, max);
      return integer(to - from);
    },
  },
  zrange: { run: (ctx, argv) => zrange(ctx, parseZrange(argv, 2, false), arg(argv, 1)) },
  zrangebyscore: {
    run: (ctx, argv) => zrange(ctx, legacyRange(argv, 'score', false), arg(argv, 1)),
  },
  zrevrangebyscore: {
    run: (ctx, argv) => zrange(ctx, legacyRange(argv, 'score', true), arg(argv, 1)),
  },
  zrevrange: { run: (ctx, argv) => zrange(ctx, legacyRange(argv, 'rank', true), arg(argv, 1)) },
  zrangebylex: { run: (ctx, argv) => zrange(ctx, legacyRange(argv, 'lex', false), arg(argv, 1)) },
  zrank: { run: (ctx, argv) => zrank(ctx, argv, false) },
  zrevrank: { run: (ctx, argv) => zrank(ctx, argv, true) },
  zpopmin: { run: (ctx, argv) => zpop(ctx, argv, false) },
  zpopmax: { run: (ctx, argv) => zpop(ctx, argv, true) },
  zrangestore: { check: (argv) => void parseZrange(argv, 3, true), run: zrangestore },
  zscan: { run: zscan },
  bzpopmin: blocking,
  bzpopmax: blocking,
};
