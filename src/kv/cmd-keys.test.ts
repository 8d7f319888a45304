import { describe, expect, test } from 'vitest';
import { Harness, t0 } from './kv.test-util.js';

describe('generic key commands', () => {
  test('DEL, UNLINK, EXISTS, TOUCH, TYPE, DBSIZE', () => {
    const h = new Harness();
    h.v('MSET', 'a', '1', 'b', '2');
    h.v('HSET', 'h', 'f', 'v');
    h.v('RPUSH', 'l', 'x');
    h.v('SADD', 's', 'x');
    h.v('ZADD', 'z', '1', 'x');
    expect(['a', 'h', 'l', 's', 'z', 'nope'].map((k) => h.v('TYPE', k))).toEqual([
      'string',
      'hash',
      'list',
      'set',
      'zset',
      'none',
    ]);
    expect(h.v('EXISTS', 'a', 'a', 'nope')).toBe(2);
    expect(h.v('TOUCH', 'a', 'b', 'nope')).toBe(2);
    expect(h.v('DBSIZE')).toBe(6);
    expect(h.v('DEL', 'a', 'nope', 'h')).toBe(2);
    expect(h.v('UNLINK', 'b')).toBe(1);
    expect(h.v('DBSIZE')).toBe(3);
  });

  test('EXPIRE family with NX/XX/GT/LT and TTL family', () => {
    const h = new Harness();
    h.v('SET', 'k', 'v');
    expect(h.v('TTL', 'k')).toBe(-1);
    expect(h.v('TTL', 'nope')).toBe(-2);
    expect(h.v('EXPIRE', 'nope', '10')).toBe(0);
    expect(h.v('EXPIRE', 'k', '10', 'XX')).toBe(0);
    expect(h.v('EXPIRE', 'k', '10', 'GT')).toBe(0); // no TTL counts as infinite
    expect(h.v('EXPIRE', 'k', '10', 'NX')).toBe(1);
    expect(h.v('EXPIRE', 'k', '20', 'NX')).toBe(0);
    expect(h.v('EXPIRE', 'k', '5', 'GT')).toBe(0);
    expect(h.v('EXPIRE', 'k', '20', 'GT')).toBe(1);
    expect(h.v('EXPIRE', 'k', '30', 'LT')).toBe(0);
    expect(h.v('PEXPIRE', 'k', '1500', 'LT')).toBe(1);
    expect(h.v('PTTL', 'k')).toBe(1500);
    expect(h.v('TTL', 'k')).toBe(2); // rounded as Redis does
    expect(h.v('EXPIRETIME', 'k')).toBe(Math.floor((t0 + 1500 + 500) / 1000));
    expect(h.v('PEXPIRETIME', 'k')).toBe(t0 + 1500);
    expect(h.v('EXPIREAT', 'k', String(t0 / 1000 + 100))).toBe(1);
    expect(h.v('TTL', 'k')).toBe(100);
    expect(h.v('PEXPIREAT', 'k', String(t0 + 42))).toBe(1);
    expect(h.v('PTTL', 'k')).toBe(42);
    expect(h.v('PERSIST', 'k')).toBe(1);
    expect(h.v('PERSIST', 'k')).toBe(0);
    expect(h.v('EXPIRETIME', 'k')).toBe(-1);
    expect(h.v('EXPIRE', 'k', '0')).toBe(1); // in the past: deleted
    expect(h.v('EXISTS', 'k')).toBe(0);
    expect(h.v('EXPIRE', 'k', 'x')).toEqual({ err: 'ERR value is not an integer or out of range' });
    expect(h.v('EXPIRE', 'k', '1', 'NX', 'XX')).toEqual({
      err: 'ERR NX and XX, GT or LT options at the same time are not compatible',
    });
    expect(h.v('EXPIRE', 'k', '1', 'GT', 'LT')).toEqual({
      err: 'ERR GT and LT options at the same time are not compatible',
    });
    expect(h.v('EXPIRE', 'k', '1', 'FOO')).toEqual({ err: 'ERR Unsupported option FOO' });
    expect(h.v('EXPIRE', 'k', '9223372036854775807')).toEqual({
      err: "ERR invalid expire time in 'expire' command",
    });
  });

  test('KEYS glob patterns and SCAN', () => {
    const h = new Harness();
    for (const k of ['hello', 'hallo', 'hxllo', 'hllo', 'heeeello', 'hbllo', 'a*b'])
      h.v('SET', k, '1');
    const keys = (p: string) => (h.v('KEYS', p) as string[]).sort();
    expect(keys('h?llo')).toEqual(['hallo', 'hbllo', 'hello', 'hxllo']);
    expect(keys('h*llo')).toEqual(['hallo', 'hbllo', 'heeeello', 'hello', 'hllo', 'hxllo']);
    expect(keys('h[ae]llo')).toEqual(['hallo', 'hello']);
    expect(keys('h[^e]llo')).toEqual(['hallo', 'hbllo', 'hxllo']);
    expect(keys('h[a-b]llo')).toEqual(['hallo', 'hbllo']);
    expect(keys('a\\*b')).toEqual(['a*b']);
    h.v('SADD', 'set', 'x');
    const seen: string[] = [];
    let cursor = '0';
    let calls = 0;
    do {
      const [next, batch] = h.v('SCAN', cursor, 'COUNT', '3') as [string, string[]];
      seen.push(...batch);
      cursor = next;
      calls++;
    } while (cursor !== '0' && calls < 20);
    expect(seen.sort()).toEqual([...keys('*')].sort());
    expect(calls).toBeGreaterThan(1);
    expect(h.v('SCAN', '0', 'TYPE', 'set', 'COUNT', '100')).toEqual(['0', ['set']]);
    expect(h.v('SCAN', '0', 'MATCH', 'h?llo', 'COUNT', '100')).toEqual([
      '0',
      ['hello', 'hallo', 'hxllo', 'hbllo'],
    ]);
    expect(h.v('SCAN', 'x')).toEqual({ err: 'ERR invalid cursor' });
    expect(h.v('SCAN', '0', 'COUNT', '0')).toEqual({ err: 'ERR syntax error' });
  });

  test('SCAN resumes from any cursor it gave, however often', () => {
    const h = new Harness();
    for (let i = 0; i < 10; i++) h.v('SET', `k${i}`, '1');
    const [c1] = h.v('SCAN', '0', 'COUNT', '4') as [string, string[]];
    const [, rest] = h.v('SCAN', c1, 'COUNT', '100') as [string, string[]];
    expect(rest).toHaveLength(6);
    expect((h.v('SCAN', c1, 'COUNT', '100') as [string, string[]])[1]).toEqual(rest);
  });

  test('SCAN returns every key that exists throughout exactly once, while others come and go', () => {
    const h = new Harness();
    for (let i = 0; i < 300; i++) h.v('SET', `stay${i}`, '1');
    for (let i = 0; i < 300; i++) h.v('SET', `go${i}`, '1');
    const seen = new Map<string, number>();
    let cursor = '0';
    for (let round = 0; round < 1000; round++) {
      const [next, batch] = h.v('SCAN', cursor, 'COUNT', '7') as [string, string[]];
      for (const k of batch) seen.set(k, (seen.get(k) ?? 0) + 1);
      // Between calls: deletes free ids that new keys then reuse, and the
      // index grows and shrinks under the scan.
      for (let j = 0; j < 5; j++) h.v('DEL', `go${round * 5 + j}`);
      for (let j = 0; j < 9; j++) h.v('SET', `new${round}:${j}`, '1');
      if (round % 40 === 39)
        for (let j = 0; j < 9 * 40; j++) h.v('DEL', `new${round - (j % 40)}:${Math.floor(j / 40)}`);
      cursor = next;
      if (cursor === '0') break;
    }
    expect(cursor).toBe('0');
    for (let i = 0; i < 300; i++) expect(seen.get(`stay${i}`)).toBe(1);
    for (const [k, n] of seen) expect([k, n]).toEqual([k, 1]);
  });

  test('RENAME, RENAMENX keep value and TTL', () => {
    const h = new Harness();
    h.v('SET', 'a', '1', 'EX', '100');
    expect(h.v('RENAME', 'a', 'b')).toBe('OK');
    expect(h.v('GET', 'b')).toBe('1');
    expect(h.v('TTL', 'b')).toBe(100);
    expect(h.v('RENAME', 'a', 'c')).toEqual({ err: 'ERR no such key' });
    h.v('SET', 'c', '3');
    expect(h.v('RENAMENX', 'b', 'c')).toBe(0);
    expect(h.v('RENAMENX', 'b', 'd')).toBe(1);
    expect(h.v('RENAME', 'd', 'd')).toBe('OK');
    expect(h.v('RENAME', 'd', 'c')).toBe('OK');
    expect(h.v('GET', 'c')).toBe('1');
  });

  test('COPY deep-copies across dbs', () => {
    const h = new Harness();
    h.v('RPUSH', 'l', 'a', 'b');
    expect(h.v('COPY', 'l', 'l2')).toBe(1);
    h.v('RPUSH', 'l2', 'c');
    expect(h.v('LRANGE', 'l', '0', '-1')).toEqual(['a', 'b']);
    expect(h.v('COPY', 'l', 'l2')).toBe(0);
    expect(h.v('COPY', 'l', 'l2', 'REPLACE')).toBe(1);
    expect(h.v('LLEN', 'l2')).toBe(2);
    expect(h.v('COPY', 'l', 'l', 'DB', '3')).toBe(1);
    expect(h.v('COPY', 'l', 'l')).toEqual({
      err: 'ERR source and destination objects are the same',
    });
    expect(h.v('COPY', 'l', 'x', 'DB', '16')).toEqual({ err: 'ERR DB index is out of range' });
    expect(h.v('COPY', 'nope', 'x')).toBe(0);
    h.db = 3;
    expect(h.v('LRANGE', 'l', '0', '-1')).toEqual(['a', 'b']);
  });

  test('RANDOMKEY, OBJECT, FLUSHDB, FLUSHALL', () => {
    const h = new Harness();
    expect(h.v('RANDOMKEY')).toBeNull();
    h.v('SET', 'int', '12345');
    h.v('SET', 'emb', 'short');
    h.v('SET', 'raw', 'x'.repeat(45));
    h.v('HSET', 'h', 'f', 'v');
    h.v('RPUSH', 'l', 'x');
    h.v('SADD', 'si', '1', '2');
    h.v('SADD', 'ss', 'a');
    h.v('ZADD', 'z', '1', 'a');
    expect(
      ['int', 'emb', 'raw', 'h', 'l', 'si', 'ss', 'z'].map((k) => h.v('OBJECT', 'ENCODING', k)),
    ).toEqual(['int', 'embstr', 'raw', 'listpack', 'listpack', 'intset', 'listpack', 'listpack']);
    for (let i = 0; i < 200; i++) h.v('ZADD', 'big', String(i), `m${i}`);
    expect(h.v('OBJECT', 'ENCODING', 'big')).toBe('skiplist');
    expect(h.v('OBJECT', 'ENCODING', 'nope')).toBeNull();
    expect(h.v('OBJECT', 'REFCOUNT', 'int')).toBe(1);
    expect(h.v('OBJECT', 'NOPE', 'int')).toMatchObject({
      err: expect.stringContaining('OBJECT HELP'),
    });
    expect(typeof h.v('RANDOMKEY')).toBe('string');
    h.db = 1;
    h.v('SET', 'k', 'v');
    h.db = 0;
    expect(h.v('FLUSHDB', 'BAD')).toEqual({ err: 'ERR syntax error' });
    expect(h.v('FLUSHDB', 'ASYNC')).toBe('OK');
    expect(h.v('DBSIZE')).toBe(0);
    h.db = 1;
    expect(h.v('DBSIZE')).toBe(1);
    expect(h.v('FLUSHALL')).toBe('OK');
    expect(h.v('DBSIZE')).toBe(0);
  });
});
