/** Hash commands. A hash is a Map field→value. */
import type { Ctx } from './context.js';
import { fail, msg } from './errors.js';
import { arg, bulks, type ImplTable, parseScan, scanReply, scanStep, upper } from './impl.js';
import type { HashValue } from './keyspace.js';
import {
  formatFloatHuman,
  globMatch,
  intValue,
  parseFloatArg,
  parseInt64,
  parseLong,
  tryParseFloat,
  tryParseInt64,
} from './parse.js';
import { sampleDistinct } from './random.js';
import {
  array,
  bulk,
  bulkOrNull,
  emptyArray,
  integer,
  nullReply,
  ok,
  type Reply,
} from './reply.js';

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;

function checkFieldPairs(argv: readonly string[]): void {
  if (argv.length % 2 !== 0) {
    fail(`ERR wrong number of arguments for '${arg(argv, 0).toLowerCase()}' command`);
  }
}

/** The hash for writing: existing (checked type) or a new empty one, not yet stored. */
function hashForWrite(ctx: Ctx, key: string): HashValue {
  const h = ctx.hash(key, true);
  if (h !== undefined) return h[1];
  const fresh: HashValue = new Map();
  ctx.store(key, fresh);
  return fresh;
}

function commit(ctx: Ctx, key: string): void {
  const e = ctx.ks.find(ctx.db, key);
  if (e !== undefined) ctx.touched(key, e);
}

function hset(ctx: Ctx, argv: readonly string[]): number {
  checkFieldPairs(argv);
  const key = arg(argv, 1);
  const h = hashForWrite(ctx, key);
  let added = 0;
  for (let i = 2; i < argv.length; i += 2) {
    const f = arg(argv, i);
    if (!h.has(f)) added++;
    h.set(f, arg(argv, i + 1));
  }
  commit(ctx, key);
  return added;
}

function hget(ctx: Ctx, key: string): HashValue | undefined {
  return ctx.hash(key)?.[1];
}

function hincrby(ctx: Ctx, argv: readonly string[]): Reply {
  const by = parseInt64(arg(argv, 3));
  const key = arg(argv, 1);
  const field = arg(argv, 2);
  const existing = ctx.hash(key, true);
  const old = existing?.[1].get(field);
  let base = 0n;
  if (old !== undefined) {
    const v = tryParseInt64(old);
    if (v === undefined) fail(msg.hashNotInteger);
    base = v;
  }
  const next = base + by;
  if (next < int64Min || next > int64Max) fail(msg.overflow);
  hashForWrite(ctx, key).set(field, next.toString());
  commit(ctx, key);
  return integer(intValue(next));
}

function hincrbyfloat(ctx: Ctx, argv: readonly string[]): Reply {
  const by = parseFloatArg(arg(argv, 3));
  if (!Number.isFinite(by)) fail('ERR value is NaN or Infinity');
  const key = arg(argv, 1);
  const field = arg(argv, 2);
  const existing = ctx.hash(key, true);
  const old = existing?.[1].get(field);
  let base = 0;
  if (old !== undefined) {
    const v = tryParseFloat(old);
    if (v === undefined) fail(msg.hashNotFloat);
    base = v;
  }
  const next = base + by;
  if (!Number.isFinite(next)) fail(msg.nanOrInf);
  const s = formatFloatHuman(next);
  hashForWrite(ctx, key).set(field, s);
  commit(ctx, key);
  return bulk(s);
}

function parseRandCount(argv: readonly string[]): { count: number; withValues: boolean } | null {
  if (argv.length === 2) return null;
  const count = parseLong(arg(argv, 2));
  if (argv.length === 4 && upper(arg(argv, 3)) === 'WITHVALUES') return { count, withValues: true };
  if (argv.length > 3) fail(msg.syntax);
  return { count, withValues: false };
}

