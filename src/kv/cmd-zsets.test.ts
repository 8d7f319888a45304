import { describe, expect, test } from 'vitest';
import { Harness } from './kv.test-util.js';

function seed(h: Harness): void {
  h.v('ZADD', 'z', '1', 'one', '2', 'two', '3', 'three', '4', 'four');
}

describe('sorted set commands', () => {
  test('ZADD options, ZSCORE, ZMSCORE, ZINCRBY, ZCARD, ZREM', () => {
    const h = new Harness();
    expect(h.v('ZADD', 'z', '1', 'a', '2', 'b')).toBe(2);
    expect(h.v('ZADD', 'z', 'NX', '5', 'a', '3', 'c')).toBe(1);
    expect(h.v('ZSCORE', 'z', 'a')).toBe(1);
    expect(h.v('ZADD', 'z', 'XX', 'CH', '5', 'a', '9', 'new')).toBe(1);
    expect(h.v('ZADD', 'z', 'GT', 'CH', '4', 'a', '10', 'b')).toBe(1);
    expect(h.v('ZMSCORE', 'z', 'a', 'b', 'nope')).toEqual([5, 10, null]);
    expect(h.v('ZADD', 'z', 'LT', '1', 'b')).toBe(0);
    expect(h.v('ZSCORE', 'z', 'b')).toBe(1);
    expect(h.v('ZADD', 'z', 'INCR', '2.5', 'a')).toBe(7.5);
    expect(h.v('ZADD', 'z', 'NX', 'INCR', '1', 'a')).toBeNull();
    expect(h.v('ZINCRBY', 'z', '-0.5', 'a')).toBe(7);
    expect(h.v('ZINCRBY', 'z', 'x', 'a')).toEqual({ err: 'ERR value is not a valid float' });
    expect(h.v('ZADD', 'z', 'inf', 'i')).toBe(1);
    expect(h.v('ZINCRBY', 'z', '-inf', 'i')).toEqual({
      err: 'ERR resulting score is not a number (NaN)',
    });
    expect(h.v('ZADD', 'z', 'nan', 'x')).toEqual({ err: 'ERR value is not a valid float' });
    expect(h.v('ZADD', 'z', 'NX', 'XX', '1', 'x')).toEqual({
      err: 'ERR XX and NX options at the same time are not compatible',
    });
    expect(h.v('ZADD', 'z', 'GT', 'LT', '1', 'x')).toEqual({
      err: 'ERR GT, LT, and/or NX options at the same time are not compatible',
    });
    expect(h.v('ZADD', 'z', 'INCR', '1', 'x', '2', 'y')).toEqual({
      err: 'ERR INCR option supports a single increment-element pair',
    });
    expect(h.v('ZADD', 'z', '1', 'a', '2')).toEqual({ err: 'ERR syntax error' });
    expect(h.v('ZCARD', 'z')).toBe(4);
    expect(h.v('ZREM', 'z', 'a', 'b', 'nope')).toBe(2);
    expect(h.v('ZADD', 'z2', 'XX', '1', 'a')).toBe(0);
    expect(h.v('EXISTS', 'z2')).toBe(0);
  });

  test('ZRANGE by rank, score and lex, with REV, LIMIT and WITHSCORES', () => {
    const h = new Harness();
    seed(h);
    expect(h.v('ZRANGE', 'z', '0', '-1')).toEqual(['one', 'two', 'three', 'four']);
    expect(h.v('ZRANGE', 'z', '1', '2', 'WITHSCORES')).toEqual(['two', 2, 'three', 3]);
    expect(h.v('ZRANGE', 'z', '0', '1', 'REV')).toEqual(['four', 'three']);
    expect(h.v('ZREVRANGE', 'z', '0', '0', 'WITHSCORES')).toEqual(['four', 4]);
    expect(h.v('ZRANGE', 'z', '(1', '3', 'BYSCORE')).toEqual(['two', 'three']);
    expect(h.v('ZRANGE', 'z', '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT', '1', '2')).toEqual([
      'three',
      'two',
    ]);
    expect(h.v('ZRANGEBYSCORE', 'z', '-inf', '+inf', 'LIMIT', '2', '-1')).toEqual([
      'three',
      'four',
    ]);
    expect(h.v('ZREVRANGEBYSCORE', 'z', '3', '(1', 'WITHSCORES')).toEqual(['three', 3, 'two', 2]);
    expect(h.v('ZRANGEBYSCORE', 'z', 'x', '1')).toEqual({ err: 'ERR min or max is not a float' });
    expect(h.v('ZRANGE', 'z', '0', '1', 'LIMIT', '0', '1')).toEqual({
      err: 'ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX',
    });
    h.v('ZADD', 'lex', '0', 'a', '0', 'b', '0', 'c', '0', 'd', '0', 'e');
    expect(h.v('ZRANGEBYLEX', 'lex', '-', '[c')).toEqual(['a', 'b', 'c']);
    expect(h.v('ZRANGEBYLEX', 'lex', '(b', '(e')).toEqual(['c', 'd']);
    expect(h.v('ZRANGE', 'lex', '[d', '-', 'BYLEX', 'REV')).toEqual(['d', 'c', 'b', 'a']);
    expect(h.v('ZRANGEBYLEX', 'lex', 'a', '+')).toEqual({
      err: 'ERR min or max not valid string range item',
    });
    expect(h.v('ZLEXCOUNT', 'lex', '[b', '[d')).toBe(3);
    expect(h.v('ZCOUNT', 'z', '(1', '+inf')).toBe(3);
    expect(h.v('ZRANGE', 'nope', '0', '-1')).toEqual([]);
  });

  test('ZRANK, ZREVRANK, ZPOPMIN, ZPOPMAX, ZRANGESTORE, ZSCAN', () => {
    const h = new Harness();
    seed(h);
    expect(h.v('ZRANK', 'z', 'three')).toBe(2);
    expect(h.v('ZREVRANK', 'z', 'three')).toBe(1);
    expect(h.v('ZRANK', 'z', 'three', 'WITHSCORE')).toEqual([2, 3]);
    expect(h.v('ZRANK', 'z', 'nope')).toBeNull();
    expect(h.v('ZRANGESTORE', 'dst', 'z', '2', '-1')).toBe(2);
    expect(h.v('ZRANGE', 'dst', '0', '-1', 'WITHSCORES')).toEqual(['three', 3, 'four', 4]);
    expect(h.v('ZPOPMIN', 'z')).toEqual(['one', 1]);
    expect(h.v('ZPOPMAX', 'z', '2')).toEqual(['four', 4, 'three', 3]);
    expect(h.v('ZPOPMIN', 'z', '-1')).toEqual({
      err: 'ERR value is out of range, must be positive',
    });
    expect(h.v('ZPOPMIN', 'z', '5')).toEqual(['two', 2]);
    expect(h.v('EXISTS', 'z')).toBe(0);
    expect(h.v('ZPOPMIN', 'z')).toEqual([]);
    for (let i = 0; i < 25; i++) h.v('ZADD', 'big', String(i), `m${i}`);
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, flat] = h.v('ZSCAN', 'big', cursor, 'COUNT', '10') as [string, unknown[]];
      for (let i = 0; i < flat.length; i += 2) seen.add(flat[i] as string);
      cursor = next;
    } while (cursor !== '0');
    expect(seen.size).toBe(25);
    expect(h.v('BZPOPMIN', 'big', '0')).toMatchObject({ err: expect.stringContaining('blocking') });
  });
});
