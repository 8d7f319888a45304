import { describe, expect, test } from 'vitest';
import { Harness } from './kv.test-util.js';

describe('list commands', () => {
  test('push, pop, LLEN, LRANGE, LINDEX', () => {
    const h = new Harness();
    expect(h.v('RPUSH', 'l', 'a', 'b')).toBe(2);
    expect(h.v('LPUSH', 'l', 'x', 'y')).toBe(4);
    expect(h.v('LRANGE', 'l', '0', '-1')).toEqual(['y', 'x', 'a', 'b']);
    expect(h.v('LRANGE', 'l', '-2', '100')).toEqual(['a', 'b']);
    expect(h.v('LRANGE', 'l', '5', '10')).toEqual([]);
    expect(h.v('LINDEX', 'l', '-1')).toBe('b');
    expect(h.v('LINDEX', 'l', '9')).toBeNull();
    expect(h.v('LPUSHX', 'nope', 'a')).toBe(0);
    expect(h.v('RPUSHX', 'l', 'c')).toBe(5);
    expect(h.v('LPOP', 'l')).toBe('y');
    expect(h.v('RPOP', 'l', '2')).toEqual(['c', 'b']);
    expect(h.v('LPOP', 'l', '0')).toEqual([]);
    expect(h.v('LPOP', 'l', '-1')).toEqual({ err: 'ERR value is out of range, must be positive' });
    expect(h.v('LLEN', 'l')).toBe(2);
    expect(h.v('LPOP', 'l', '5')).toEqual(['x', 'a']);
    expect(h.v('EXISTS', 'l')).toBe(0);
    expect(h.v('LPOP', 'l')).toBeNull();
    expect(h.cmd('LPOP', 'l', '2')).toEqual({ kind: 'nullArray' });
  });

  test('O(1) at both ends across ring-buffer growth', () => {
    const h = new Harness();
    for (let i = 0; i < 100; i++) {
      h.v('LPUSH', 'l', `L${i}`);
      h.v('RPUSH', 'l', `R${i}`);
    }
    const all = h.v('LRANGE', 'l', '0', '-1') as string[];
    expect(all[0]).toBe('L99');
    expect(all[199]).toBe('R99');
    expect(all[100]).toBe('R0');
  });

  test('LSET, LREM, LTRIM, LINSERT, LPOS', () => {
    const h = new Harness();
    h.v('RPUSH', 'l', 'a', 'b', 'a', 'c', 'a');
    expect(h.v('LSET', 'l', '1', 'B')).toBe('OK');
    expect(h.v('LSET', 'l', '10', 'x')).toEqual({ err: 'ERR index out of range' });
    expect(h.v('LSET', 'nope', '0', 'x')).toEqual({ err: 'ERR no such key' });
    expect(h.v('LPOS', 'l', 'a')).toBe(0);
    expect(h.v('LPOS', 'l', 'a', 'RANK', '2')).toBe(2);
    expect(h.v('LPOS', 'l', 'a', 'RANK', '-1')).toBe(4);
    expect(h.v('LPOS', 'l', 'a', 'COUNT', '0')).toEqual([0, 2, 4]);
    expect(h.v('LPOS', 'l', 'a', 'COUNT', '2', 'MAXLEN', '3')).toEqual([0, 2]);
    expect(h.v('LPOS', 'l', 'zz')).toBeNull();
    expect(h.v('LPOS', 'l', 'a', 'RANK', '0')).toMatchObject({
      err: expect.stringContaining("RANK can't be zero"),
    });
    expect(h.v('LREM', 'l', '-1', 'a')).toBe(1);
    expect(h.v('LRANGE', 'l', '0', '-1')).toEqual(['a', 'B', 'a', 'c']);
    expect(h.v('LREM', 'l', '0', 'a')).toBe(2);
    expect(h.v('LINSERT', 'l', 'BEFORE', 'c', 'x')).toBe(3);
    expect(h.v('LINSERT', 'l', 'AFTER', 'c', 'y')).toBe(4);
    expect(h.v('LINSERT', 'l', 'AFTER', 'zz', 'y')).toBe(-1);
    expect(h.v('LINSERT', 'l', 'MIDDLE', 'c', 'y')).toEqual({ err: 'ERR syntax error' });
    expect(h.v('LRANGE', 'l', '0', '-1')).toEqual(['B', 'x', 'c', 'y']);
    expect(h.v('LTRIM', 'l', '1', '-2')).toBe('OK');
    expect(h.v('LRANGE', 'l', '0', '-1')).toEqual(['x', 'c']);
    expect(h.v('LTRIM', 'l', '5', '10')).toBe('OK');
    expect(h.v('EXISTS', 'l')).toBe(0);
  });

  test('LMOVE and RPOPLPUSH, including rotation on one key', () => {
    const h = new Harness();
    h.v('RPUSH', 'src', 'one', 'two', 'three');
    expect(h.v('RPOPLPUSH', 'src', 'dst')).toBe('three');
    expect(h.v('LMOVE', 'src', 'dst', 'LEFT', 'RIGHT')).toBe('one');
    expect(h.v('LRANGE', 'dst', '0', '-1')).toEqual(['three', 'one']);
    expect(h.v('LMOVE', 'dst', 'dst', 'LEFT', 'RIGHT')).toBe('three');
    expect(h.v('LRANGE', 'dst', '0', '-1')).toEqual(['one', 'three']);
    expect(h.v('LMOVE', 'nope', 'dst', 'LEFT', 'RIGHT')).toBeNull();
    expect(h.v('LMOVE', 'src', 'dst', 'UP', 'RIGHT')).toEqual({ err: 'ERR syntax error' });
    h.v('SET', 'str', 'x');
    expect(h.v('LMOVE', 'src', 'str', 'LEFT', 'LEFT')).toMatchObject({
      err: expect.stringContaining('WRONGTYPE'),
    });
    expect(h.v('LLEN', 'src')).toBe(1);
  });

  test('blocking forms are listed but answer an error', () => {
    const h = new Harness();
    for (const argv of [
      ['BLPOP', 'l', '0'],
      ['BRPOP', 'l', '1'],
      ['BLMOVE', 'a', 'b', 'LEFT', 'LEFT', '0'],
    ]) {
      expect(h.v(...argv)).toEqual({
        err: 'ERR blocking commands are not supported yet; use the non-blocking form',
      });
    }
  });
});
