/**
 * Every command Tandem knows, with Redis's arity, flags and key positions
 * (as COMMAND INFO reports them), and the class that tells the runtime how to
 * execute it.
 */
import { wrongArgs } from './errors.js';
import { error, type Reply } from './reply.js';

/**
 * - `write`: proposed through the log (prepareWrite), answered by apply.
 * - `read`: answered from local state (read) after the runtime's read barrier.
 * - `connection` / `server`: handled by the runtime or protocol layer.
 */
export type CommandClass = 'write' | 'read' | 'connection' | 'server';

export type CommandFlag =
  | 'write'
  | 'readonly'
  | 'fast'
  | 'admin'
  | 'pubsub'
  | 'denyoom'
  | 'noscript'
  | 'loading'
  | 'stale'
  | 'no-auth'
  | 'blocking'
  | 'movablekeys'
  | 'random'
  | 'no-multi';

export interface CommandSpec {
  /** Lower case, as Redis reports it. */
  readonly name: string;
  /** Redis convention: n = exactly n arguments including the name, -n = at least n. */
  readonly arity: number;
  readonly flags: readonly CommandFlag[];
  /** 1-based position of the first key in argv, 0 when there are none. */
  readonly firstKey: number;
  /** Last key position; negative counts from the end (-1 = last argument). */
  readonly lastKey: number;
  readonly step: number;
  readonly class: CommandClass;
  /** Redis's documentation group (generic, string, hash, ...). */
  readonly group: string;
}

type Row = readonly [string, number, CommandClass, string, number, number, number];

