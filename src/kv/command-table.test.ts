import { describe, expect, test } from 'vitest';
import { implementationOf } from './cmd-registry.js';
import { commandKeys, commandTable, lookupCommand } from './command-table.js';

const required =
  `PING ECHO HELLO AUTH SELECT CLIENT COMMAND CONFIG INFO ROLE TIME QUIT RESET WAIT MULTI EXEC
DISCARD WATCH UNWATCH SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE READONLY READWRITE
DEL UNLINK EXISTS TYPE EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL EXPIRETIME PEXPIRETIME PERSIST KEYS SCAN
RENAME RENAMENX RANDOMKEY COPY TOUCH OBJECT DBSIZE FLUSHDB FLUSHALL
GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX MGET MSET MSETNX INCR INCRBY INCRBYFLOAT DECR DECRBY APPEND
STRLEN GETRANGE SETRANGE
HSET HSETNX HGET HMGET HMSET HDEL HEXISTS HLEN HKEYS HVALS HGETALL HINCRBY HINCRBYFLOAT HSTRLEN HSCAN HRANDFIELD
LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET LREM LTRIM LINSERT LPOS LMOVE RPOPLPUSH
SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SINTER SUNION SDIFF SINTERSTORE SUNIONSTORE
SDIFFSTORE SINTERCARD SMOVE SSCAN
ZADD ZREM ZSCORE ZMSCORE ZINCRBY ZCARD ZCOUNT ZRANGE ZRANGEBYSCORE ZREVRANGE ZREVRANGEBYSCORE ZRANK ZREVRANK
ZPOPMIN ZPOPMAX ZRANGESTORE ZSCAN ZLEXCOUNT ZRANGEBYLEX PUBLISH PUBSUB BLPOP BRPOP BLMOVE BZPOPMIN BZPOPMAX`
    .split(/\s+/)
    .map((s) => s.toLowerCase());

describe('command table', () => {
  test('holds every supported command; every write/read one is implemented', () => {
    for (const name of required) expect(commandTable.has(name), name).toBe(true);
    for (const spec of commandTable.values()) {
      const executable = spec.class === 'write' || spec.class === 'read';
      expect(implementationOf(spec.name) !== undefined, spec.name).toBe(executable);
      expect(spec.flags.includes('write'), spec.name).toBe(
        spec.class === 'write' && spec.name !== 'publish',
      );
      if (spec.class === 'read') expect(spec.flags, spec.name).toContain('readonly');
    }
  });

  test('Redis-exact errors for unknown commands and arity', () => {
    expect(lookupCommand(['foo', 'a', 'b'])).toEqual({
      ok: false,
      error: {
        kind: 'error',
        message: "ERR unknown command 'foo', with args beginning with: 'a' 'b' ",
      },
    });
    expect(lookupCommand(['foo'])).toMatchObject({
      error: { message: "ERR unknown command 'foo', with args beginning with: " },
    });
    expect(lookupCommand(['get'])).toMatchObject({
      error: { message: "ERR wrong number of arguments for 'get' command" },
    });
    expect(lookupCommand(['GET', 'a', 'b'])).toMatchObject({ ok: false });
    expect(lookupCommand(['SeT', 'k', 'v', 'EX', '1'])).toMatchObject({
      ok: true,
      spec: { name: 'set' },
    });
    const long = lookupCommand(['x', 'y'.repeat(300)]);
    expect(long.ok || long.error.kind !== 'error' ? 0 : long.error.message.length).toBeLessThan(
      200,
    );
  });

  test('key positions follow firstKey/lastKey/step', () => {
    const spec = (n: string) =>
      commandTable.get(n) as NonNullable<ReturnType<typeof commandTable.get>>;
    expect(commandKeys(spec('mset'), ['MSET', 'a', '1', 'b', '2'])).toEqual(['a', 'b']);
    expect(commandKeys(spec('del'), ['DEL', 'a', 'b'])).toEqual(['a', 'b']);
    expect(commandKeys(spec('lmove'), ['LMOVE', 'a', 'b', 'LEFT', 'RIGHT'])).toEqual(['a', 'b']);
    expect(commandKeys(spec('blpop'), ['BLPOP', 'a', 'b', '0'])).toEqual(['a', 'b']);
    expect(commandKeys(spec('ping'), ['PING'])).toEqual([]);
  });
});
