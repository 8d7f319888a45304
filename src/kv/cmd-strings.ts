/** String commands. Values are binary strings; integers are int64 (bigint beyond 2^53). */
import type { Ctx } from './context.js';
import { fail, msg } from './errors.js';
import { arg, clampRange, type ImplTable, stringBytesMax, upper } from './impl.js';
import {
  formatFloatHuman,
  intValue,
  parseFloatArg,
  parseInt64,
  parseLong,
  tryParseFloat,
  tryParseInt64,
} from './parse.js';
import { array, bulk, bulkOrNull, integer, nullReply, ok, type Reply } from './reply.js';

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;

type Expiry =
  | { readonly kind: 'none' }
  | { readonly kind: 'keep' }
  | { readonly kind: 'persist' }
  | { readonly kind: 'relative'; readonly ms: bigint }
  | { readonly kind: 'absolute'; readonly ms: bigint };

interface SetArgs {
  readonly nx: boolean;
  readonly xx: boolean;
  readonly get: boolean;
  readonly expiry: Expiry;
}

/** Parses an expiry amount (EX/PX/EXAT/PXAT) with Redis's validity checks. */
function expiryAmount(raw: string, unitMs: bigint, absolute: boolean, name: string): Expiry {
  const v = parseInt64(raw);
  const invalid = `ERR invalid expire time in '${name}' command`;
  if (v <= 0n) fail(invalid);
  if (unitMs === 1000n && v > int64Max / 1000n) fail(invalid);
  const ms = v * unitMs;
  return absolute ? { kind: 'absolute', ms } : { kind: 'relative', ms };
}

function parseExpiryOption(
  argv: readonly string[],
  i: number,
  name: string,
): [Expiry, number] | undefined {
  const o = upper(arg(argv, i));
  const units: Record<string, [bigint, boolean]> = {
    EX: [1000n, false],
    PX: [1n, false],
    EXAT: [1000n, true],
    PXAT: [1n, true],
  };
  const u = units[o];
  if (u === undefined) return undefined;
  if (i + 1 >= argv.length) fail(msg.syntax);
  return [expiryAmount(arg(argv, i + 1), u[0], u[1], name), 2];
}

const noExpiry: Expiry = { kind: 'none' };
/** SET key value: no options, no object per command (the common case). */
const plainSet: SetArgs = { nx: false, xx: false, get: false, expiry: noExpiry };

function parseSet(argv: readonly string[]): SetArgs {
  if (argv.length === 3) return plainSet;
  let nx = false;
  let xx = false;
  let get = false;
  let expiry = noExpiry;
  for (let i = 3; i < argv.length; ) {
    const o = upper(arg(argv, i));
    if (o === 'NX' && !xx) nx = true;
    else if (o === 'XX' && !nx) xx = true;
    else if (o === 'GET') get = true;
    else if (o === 'KEEPTTL' && expiry.kind === 'none') expiry = { kind: 'keep' };
    else {
      const e: [Expiry, number] | undefined =
        expiry.kind === 'none' ? parseExpiryOption(argv, i, 'set') : undefined;
      if (e === undefined) fail(msg.syntax);
      expiry = e[0];
      i += e[1];
      continue;
    }
    i++;
  }
  return { nx, xx, get, expiry };
}

function resolveExpiry(ctx: Ctx, e: Expiry, name: string): number {
  if (e.kind === 'relative' || e.kind === 'absolute') {
    const at = e.kind === 'relative' ? e.ms + BigInt(ctx.nowMs) : e.ms;
    if (at > int64Max) fail(`ERR invalid expire time in '${name}' command`);
    return Number(at);
  }
  return 0;
}

/** The shared core of SET and its variants; returns the reply. */
function setGeneric(ctx: Ctx, key: string, value: string, a: SetArgs, name: string): Reply {
  const at = resolveExpiry(ctx, a.expiry, name);
  const old = ctx.lookupForWrite(key);
  let oldReply: Reply = ok;
  if (a.get && old !== undefined) {
    const s = ctx.ks.stringOf(old);
    if (s === undefined) fail(msg.wrongType);
    oldReply = bulk(s);
  } else if (a.get) oldReply = nullReply;
  if ((a.nx && old !== undefined) || (a.xx && old === undefined)) {
    return a.get ? oldReply : nullReply;
  }
  const keep = a.expiry.kind === 'keep' && old !== undefined ? ctx.expireAt(key) : 0;
  if (at !== 0 && at <= ctx.nowMs) {
    // Already expired as of the entry's clock: Redis deletes instead of storing.
    ctx.del(key);
    return oldReply;
  }
  ctx.storeOver(key, old, value, at !== 0 ? at : keep);
  return oldReply;
}

