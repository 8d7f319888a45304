import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { NumberColumn, RefColumn } from './columns.js';

type Op =
  | { readonly kind: 'push'; readonly n: number }
  | { readonly kind: 'truncate'; readonly pick: number }
  | { readonly kind: 'drop'; readonly pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.integer({ min: 1, max: 3000 }).map((n) => ({ kind: 'push' as const, n })),
  },
  { weight: 1, arbitrary: fc.nat().map((pick) => ({ kind: 'truncate' as const, pick })) },
  { weight: 2, arbitrary: fc.nat().map((pick) => ({ kind: 'drop' as const, pick })) },
);

describe('log columns', () => {
  test('behave as arrays through pushes, truncations and front drops (model)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const numbers = new NumberColumn();
        const refs = new RefColumn<{ readonly v: number }>();
        let model: number[] = [];
        let next = 0.5;
        for (const op of ops) {
          if (op.kind === 'push') {
            for (let i = 0; i < op.n; i++) {
              numbers.push(next);
              refs.push({ v: next });
              model.push(next);
              next += 1.25;
            }
          } else {
            const k = op.pick % (model.length + 1);
            if (op.kind === 'truncate') {
              numbers.truncate(k);
              refs.truncate(k);
              model = model.slice(0, k);
            } else {
              numbers.dropFront(k);
              refs.dropFront(k);
              model = model.slice(k);
            }
          }
          expect(numbers.length).toBe(model.length);
          expect(refs.length).toBe(model.length);
          expect(numbers.last()).toBe(model.at(-1));
          for (let k = -1; k <= model.length; k += Math.max(1, Math.floor(model.length / 50))) {
            expect(numbers.get(k)).toBe(model[k]);
            expect(refs.get(k)?.v).toBe(model[k]);
          }
          expect(numbers.get(model.length)).toBeUndefined();
          expect(refs.get(model.length)).toBeUndefined();
        }
      }),
      { numRuns: 200 },
    );
  });

  test('refuse to truncate or drop past their end', () => {
    const c = new NumberColumn();
    c.push(1);
    expect(() => c.truncate(2)).toThrow(/truncate within/);
    expect(() => c.dropFront(2)).toThrow(/drop within/);
  });
});