const groups: Readonly<Record<string, readonly Row[]>> = {
  connection: [
    ['ping', -1, 'connection', 'fast stale loading', 0, 0, 0],
    ['echo', 2, 'connection', 'fast loading stale', 0, 0, 0],
    ['hello', -1, 'connection', 'noscript loading stale fast no-auth', 0, 0, 0],
    ['auth', -2, 'connection', 'noscript loading stale fast no-auth', 0, 0, 0],
    ['select', 2, 'connection', 'loading stale fast', 0, 0, 0],
    ['client', -2, 'connection', 'admin noscript loading stale', 0, 0, 0],
    ['quit', -1, 'connection', 'noscript loading stale fast no-auth', 0, 0, 0],
    ['reset', 1, 'connection', 'noscript loading stale fast no-auth', 0, 0, 0],
    ['readonly', 1, 'connection', 'loading stale fast', 0, 0, 0],
    ['readwrite', 1, 'connection', 'loading stale fast', 0, 0, 0],
  ],
  server: [
    ['command', -1, 'server', 'loading stale', 0, 0, 0],
    ['config', -2, 'server', 'admin noscript loading stale', 0, 0, 0],
    ['info', -1, 'server', 'loading stale', 0, 0, 0],
    ['role', 1, 'server', 'noscript loading stale fast', 0, 0, 0],
    ['time', 1, 'server', 'loading stale fast', 0, 0, 0],
    ['wait', 3, 'server', 'noscript', 0, 0, 0],
    ['dbsize', 1, 'read', 'readonly fast', 0, 0, 0],
    ['flushdb', -1, 'write', 'write', 0, 0, 0],
    ['flushall', -1, 'write', 'write', 0, 0, 0],
  ],
  transactions: [
    ['multi', 1, 'connection', 'noscript loading stale fast no-multi', 0, 0, 0],
    ['exec', 1, 'connection', 'noscript loading stale', 0, 0, 0],
    ['discard', 1, 'connection', 'noscript loading stale fast', 0, 0, 0],
    ['watch', -2, 'connection', 'noscript loading stale fast no-multi', 1, -1, 1],
    ['unwatch', 1, 'connection', 'noscript loading stale fast', 0, 0, 0],
  ],
  pubsub: [
    ['subscribe', -2, 'connection', 'pubsub noscript loading stale', 0, 0, 0],
    ['unsubscribe', -1, 'connection', 'pubsub noscript loading stale', 0, 0, 0],
    ['psubscribe', -2, 'connection', 'pubsub noscript loading stale', 0, 0, 0],
    ['punsubscribe', -1, 'connection', 'pubsub noscript loading stale', 0, 0, 0],
    ['publish', 3, 'write', 'pubsub loading stale fast', 0, 0, 0],
    ['pubsub', -2, 'server', 'pubsub loading stale', 0, 0, 0],
  ],
  generic: [
    ['del', -2, 'write', 'write', 1, -1, 1],
    ['unlink', -2, 'write', 'write fast', 1, -1, 1],
    ['exists', -2, 'read', 'readonly fast', 1, -1, 1],
    ['type', 2, 'read', 'readonly fast', 1, 1, 1],
    ['expire', -3, 'write', 'write fast', 1, 1, 1],
    ['pexpire', -3, 'write', 'write fast', 1, 1, 1],
    ['expireat', -3, 'write', 'write fast', 1, 1, 1],
    ['pexpireat', -3, 'write', 'write fast', 1, 1, 1],
    ['ttl', 2, 'read', 'readonly fast', 1, 1, 1],
    ['pttl', 2, 'read', 'readonly fast', 1, 1, 1],
    ['expiretime', 2, 'read', 'readonly fast', 1, 1, 1],
    ['pexpiretime', 2, 'read', 'readonly fast', 1, 1, 1],
    ['persist', 2, 'write', 'write fast', 1, 1, 1],
    ['keys', 2, 'read', 'readonly', 0, 0, 0],
    ['scan', -2, 'read', 'readonly', 0, 0, 0],
    ['rename', 3, 'write', 'write', 1, 2, 1],
    ['renamenx', 3, 'write', 'write fast', 1, 2, 1],
    ['randomkey', 1, 'read', 'readonly random', 0, 0, 0],
    ['copy', -3, 'write', 'write denyoom', 1, 2, 1],
    ['touch', -2, 'read', 'readonly fast', 1, -1, 1],
    ['object', -2, 'read', 'readonly', 2, 2, 1],
  ],
  string: [
    ['get', 2, 'read', 'readonly fast', 1, 1, 1],
    ['set', -3, 'write', 'write denyoom', 1, 1, 1],
    ['setnx', 3, 'write', 'write denyoom fast', 1, 1, 1],
    ['setex', 4, 'write', 'write denyoom', 1, 1, 1],
    ['psetex', 4, 'write', 'write denyoom', 1, 1, 1],
    ['getset', 3, 'write', 'write denyoom fast', 1, 1, 1],
    ['getdel', 2, 'write', 'write fast', 1, 1, 1],
    ['getex', -2, 'write', 'write fast', 1, 1, 1],
    ['mget', -2, 'read', 'readonly fast', 1, -1, 1],
    ['mset', -3, 'write', 'write denyoom', 1, -1, 2],
    ['msetnx', -3, 'write', 'write denyoom', 1, -1, 2],
    ['incr', 2, 'write', 'write denyoom fast', 1, 1, 1],
    ['incrby', 3, 'write', 'write denyoom fast', 1, 1, 1],
    ['incrbyfloat', 3, 'write', 'write denyoom fast', 1, 1, 1],
    ['decr', 2, 'write', 'write denyoom fast', 1, 1, 1],
    ['decrby', 3, 'write', 'write denyoom fast', 1, 1, 1],
    ['append', 3, 'write', 'write denyoom fast', 1, 1, 1],
    ['strlen', 2, 'read', 'readonly fast', 1, 1, 1],
    ['getrange', 4, 'read', 'readonly', 1, 1, 1],
    ['setrange', 4, 'write', 'write denyoom', 1, 1, 1],
  ],
  hash: [
    ['hset', -4, 'write', 'write denyoom fast', 1, 1, 1],
    ['hsetnx', 4, 'write', 'write denyoom fast', 1, 1, 1],
    ['hget', 3, 'read', 'readonly fast', 1, 1, 1],
    ['hmget', -3, 'read', 'readonly fast', 1, 1, 1],
    ['hmset', -4, 'write', 'write denyoom fast', 1, 1, 1],
    ['hdel', -3, 'write', 'write fast', 1, 1, 1],
    ['hexists', 3, 'read', 'readonly fast', 1, 1, 1],
    ['hlen', 2, 'read', 'readonly fast', 1, 1, 1],
    ['hkeys', 2, 'read', 'readonly', 1, 1, 1],
    ['hvals', 2, 'read', 'readonly', 1, 1, 1],
    ['hgetall', 2, 'read', 'readonly', 1, 1, 1],
    ['hincrby', 4, 'write', 'write denyoom fast', 1, 1, 1],
    ['hincrbyfloat', 4, 'write', 'write denyoom fast', 1, 1, 1],
    ['hstrlen', 3, 'read', 'readonly fast', 1, 1, 1],
    ['hscan', -3, 'read', 'readonly', 1, 1, 1],
    ['hrandfield', -2, 'read', 'readonly random', 1, 1, 1],
  ],
  list: [
    ['lpush', -3, 'write', 'write denyoom fast', 1, 1, 1],
    ['rpush', -3, 'write', 'write denyoom fast', 1, 1, 1],
    ['lpushx', -3, 'write', 'write denyoom fast', 1, 1, 1],
    ['rpushx', -3, 'write', 'write denyoom fast', 1, 1, 1],
    ['lpop', -2, 'write', 'write fast', 1, 1, 1],
    ['rpop', -2, 'write', 'write fast', 1, 1, 1],
    ['llen', 2, 'read', 'readonly fast', 1, 1, 1],
    ['lrange', 4, 'read', 'readonly', 1, 1, 1],
    ['lindex', 3, 'read', 'readonly', 1, 1, 1],
    ['lset', 4, 'write', 'write denyoom', 1, 1, 1],
    ['lrem', 4, 'write', 'write', 1, 1, 1],
    ['ltrim', 4, 'write', 'write', 1, 1, 1],
    ['linsert', 5, 'write', 'write denyoom', 1, 1, 1],
    ['lpos', -3, 'read', 'readonly', 1, 1, 1],
    ['lmove', 5, 'write', 'write denyoom', 1, 2, 1],
    ['rpoplpush', 3, 'write', 'write denyoom', 1, 2, 1],
    ['blpop', -3, 'write', 'write blocking', 1, -2, 1],
    ['brpop', -3, 'write', 'write blocking', 1, -2, 1],
    ['blmove', 6, 'write', 'write denyoom blocking', 1, 2, 1],
  ],
  set: [
    ['sadd', -3, 'write', 'write denyoom fast', 1, 1, 1],
    ['srem', -3, 'write', 'write fast', 1, 1, 1],
    ['smembers', 2, 'read', 'readonly', 1, 1, 1],
    ['sismember', 3, 'read', 'readonly fast', 1, 1, 1],
    ['smismember', -3, 'read', 'readonly fast', 1, 1, 1],
    ['scard', 2, 'read', 'readonly fast', 1, 1, 1],
    ['spop', -2, 'write', 'write random fast', 1, 1, 1],
    ['srandmember', -2, 'read', 'readonly random', 1, 1, 1],
    ['sinter', -2, 'read', 'readonly', 1, -1, 1],
    ['sunion', -2, 'read', 'readonly', 1, -1, 1],
    ['sdiff', -2, 'read', 'readonly', 1, -1, 1],
    ['sinterstore', -3, 'write', 'write denyoom', 1, -1, 1],
    ['sunionstore', -3, 'write', 'write denyoom', 1, -1, 1],
    ['sdiffstore', -3, 'write', 'write denyoom', 1, -1, 1],
    ['sintercard', -3, 'read', 'readonly movablekeys', 0, 0, 0],
    ['smove', 4, 'write', 'write fast', 1, 2, 1],
    ['sscan', -3, 'read', 'readonly random', 1, 1, 1],
  ],
  'sorted-set': [
    ['zadd', -4, 'write', 'write denyoom fast', 1, 1, 1],
    ['zrem', -3, 'write', 'write fast', 1, 1, 1],
    ['zscore', 3, 'read', 'readonly fast', 1, 1, 1],
    ['zmscore', -3, 'read', 'readonly fast', 1, 1, 1],
    ['zincrby', 4, 'write', 'write denyoom fast', 1, 1, 1],
    ['zcard', 2, 'read', 'readonly fast', 1, 1, 1],
    ['zcount', 4, 'read', 'readonly fast', 1, 1, 1],
    ['zrange', -4, 'read', 'readonly', 1, 1, 1],
    ['zrangebyscore', -4, 'read', 'readonly', 1, 1, 1],
    ['zrevrange', -4, 'read', 'readonly', 1, 1, 1],
    ['zrevrangebyscore', -4, 'read', 'readonly', 1, 1, 1],
    ['zrank', -3, 'read', 'readonly fast', 1, 1, 1],
    ['zrevrank', -3, 'read', 'readonly fast', 1, 1, 1],
    ['zpopmin', -2, 'write', 'write fast', 1, 1, 1],
    ['zpopmax', -2, 'write', 'write fast', 1, 1, 1],
    ['zrangestore', -5, 'write', 'write denyoom', 1, 2, 1],
    ['zscan', -3, 'read', 'readonly random', 1, 1, 1],
    ['zlexcount', 4, 'read', 'readonly fast', 1, 1, 1],
    ['zrangebylex', -4, 'read', 'readonly', 1, 1, 1],
    ['bzpopmin', -3, 'write', 'write fast blocking', 1, -2, 1],
    ['bzpopmax', -3, 'write', 'write fast blocking', 1, -2, 1],
  ],
};

