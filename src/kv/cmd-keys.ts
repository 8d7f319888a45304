/** Generic key commands: DEL, EXISTS, TYPE, EXPIRE family, TTL family, KEYS, SCAN, RENAME, ... */
import type { Ctx } from './context.js';
import { encodingOf } from './encoding.js';
import { fail, KvError, msg } from './errors.js';
import { arg, type ImplTable, parseScan, scanReply, upper } from './impl.js';
import { cloneValue, refOf } from './keyspace.js';
import { globMatch, parseInt64, parseLong } from './parse.js';
import { array, bulk, integer, nullReply, ok, type Reply, simple } from './reply.js';

const int64Max = 2n ** 63n - 1n;

interface ExpireArgs {
  readonly when: bigint;
  readonly nx: boolean;
  readonly xx: boolean;
  readonly gt: boolean;
  readonly lt: boolean;
}

function parseExpire(argv: readonly string[], name: string, unitMs: number): ExpireArgs {
  const when = parseInt64(arg(argv, 2));
  let nx = false;
  let xx = false;
  let gt = false;
  let lt = false;
  for (let i = 3; i < argv.length; i++) {
    const o = upper(arg(argv, i));
    if (o === 'NX') nx = true;
    else if (o === 'XX') xx = true;
    else if (o === 'GT') gt = true;
    else if (o === 'LT') lt = true;
    else fail(`ERR Unsupported option ${arg(argv, i)}`);
  }
  if (nx && (xx || gt || lt)) {
    fail('ERR NX and XX, GT or LT options at the same time are not compatible');
  }
  if (gt && lt) fail('ERR GT and LT options at the same time are not compatible');
  if (unitMs === 1000 && (when > int64Max / 1000n || when < -int64Max / 1000n)) {
    fail(`ERR invalid expire time in '${name}' command`);
  }
  return { when: when * BigInt(unitMs), nx, xx, gt, lt };
}

function expireGeneric(
  ctx: Ctx,
  argv: readonly string[],
  unitMs: number,
  relative: boolean,
): Reply {
  const name = arg(argv, 0).toLowerCase();
  const a = parseExpire(argv, name, unitMs);
  let at = a.when;
  if (relative) {
    at += BigInt(ctx.nowMs);
    if (at > int64Max) fail(`ERR invalid expire time in '${name}' command`);
  }
  const key = arg(argv, 1);
  const e = ctx.lookupForWrite(key);
  if (e === undefined) return integer(0);
  const current = ctx.expireAt(key);
  const target = Number(at);
  if (a.nx && current !== 0) return integer(0);
  if (a.xx && current === 0) return integer(0);
  if (a.gt && (current === 0 || target <= current)) return integer(0);
  if (a.lt && current !== 0 && target >= current) return integer(0);
  if (target <= ctx.nowMs) {
    ctx.del(key);
    return integer(1);
  }
  ctx.setExpiry(key, e, target);
  return integer(1);
}

function expireCheck(unitMs: number): (argv: readonly string[]) => void {
  return (argv) => {
    parseExpire(argv, arg(argv, 0).toLowerCase(), unitMs);
  };
}

function ttlGeneric(ctx: Ctx, key: string, ms: boolean, absolute: boolean): Reply {
  const e = ctx.lookup(key);
  if (e === undefined) return integer(-2);
  const at = ctx.expireAt(key);
  if (at === 0) return integer(-1);
  let t = absolute ? at : at - ctx.nowMs;
  if (t < 0) t = 0;
  return integer(ms ? t : Math.floor((t + 500) / 1000));
}

function renameGeneric(ctx: Ctx, argv: readonly string[], nx: boolean): Reply {
  const src = arg(argv, 1);
  const dst = arg(argv, 2);
  const e = ctx.lookupForWrite(src);
  if (e === undefined) fail(msg.noSuchKey);
  if (src === dst) return nx ? integer(0) : ok;
  if (nx && ctx.lookup(dst) !== undefined) return integer(0);
  const at = ctx.expireAt(src);
  // Read before the deletes: they free the source's arena slot.
  const value = ctx.ks.valueOf(e);
  ctx.del(dst);
  ctx.del(src);
  ctx.store(dst, value, at);
  return nx ? integer(1) : ok;
}

