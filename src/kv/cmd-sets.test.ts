import { describe, expect, test } from 'vitest';
import { Harness } from './kv.test-util.js';

const sorted = (v: unknown) => [...(v as string[])].sort();

describe('set commands', () => {
  test('SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD', () => {
    const h = new Harness();
    expect(h.v('SADD', 's', 'a', 'b', 'a')).toBe(2);
    expect(h.v('SADD', 's', 'b', 'c')).toBe(1);
    expect(h.cmd('SMEMBERS', 's').kind).toBe('set');
    expect(sorted(h.v('SMEMBERS', 's'))).toEqual(['a', 'b', 'c']);
    expect(h.v('SISMEMBER', 's', 'a')).toBe(1);
    expect(h.v('SMISMEMBER', 's', 'a', 'z')).toEqual([1, 0]);
    expect(h.v('SCARD', 's')).toBe(3);
    expect(h.v('SREM', 's', 'a', 'z')).toBe(1);
    expect(h.v('SREM', 's', 'b', 'c')).toBe(2);
    expect(h.v('EXISTS', 's')).toBe(0);
    h.v('SET', 'str', 'v');
    expect(h.v('SADD', 'str', 'x')).toEqual({
      err: 'WRONGTYPE Operation against a key holding the wrong kind of value',
    });
  });

  test('SPOP and SRANDMEMBER', () => {
    const h = new Harness();
    h.v('SADD', 's', 'a', 'b', 'c', 'd', 'e');
    const one = h.v('SPOP', 's') as string;
    expect(['a', 'b', 'c', 'd', 'e']).toContain(one);
    expect(h.v('SCARD', 's')).toBe(4);
    expect((h.v('SPOP', 's', '2') as string[]).length).toBe(2);
    expect(h.v('SPOP', 's', '-1')).toEqual({ err: 'ERR value is out of range, must be positive' });
    expect(h.v('SPOP', 's', '0')).toEqual([]);
    expect((h.v('SPOP', 's', '10') as string[]).length).toBe(2);
    expect(h.v('EXISTS', 's')).toBe(0);
    expect(h.v('SPOP', 's')).toBeNull();
    h.v('SADD', 's', 'a', 'b', 'c');
    expect((h.v('SRANDMEMBER', 's', '2') as string[]).length).toBe(2);
    expect(sorted(h.v('SRANDMEMBER', 's', '10'))).toEqual(['a', 'b', 'c']);
    expect((h.v('SRANDMEMBER', 's', '-10') as string[]).length).toBe(10);
    expect(h.v('SRANDMEMBER', 'nope')).toBeNull();
    expect(h.v('SRANDMEMBER', 'nope', '3')).toEqual([]);
  });

  test('SPOP is resolved from the entry seed: same entry, same member on every node', () => {
    const a = new Harness();
    const b = new Harness(undefined, 999);
    for (const h of [a, b]) h.write('SADD', 's', ...Array.from({ length: 50 }, (_, i) => `m${i}`));
    const data = a.sm.prepareWrite(0, ['SPOP', 's', '3'], a.nowMs, 12345) as Uint8Array;
    expect(b.applyData(data)).toEqual(a.applyData(data));
    expect(a.sm.digest()).toBe(b.sm.digest());
  });

  test('algebra and STORE variants', () => {
    const h = new Harness();
    h.v('SADD', 'k1', 'a', 'b', 'c', 'd');
    h.v('SADD', 'k2', 'c');
    h.v('SADD', 'k3', 'a', 'c', 'e');
    expect(sorted(h.v('SINTER', 'k1', 'k2', 'k3'))).toEqual(['c']);
    expect(sorted(h.v('SUNION', 'k1', 'k2', 'k3'))).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(sorted(h.v('SDIFF', 'k1', 'k2', 'k3'))).toEqual(['b', 'd']);
    expect(h.v('SINTER', 'k1', 'nope')).toEqual([]);
    expect(h.v('SINTERSTORE', 'dst', 'k1', 'k3')).toBe(2);
    expect(sorted(h.v('SMEMBERS', 'dst'))).toEqual(['a', 'c']);
    expect(h.v('SUNIONSTORE', 'k1', 'k1', 'k3')).toBe(5);
    expect(h.v('SDIFFSTORE', 'dst', 'k2', 'k3')).toBe(0);
    expect(h.v('EXISTS', 'dst')).toBe(0);
    expect(h.v('SINTERCARD', '2', 'k1', 'k3')).toBe(3);
    expect(h.v('SINTERCARD', '2', 'k1', 'k3', 'LIMIT', '1')).toBe(1);
    expect(h.v('SINTERCARD', '0', 'k1')).toEqual({ err: 'ERR numkeys should be greater than 0' });
    expect(h.v('SINTERCARD', '3', 'k1')).toEqual({
      err: "ERR Number of keys can't be greater than number of args",
    });
    h.v('SET', 'str', 'x');
    expect(h.v('SUNION', 'k1', 'str')).toMatchObject({ err: expect.stringContaining('WRONGTYPE') });
  });

  test('SMOVE and SSCAN', () => {
    const h = new Harness();
    h.v('SADD', 'src', 'a', 'b');
    h.v('SADD', 'dst', 'c');
    expect(h.v('SMOVE', 'src', 'dst', 'a')).toBe(1);
    expect(h.v('SMOVE', 'src', 'dst', 'zz')).toBe(0);
    expect(h.v('SMOVE', 'src', 'new', 'b')).toBe(1);
    expect(h.v('EXISTS', 'src')).toBe(0);
    expect(sorted(h.v('SMEMBERS', 'dst'))).toEqual(['a', 'c']);
    for (let i = 0; i < 25; i++) h.v('SADD', 'big', String(i));
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, batch] = h.v('SSCAN', 'big', cursor, 'COUNT', '10') as [string, string[]];
      for (const m of batch) seen.add(m);
      cursor = next;
    } while (cursor !== '0');
    expect(seen.size).toBe(25);
    expect(h.v('SSCAN', 'big', '0', 'MATCH', '2?', 'COUNT', '100')).toEqual([
      '0',
      ['20', '21', '22', '23', '24'],
    ]);
  });
});