function hrandfield(ctx: Ctx, argv: readonly string[]): Reply {
  const opts = parseRandCount(argv);
  const h = hget(ctx, arg(argv, 1));
  if (opts === null) {
    if (h === undefined) return nullReply;
    const fields = sampleDistinct(h.keys(), h.size, 1, ctx);
    return bulkOrNull(fields[0]);
  }
  if (h === undefined || opts.count === 0) return emptyArray;
  let fields: string[];
  if (opts.count > 0) fields = sampleDistinct(h.keys(), h.size, opts.count, ctx);
  else {
    const all = [...h.keys()];
    fields = Array.from({ length: -opts.count }, () => all[ctx.randomInt(all.length)] as string);
  }
  if (!opts.withValues) return bulks(fields);
  return array(fields.flatMap((f) => [bulk(f), bulk(h.get(f) ?? '')]));
}

export const hashCommands: ImplTable = {
  hset: { check: checkFieldPairs, run: (ctx, argv) => integer(hset(ctx, argv)) },
  hmset: {
    check: checkFieldPairs,
    run: (ctx, argv) => {
      hset(ctx, argv);
      return ok;
    },
  },
  hsetnx: {
    run: (ctx, argv) => {
      const key = arg(argv, 1);
      const field = arg(argv, 2);
      if (ctx.hash(key)?.[1].has(field) === true) return integer(0);
      hashForWrite(ctx, key).set(field, arg(argv, 3));
      commit(ctx, key);
      return integer(1);
    },
  },
  hget: { run: (ctx, argv) => bulkOrNull(hget(ctx, arg(argv, 1))?.get(arg(argv, 2))) },
  hmget: {
    run: (ctx, argv) => {
      const h = hget(ctx, arg(argv, 1));
      return array(argv.slice(2).map((f) => bulkOrNull(h?.get(f))));
    },
  },
  hdel: {
    run: (ctx, argv) => {
      const key = arg(argv, 1);
      const found = ctx.hash(key, true);
      if (found === undefined) return integer(0);
      let n = 0;
      for (const f of argv.slice(2)) if (found[1].delete(f)) n++;
      if (n > 0) ctx.touched(key, found[0]);
      return integer(n);
    },
  },
  hexists: {
    run: (ctx, argv) => integer(hget(ctx, arg(argv, 1))?.has(arg(argv, 2)) === true ? 1 : 0),
  },
  hlen: { run: (ctx, argv) => integer(hget(ctx, arg(argv, 1))?.size ?? 0) },
  hkeys: { run: (ctx, argv) => bulks([...(hget(ctx, arg(argv, 1))?.keys() ?? [])]) },
  hvals: { run: (ctx, argv) => bulks([...(hget(ctx, arg(argv, 1))?.values() ?? [])]) },
  hgetall: {
    run: (ctx, argv) => {
      const h = hget(ctx, arg(argv, 1));
      const entries: [Reply, Reply][] = [];
      for (const [f, v] of h ?? []) entries.push([bulk(f), bulk(v)]);
      return { kind: 'map', entries };
    },
  },
  hincrby: { check: (argv) => void parseInt64(arg(argv, 3)), run: hincrby },
  hincrbyfloat: { check: (argv) => void parseFloatArg(arg(argv, 3)), run: hincrbyfloat },
  hstrlen: {
    run: (ctx, argv) => integer(hget(ctx, arg(argv, 1))?.get(arg(argv, 2))?.length ?? 0),
  },
  hscan: {
    run: (ctx, argv) => {
      const novalues = upper(argv[argv.length - 1] ?? '') === 'NOVALUES';
      const opts = parseScan(novalues ? argv.slice(0, -1) : argv, 2, false);
      const h = hget(ctx, arg(argv, 1));
      if (h === undefined) return scanReply(0, []);
      const [next, items] = scanStep(ctx.ks.scans, h, ctx.ks.generation, opts, () => h.entries());
      const out: Reply[] = [];
      for (const [f, v] of items) {
        if (opts.match !== undefined && !globMatch(opts.match, f)) continue;
        out.push(bulk(f));
        if (!novalues) out.push(bulk(v));
      }
      return scanReply(next, out);
    },
  },
  hrandfield: { run: hrandfield },
};