function getString(ctx: Ctx, key: string): string | undefined {
  return ctx.str(key)?.[1];
}

function incrGeneric(ctx: Ctx, key: string, by: bigint): Reply {
  const cur = ctx.str(key, true);
  let base = 0n;
  if (cur !== undefined) {
    const v = tryParseInt64(cur[1]);
    if (v === undefined) fail(msg.notInteger);
    base = v;
  }
  const next = base + by;
  if (next < int64Min || next > int64Max) fail(msg.overflow);
  const s = next.toString();
  if (cur === undefined) ctx.store(key, s);
  else ctx.update(key, cur[0], s);
  return integer(intValue(next));
}

function parseGetex(argv: readonly string[]): Expiry {
  let expiry: Expiry = { kind: 'none' };
  for (let i = 2; i < argv.length; ) {
    if (expiry.kind !== 'none') fail(msg.syntax);
    if (upper(arg(argv, i)) === 'PERSIST') {
      expiry = { kind: 'persist' };
      i++;
      continue;
    }
    const e = parseExpiryOption(argv, i, 'getex');
    if (e === undefined) fail(msg.syntax);
    expiry = e[0];
    i += e[1];
  }
  return expiry;
}

function getex(ctx: Ctx, argv: readonly string[]): Reply {
  const expiry = parseGetex(argv);
  const key = arg(argv, 1);
  const at = resolveExpiry(ctx, expiry, 'getex');
  const cur = ctx.str(key, true);
  if (cur === undefined) return nullReply;
  const [e, value] = cur;
  if (expiry.kind === 'persist' && ctx.expireAt(key) !== 0) ctx.setExpiry(key, e, 0);
  else if (at !== 0) {
    if (at <= ctx.nowMs) ctx.del(key);
    else ctx.setExpiry(key, e, at);
  }
  return bulk(value);
}

function checkPairs(argv: readonly string[]): void {
  if (argv.length % 2 === 0)
    fail(`ERR wrong number of arguments for '${arg(argv, 0).toLowerCase()}' command`);
}

function setexCheck(unitMs: bigint): (argv: readonly string[]) => void {
  return (argv) => {
    expiryAmount(arg(argv, 2), unitMs, false, arg(argv, 0).toLowerCase());
  };
}

function setex(ctx: Ctx, argv: readonly string[], unitMs: bigint): Reply {
  const name = arg(argv, 0).toLowerCase();
  const expiry = expiryAmount(arg(argv, 2), unitMs, false, name);
  return setGeneric(
    ctx,
    arg(argv, 1),
    arg(argv, 3),
    { nx: false, xx: false, get: false, expiry },
    name,
  );
}

function incrbyfloat(ctx: Ctx, argv: readonly string[]): Reply {
  const by = parseFloatArg(arg(argv, 2));
  const key = arg(argv, 1);
  const cur = ctx.str(key, true);
  let base = 0;
  if (cur !== undefined) {
    const v = tryParseFloat(cur[1]);
    if (v === undefined) fail(msg.notFloat);
    base = v;
  }
  const next = base + by;
  if (!Number.isFinite(next)) fail(msg.nanOrInf);
  const s = formatFloatHuman(next);
  if (cur === undefined) ctx.store(key, s);
  else ctx.update(key, cur[0], s);
  return bulk(s);
}

function append(ctx: Ctx, argv: readonly string[]): Reply {
  const key = arg(argv, 1);
  const add = arg(argv, 2);
  const cur = ctx.str(key, true);
  if (cur === undefined) {
    ctx.store(key, add);
    return integer(add.length);
  }
  const len = cur[1].length + add.length;
  if (len > stringBytesMax) fail(msg.tooBig);
  ctx.update(key, cur[0], cur[1] + add);
  return integer(len);
}

function getrange(ctx: Ctx, argv: readonly string[]): Reply {
  const start = parseLong(arg(argv, 2));
  const end = parseLong(arg(argv, 3));
  const v = getString(ctx, arg(argv, 1)) ?? '';
  if (start < 0 && end < 0 && start > end) return bulk('');
  const r = clampRange(start, end, v.length);
  return bulk(r === null ? '' : v.slice(r[0], r[1] + 1));
}