/** The db's keys that have not expired, in id order. */
function* liveKeys(ctx: Ctx): Generator<string> {
  const t = ctx.ks.table(ctx.db);
  for (let id = 0; id < t.idEnd; id++) {
    if (!t.has(id)) continue;
    const k = t.key(id);
    if (!ctx.ks.isExpired(ctx.db, k, ctx.nowMs)) yield k;
  }
}

function randomKey(ctx: Ctx): Reply {
  const t = ctx.ks.table(ctx.db);
  // A random id, then the first key from there on: O(1) while few ids are free.
  for (let attempt = 0; attempt < 16 && t.size > 0; attempt++) {
    const start = ctx.randomInt(t.idEnd);
    for (let n = 0; n < t.idEnd; n++) {
      const id = (start + n) % t.idEnd;
      if (!t.has(id)) continue;
      const k = t.key(id);
      if (!ctx.ks.isExpired(ctx.db, k, ctx.nowMs)) return bulk(k);
      break;
    }
  }
  for (const k of liveKeys(ctx)) return bulk(k);
  return nullReply;
}

function parseCopy(argv: readonly string[]): { db: number | undefined; replace: boolean } {
  let db: number | undefined;
  let replace = false;
  for (let i = 3; i < argv.length; i++) {
    const o = upper(arg(argv, i));
    if (o === 'REPLACE') replace = true;
    else if (o === 'DB' && i + 1 < argv.length) {
      db = parseLong(arg(argv, ++i));
      if (db < 0 || db >= 16) fail(msg.dbIndex);
    } else fail(msg.syntax);
  }
  return { db, replace };
}

function copy(ctx: Ctx, argv: readonly string[]): Reply {
  const o = parseCopy(argv);
  const src = arg(argv, 1);
  const dst = arg(argv, 2);
  const dstDb = o.db ?? ctx.db;
  if (src === dst && dstDb === ctx.db) fail('ERR source and destination objects are the same');
  const e = ctx.lookup(src);
  if (e === undefined) return integer(0);
  const at = ctx.expireAt(src);
  if (ctx.lookup(dst, dstDb) !== undefined) {
    if (!o.replace) return integer(0);
    ctx.del(dst, dstDb);
  }
  ctx.store(dst, cloneValue(ctx.ks.valueOf(e)), at, dstDb);
  return integer(1);
}

function object(ctx: Ctx, argv: readonly string[]): Reply {
  const sub = upper(arg(argv, 1));
  if (sub === 'HELP') {
    return array(
      [
        'OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
        'ENCODING <key>',
        '    Return the kind of internal representation used in order to store the value',
        '    associated with a <key>.',
        'FREQ <key>',
        '    Not tracked by Tandem.',
        'IDLETIME <key>',
        '    Not tracked by Tandem: always 0.',
        'REFCOUNT <key>',
        '    Return the number of references of the value associated with the specified',
        '    <key>.',
      ].map(simple),
    );
  }
  if (argv.length !== 3 || !['ENCODING', 'FREQ', 'IDLETIME', 'REFCOUNT'].includes(sub)) {
    fail(
      `ERR unknown subcommand or wrong number of arguments for '${arg(argv, 1)}'. Try OBJECT HELP.`,
    );
  }
  const e = ctx.lookup(arg(argv, 2));
  if (e === undefined) return nullReply;
  if (sub === 'ENCODING') return bulk(encodingOf(ctx.ks.valueOf(e)));
  if (sub === 'REFCOUNT') return integer(1);
  if (sub === 'IDLETIME') return integer(0);
  throw new KvError(
    'ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.',
  );
}

function flushCheck(argv: readonly string[]): void {
  if (argv.length > 2) fail(msg.syntax);
  if (argv.length === 2 && !['ASYNC', 'SYNC'].includes(upper(arg(argv, 1)))) fail(msg.syntax);
}