function buildTable(): ReadonlyMap<string, CommandSpec> {
  const table = new Map<string, CommandSpec>();
  for (const [group, rows] of Object.entries(groups)) {
    for (const [name, arity, cls, flags, firstKey, lastKey, step] of rows) {
      table.set(name, {
        name,
        arity,
        flags: flags.split(' ') as CommandFlag[],
        firstKey,
        lastKey,
        step,
        class: cls,
        group,
      });
    }
  }
  return table;
}

/** All commands by lower-case name. */
export const commandTable: ReadonlyMap<string, CommandSpec> = buildTable();

interface LookupOk {
  readonly ok: true;
  readonly spec: CommandSpec;
}

export type LookupResult = LookupOk | { readonly ok: false; readonly error: Reply };

function sanitize(s: string): string {
  return s.replace(/[\r\n]/g, ' ');
}

/** Redis's message for an unknown command: name (128 bytes max) and the start of its args. */
export function unknownCommandError(argv: readonly string[]): Reply {
  let args = '';
  for (let i = 1; i < argv.length && args.length < 128; i++) {
    args += `'${(argv[i] ?? '').slice(0, 128 - args.length)}' `;
  }
  const name = (argv[0] ?? '').slice(0, 128);
  return error(sanitize(`ERR unknown command '${name}', with args beginning with: ${args}`));
}