function setrangeCheck(argv: readonly string[]): number {
  const offset = parseLong(arg(argv, 2));
  if (offset < 0) fail(msg.offsetRange);
  if (offset + arg(argv, 3).length > stringBytesMax) fail(msg.tooBig);
  return offset;
}

function setrange(ctx: Ctx, argv: readonly string[]): Reply {
  const offset = setrangeCheck(argv);
  const key = arg(argv, 1);
  const patch = arg(argv, 3);
  const cur = ctx.str(key, true);
  const old = cur?.[1] ?? '';
  if (patch.length === 0) return integer(old.length);
  const padded = old.length < offset ? old + '\0'.repeat(offset - old.length) : old;
  const next = padded.slice(0, offset) + patch + padded.slice(offset + patch.length);
  if (cur === undefined) ctx.store(key, next);
  else ctx.update(key, cur[0], next);
  return integer(next.length);
}

function msetnx(ctx: Ctx, argv: readonly string[]): Reply {
  checkPairs(argv);
  for (let i = 1; i < argv.length; i += 2) {
    if (ctx.lookup(arg(argv, i)) !== undefined) return integer(0);
  }
  for (let i = 1; i < argv.length; i += 2) ctx.store(arg(argv, i), arg(argv, i + 1));
  return integer(1);
}

export const stringCommands: ImplTable = {
  get: { run: (ctx, argv) => bulkOrNull(getString(ctx, arg(argv, 1))) },
  set: {
    check: (argv) => void parseSet(argv),
    run: (ctx, argv) => setGeneric(ctx, arg(argv, 1), arg(argv, 2), parseSet(argv), 'set'),
  },
  setnx: {
    run: (ctx, argv) => {
      const r = setGeneric(
        ctx,
        arg(argv, 1),
        arg(argv, 2),
        {
          nx: true,
          xx: false,
          get: false,
          expiry: { kind: 'none' },
        },
        'setnx',
      );
      return integer(r.kind === 'null' ? 0 : 1);
    },
  },
  setex: { check: setexCheck(1000n), run: (ctx, argv) => setex(ctx, argv, 1000n) },
  psetex: { check: setexCheck(1n), run: (ctx, argv) => setex(ctx, argv, 1n) },
  getset: {
    run: (ctx, argv) =>
      setGeneric(
        ctx,
        arg(argv, 1),
        arg(argv, 2),
        {
          nx: false,
          xx: false,
          get: true,
          expiry: { kind: 'none' },
        },
        'getset',
      ),
  },
  getdel: {
    run: (ctx, argv) => {
      const key = arg(argv, 1);
      const v = getString(ctx, key);
      if (v !== undefined) ctx.del(key);
      return bulkOrNull(v);
    },
  },
  getex: { check: (argv) => void parseGetex(argv), run: getex },
  mget: {
    run: (ctx, argv) =>
      array(
        argv.slice(1).map((k) => {
          const e = ctx.lookup(k);
          const s = e === undefined ? undefined : ctx.ks.stringOf(e);
          return s === undefined ? nullReply : bulk(s);
        }),
      ),
  },
  mset: {
    check: checkPairs,
    run: (ctx, argv) => {
      checkPairs(argv);
      for (let i = 1; i < argv.length; i += 2) ctx.store(arg(argv, i), arg(argv, i + 1));
      return ok;
    },
  },
  msetnx: { check: checkPairs, run: msetnx },
  incr: { run: (ctx, argv) => incrGeneric(ctx, arg(argv, 1), 1n) },
  decr: { run: (ctx, argv) => incrGeneric(ctx, arg(argv, 1), -1n) },
  incrby: {
    check: (argv) => void parseInt64(arg(argv, 2)),
    run: (ctx, argv) => incrGeneric(ctx, arg(argv, 1), parseInt64(arg(argv, 2))),
  },
  decrby: {
    check: (argv) => {
      if (parseInt64(arg(argv, 2)) === int64Min) fail('ERR decrement would overflow');
    },
    run: (ctx, argv) => {
      const by = parseInt64(arg(argv, 2));
      if (by === int64Min) fail('ERR decrement would overflow');
      return incrGeneric(ctx, arg(argv, 1), -by);
    },
  },
  incrbyfloat: { check: (argv) => void parseFloatArg(arg(argv, 2)), run: incrbyfloat },
  append: { run: append },
  strlen: { run: (ctx, argv) => integer(getString(ctx, arg(argv, 1))?.length ?? 0) },
  getrange: { run: getrange },
  setrange: { check: (argv) => void setrangeCheck(argv), run: setrange },
};