export const keyCommands: ImplTable = {
  del: { run: (ctx, argv) => integer(argv.slice(1).filter((k) => ctx.del(k)).length) },
  unlink: { run: (ctx, argv) => integer(argv.slice(1).filter((k) => ctx.del(k)).length) },
  exists: {
    run: (ctx, argv) => integer(argv.slice(1).filter((k) => ctx.lookup(k) !== undefined).length),
  },
  touch: {
    run: (ctx, argv) => integer(argv.slice(1).filter((k) => ctx.lookup(k) !== undefined).length),
  },
  type: {
    run: (ctx, argv) => {
      const e = ctx.lookup(arg(argv, 1));
      return simple(e === undefined ? 'none' : ctx.ks.typeNameOf(e));
    },
  },
  expire: { check: expireCheck(1000), run: (c, a) => expireGeneric(c, a, 1000, true) },
  pexpire: { check: expireCheck(1), run: (c, a) => expireGeneric(c, a, 1, true) },
  expireat: { check: expireCheck(1000), run: (c, a) => expireGeneric(c, a, 1000, false) },
  pexpireat: { check: expireCheck(1), run: (c, a) => expireGeneric(c, a, 1, false) },
  ttl: { run: (c, a) => ttlGeneric(c, arg(a, 1), false, false) },
  pttl: { run: (c, a) => ttlGeneric(c, arg(a, 1), true, false) },
  expiretime: { run: (c, a) => ttlGeneric(c, arg(a, 1), false, true) },
  pexpiretime: { run: (c, a) => ttlGeneric(c, arg(a, 1), true, true) },
  persist: {
    run: (ctx, argv) => {
      const key = arg(argv, 1);
      const e = ctx.lookupForWrite(key);
      if (e === undefined || ctx.expireAt(key) === 0) return integer(0);
      ctx.setExpiry(key, e, 0);
      return integer(1);
    },
  },
  keys: {
    run: (ctx, argv) => {
      const pattern = arg(argv, 1);
      const all = pattern === '*';
      const out = [];
      for (const k of liveKeys(ctx)) if (all || globMatch(pattern, k)) out.push(bulk(k));
      return array(out);
    },
  },
  scan: {
    run: (ctx, argv) => {
      const opts = parseScan(argv, 1, true);
      // The cursor is a key id: a key that exists throughout the scan keeps
      // its id, so it is returned exactly once. Each call examines COUNT
      // keys, or ten times as many ids when freed ids lie between them.
      const t = ctx.ks.table(ctx.db);
      const out: Reply[] = [];
      let id = opts.cursor;
      let examined = 0;
      for (
        let budget = opts.count * 10;
        id < t.idEnd && examined < opts.count && budget > 0;
        id++
      ) {
        budget--;
        if (!t.has(id)) continue;
        examined++;
        const k = t.key(id);
        if (ctx.ks.isExpired(ctx.db, k, ctx.nowMs)) continue;
        if (opts.match !== undefined && !globMatch(opts.match, k)) continue;
        if (opts.type !== undefined && ctx.ks.typeNameOf(refOf(id, ctx.db)) !== opts.type) continue;
        out.push(bulk(k));
      }
      return scanReply(id >= t.idEnd ? 0 : id, out);
    },
  },
  rename: { run: (ctx, argv) => renameGeneric(ctx, argv, false) },
  renamenx: { run: (ctx, argv) => renameGeneric(ctx, argv, true) },
  randomkey: { run: (ctx) => randomKey(ctx) },
  copy: { check: (argv) => void parseCopy(argv), run: copy },
  object: { run: object },
  dbsize: { run: (ctx) => integer(ctx.ks.table(ctx.db).size) },
  flushdb: {
    check: flushCheck,
    run: (ctx, argv) => {
      flushCheck(argv);
      ctx.ks.flush(ctx.db);
      return ok;
    },
  },
  flushall: {
    check: flushCheck,
    run: (ctx, argv) => {
      flushCheck(argv);
      for (let db = 0; db < ctx.ks.dbs.length; db++) ctx.ks.flush(db);
      return ok;
    },
  },
};
