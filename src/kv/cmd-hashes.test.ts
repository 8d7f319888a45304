import { describe, expect, test } from 'vitest';
import { Harness } from './kv.test-util.js';

const wrongType = { err: 'WRONGTYPE Operation against a key holding the wrong kind of value' };

describe('hash commands', () => {
  test('HSET, HGET, HMGET, HGETALL, HDEL, HLEN, HEXISTS, HKEYS, HVALS, HSTRLEN', () => {
    const h = new Harness();
    expect(h.v('HSET', 'h', 'f1', 'v1', 'f2', 'v2')).toBe(2);
    expect(h.v('HSET', 'h', 'f1', 'new', 'f3', 'v3')).toBe(1);
    expect(h.v('HSET', 'h', 'f1')).toEqual({
      err: "ERR wrong number of arguments for 'hset' command",
    });
    expect(h.v('HSET', 'h', 'a', 'b', 'c')).toEqual({
      err: "ERR wrong number of arguments for 'hset' command",
    });
    expect(h.v('HGET', 'h', 'f1')).toBe('new');
    expect(h.v('HGET', 'h', 'nope')).toBeNull();
    expect(h.v('HMGET', 'h', 'f2', 'nope')).toEqual(['v2', null]);
    expect(h.v('HGETALL', 'h')).toEqual(['f1', 'new', 'f2', 'v2', 'f3', 'v3']);
    expect(h.cmd('HGETALL', 'nope')).toEqual({ kind: 'map', entries: [] });
    expect(h.v('HLEN', 'h')).toBe(3);
    expect(h.v('HEXISTS', 'h', 'f2')).toBe(1);
    expect(h.v('HKEYS', 'h')).toEqual(['f1', 'f2', 'f3']);
    expect(h.v('HVALS', 'h')).toEqual(['new', 'v2', 'v3']);
    expect(h.v('HSTRLEN', 'h', 'f2')).toBe(2);
    expect(h.v('HDEL', 'h', 'f1', 'f2', 'nope')).toBe(2);
    expect(h.v('HDEL', 'h', 'f3')).toBe(1);
    expect(h.v('EXISTS', 'h')).toBe(0); // empty hashes are deleted
    expect(h.v('HMSET', 'h', 'a', '1')).toBe('OK');
    expect(h.v('HSETNX', 'h', 'a', '2')).toBe(0);
    expect(h.v('HSETNX', 'h', 'b', '2')).toBe(1);
    h.v('SET', 's', 'v');
    expect(h.v('HGET', 's', 'f')).toEqual(wrongType);
    expect(h.v('HSET', 's', 'f', 'v')).toEqual(wrongType);
  });

  test('HINCRBY and HINCRBYFLOAT', () => {
    const h = new Harness();
    expect(h.v('HINCRBY', 'h', 'n', '5')).toBe(5);
    expect(h.v('HINCRBY', 'h', 'n', '-10')).toBe(-5);
    h.v('HSET', 'h', 's', 'abc', 'big', '9223372036854775807');
    expect(h.v('HINCRBY', 'h', 's', '1')).toEqual({ err: 'ERR hash value is not an integer' });
    expect(h.v('HINCRBY', 'h', 'big', '1')).toEqual({
      err: 'ERR increment or decrement would overflow',
    });
    expect(h.v('HINCRBY', 'h', 'n', 'x')).toEqual({
      err: 'ERR value is not an integer or out of range',
    });
    expect(h.v('HINCRBYFLOAT', 'h', 'f', '10.5')).toBe('10.5');
    expect(h.v('HINCRBYFLOAT', 'h', 'f', '0.1')).toBe('10.6');
    expect(h.v('HINCRBYFLOAT', 'h', 's', '1')).toEqual({ err: 'ERR hash value is not a float' });
    expect(h.v('HINCRBYFLOAT', 'h', 'f', 'x')).toEqual({ err: 'ERR value is not a valid float' });
    expect(h.v('HINCRBYFLOAT', 'h', 'f', 'inf')).toEqual({ err: 'ERR value is NaN or Infinity' });
  });

  test('HSCAN and HRANDFIELD', () => {
    const h = new Harness();
    for (let i = 0; i < 30; i++) h.v('HSET', 'h', `f${i}`, `v${i}`);
    const seen = new Map<string, string>();
    let cursor = '0';
    do {
      const [next, flat] = h.v('HSCAN', 'h', cursor, 'COUNT', '7') as [string, string[]];
      for (let i = 0; i < flat.length; i += 2) seen.set(flat[i] as string, flat[i + 1] as string);
      cursor = next;
    } while (cursor !== '0');
    expect(seen.size).toBe(30);
    expect(seen.get('f7')).toBe('v7');
    expect(h.v('HSCAN', 'h', '0', 'MATCH', 'f1*', 'COUNT', '100', 'NOVALUES')).toEqual([
      '0',
      ['f1', 'f10', 'f11', 'f12', 'f13', 'f14', 'f15', 'f16', 'f17', 'f18', 'f19'],
    ]);
    expect(h.v('HSCAN', 'nope', '0')).toEqual(['0', []]);
    expect(typeof h.v('HRANDFIELD', 'h')).toBe('string');
    expect(h.v('HRANDFIELD', 'nope')).toBeNull();
    const five = h.v('HRANDFIELD', 'h', '5') as string[];
    expect(new Set(five).size).toBe(5);
    expect((h.v('HRANDFIELD', 'h', '100') as string[]).length).toBe(30);
    expect((h.v('HRANDFIELD', 'h', '-50') as string[]).length).toBe(50);
    const withValues = h.v('HRANDFIELD', 'h', '2', 'WITHVALUES') as string[];
    expect(withValues[1]).toBe(`v${(withValues[0] as string).slice(1)}`);
    expect(h.v('HRANDFIELD', 'h', '0')).toEqual([]);
  });
});
