import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { Deque } from './deque.js';
import { ZSet } from './zset.js';

describe('Deque', () => {
  test('behaves like an array under random operations', () => {
    const op = fc.oneof(
      fc.tuple(fc.constantFrom('pushFront', 'pushBack'), fc.string({ maxLength: 3 })),
      fc.tuple(fc.constantFrom('popFront', 'popBack'), fc.constant('')),
      fc.tuple(fc.constant('set'), fc.string({ maxLength: 3 })),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const d = new Deque();
        const model: string[] = [];
        for (const [kind, v] of ops) {
          if (kind === 'pushFront') {
            d.pushFront(v);
            model.unshift(v);
          } else if (kind === 'pushBack') {
            d.pushBack(v);
            model.push(v);
          } else if (kind === 'popFront') expect(d.popFront()).toBe(model.shift());
          else if (kind === 'popBack') expect(d.popBack()).toBe(model.pop());
          else if (model.length > 0) {
            d.set(model.length - 1, v);
            model[model.length - 1] = v;
          }
        }
        expect(d.size).toBe(model.length);
        expect(d.toArray()).toEqual(model);
        expect(d.clone().toArray()).toEqual(model);
      }),
      { numRuns: 200, seed: 11 },
    );
  });
});

describe('ZSet', () => {
  const member = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'aa', '');
  const score = fc.constantFrom(
    0,
    1,
    1,
    2,
    -3.5,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
  );

  test('rank, range and score ranges match a sorted array', () => {
    const op = fc.oneof(
      fc.tuple(fc.constant('set' as const), member, score),
      fc.tuple(fc.constant('del' as const), member, fc.constant(0)),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), score, score, (ops, lo, hi) => {
        const z = new ZSet();
        const model = new Map<string, number>();
        for (const [kind, m, s] of ops) {
          if (kind === 'set') {
            expect(z.set(m, s)).toBe(!model.has(m));
            model.set(m, s);
          } else expect(z.delete(m)).toBe(model.delete(m));
        }
        const sorted = [...model].sort(
          (x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0),
        );
        expect(z.size).toBe(sorted.length);
        expect([...z.entries()]).toEqual(sorted);
        for (const [i, [m]] of sorted.entries()) expect(z.rank(m)).toBe(i);
        expect(z.rank('zz')).toBeUndefined();
        if (sorted.length > 0) {
          expect(z.rangeByRank(0, sorted.length - 1, true)).toEqual([...sorted].reverse());
          const mid = Math.floor(sorted.length / 2);
          expect(z.rangeByRank(mid, sorted.length - 1, false)).toEqual(sorted.slice(mid));
        }
        const [from, to] = z.scoreRankRange(
          { value: lo, exclusive: true },
          { value: hi, exclusive: false },
        );
        expect(to - from).toBe(sorted.filter(([, s]) => s > lo && s <= hi).length);
        expect(z.clone().rangeByRank(0, z.size - 1, false)).toEqual(sorted);
      }),
      { numRuns: 200, seed: 12 },
    );
  });

  test('O(log n) structure holds at scale', () => {
    const z = new ZSet();
    for (let i = 0; i < 20000; i++) z.set(`m${i}`, (i * 7919) % 20000);
    for (let i = 0; i < 20000; i += 3) z.delete(`m${i}`);
    const all = [...z.entries()];
    for (let i = 1; i < all.length; i++) {
      expect((all[i - 1] as [string, number])[1]).toBeLessThanOrEqual(
        (all[i] as [string, number])[1],
      );
    }
    const probe = all[5000] as [string, number];
    expect(z.rank(probe[0])).toBe(5000);
    expect(z.rangeByRank(5000, 5000, false)).toEqual([probe]);
  });
});