/**
 * Each command's successful lookup, under its lower- and upper-case name:
 * a command runs through several lookups (classify, prepare, apply), and
 * clients send "SET" or "set", so most lookups allocate nothing.
 */
const foundByName: ReadonlyMap<string, LookupOk> = new Map(
  [...commandTable].flatMap(([name, spec]) => {
    const found: LookupOk = { ok: true, spec };
    return [
      [name, found],
      [name.toUpperCase(), found],
    ];
  }),
);

/**
 * Finds a command's spec and checks its arity.
 *
 * @example
 * lookupCommand(['GET', 'k']) // { ok: true, spec: { name: 'get', arity: 2, ... } }
 * lookupCommand(['GET'])      // { ok: false, error: ERR wrong number of arguments for 'get' command }
 */
export function lookupCommand(argv: readonly string[]): LookupResult {
  const name = argv[0] ?? '';
  const found = foundByName.get(name) ?? foundByName.get(name.toLowerCase());
  if (found === undefined) return { ok: false, error: unknownCommandError(argv) };
  const spec = found.spec;
  const n = argv.length;
  if ((spec.arity > 0 && n !== spec.arity) || (spec.arity < 0 && n < -spec.arity)) {
    return { ok: false, error: error(wrongArgs(spec.name)) };
  }
  return found;
}

/** Positions of the key arguments per firstKey/lastKey/step (movable-key commands: none). */
export function commandKeys(spec: CommandSpec, argv: readonly string[]): string[] {
  if (spec.firstKey === 0) return [];
  const last = spec.lastKey < 0 ? argv.length + spec.lastKey : spec.lastKey;
  const keys: string[] = [];
  for (let i = spec.firstKey; i <= last && i < argv.length; i += spec.step) {
    keys.push(argv[i] as string);
  }
  return keys;
}
