import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProposalTable } from './proposal-table.js';

class P {
  next: P | null = null;
  constructor(
    readonly index: number,
    readonly tag: string,
  ) {}
}

function chain(p: P | null): string[] {
  const tags: string[] = [];
  for (; p !== null; p = p.next) tags.push(p.tag);
  return tags;
}

describe('ProposalTable', () => {
  it('keeps indexes that share a slot apart, and several proposals at one index', () => {
    const t = new ProposalTable<P>(16);
    t.add(new P(3, 'a'));
    t.add(new P(19, 'b')); // same slot as 3
    t.add(new P(3, 'c')); // a newer proposal at 3
    expect(t.size).toBe(3);
    expect(t.newestAt(3)?.tag).toBe('c');
    expect(t.indexes()).toEqual([3, 19]);
    expect(chain(t.take(3))).toEqual(['c', 'a']);
    expect(t.size).toBe(1);
    expect(t.take(3)).toBeNull();
    expect(t.newestAt(19)?.next).toBeNull();
    expect(chain(t.take(19))).toEqual(['b']);
    expect(t.size).toBe(0);
    expect(t.indexes()).toEqual([]);
  });

  it('behaves as a map from index to the proposals there, newest first', () => {
    const op = fc.oneof(
      fc.record({ add: fc.integer({ min: 1, max: 200 }) }),
      fc.record({ take: fc.integer({ min: 1, max: 200 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const t = new ProposalTable<P>(16);
        const model = new Map<number, string[]>();
        let n = 0;
        for (const o of ops) {
          if ('add' in o) {
            const tag = `p${n++}`;
            t.add(new P(o.add, tag));
            model.set(o.add, [tag, ...(model.get(o.add) ?? [])]);
          } else {
            expect(chain(t.take(o.take))).toEqual(model.get(o.take) ?? []);
            model.delete(o.take);
          }
          expect(t.size).toBe([...model.values()].reduce((a, tags) => a + tags.length, 0));
        }
        expect(t.indexes()).toEqual([...model.keys()].sort((a, b) => a - b));
      }),
      { numRuns: 200 },
    );
  });
});
