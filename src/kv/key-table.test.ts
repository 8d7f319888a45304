import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ByteWriter } from './bytes.js';
import { inlineKeyMax, KeyTable } from './key-table.js';

/**
 * Keys from a small pool, so that operations meet existing keys often:
 * short ones over a few characters (many share prefixes and lengths),
 * every byte value, the empty key, keys just around the inline limit, and
 * keys holding characters above 0xff (kept beside their record).
 */
const keyArb = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: fc.constantFrom('a', 'b', 'k', ':'), maxLength: 4 }) },
  {
    weight: 2,
    arbitrary: fc.string({
      unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
      maxLength: 3,
    }),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.integer({ min: inlineKeyMax - 1, max: inlineKeyMax + 2 }),
        fc.constantFrom('x', 'y'),
      )
      .map(([n, c]) => 'k'.repeat(n - 1) + c),
  },
  { weight: 1, arbitrary: fc.constantFrom('\u0100', 'a\u20ac', 'b\u20ac') },
);

type Op =
  | { readonly kind: 'insert'; readonly key: string; readonly slot: number }
  | { readonly kind: 'remove'; readonly key: string }
  | { readonly kind: 'set'; readonly key: string; readonly slot: number; readonly revision: number }
  | { readonly kind: 'fill'; readonly n: number }
  | { readonly kind: 'clear' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .tuple(keyArb, fc.nat())
      .map(([key, slot]) => ({ kind: 'insert' as const, key, slot })),
  },
  { weight: 4, arbitrary: keyArb.map((key) => ({ kind: 'remove' as const, key })) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(keyArb, fc.nat(), fc.nat())
      .map(([key, slot, revision]) => ({ kind: 'set' as const, key, slot, revision })),
  },
  // Many keys at once, then all gone: the index grows and shrinks.
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 80 }).map((n) => ({ kind: 'fill' as const, n })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
);

interface ModelKey {
  readonly id: number;
  slot: number;
  revision: number;
}

function check(t: KeyTable, model: Map<string, ModelKey>, probes: readonly string[]): void {
  expect(t.size).toBe(model.size);
  for (const [key, m] of model) {
    // A key keeps the id it was inserted with for as long as it exists.
    expect(t.find(key)).toBe(m.id);
    expect(t.key(m.id)).toBe(key);
    // A snapshot writes the key from the table's bytes as str writes its string.
    const fromTable = new ByteWriter(1);
    t.writeKey(m.id, fromTable);
    const fromString = new ByteWriter(1);
    fromString.str(key);
    expect(Buffer.from(fromTable.finish())).toEqual(Buffer.from(fromString.finish()));
    expect(t.raw(m.id)).toBe(m.slot);
    expect(t.revision(m.id)).toBe(m.revision);
  }
  for (const key of probes) if (!model.has(key)) expect(t.find(key)).toBe(-1);
  // Iteration in id order meets exactly the keys there are.
  const seen: string[] = [];
  for (let id = 0; id < t.idEnd; id++) if (t.has(id)) seen.push(t.key(id));
  expect(seen.sort()).toEqual([...model.keys()].sort());
}

describe('KeyTable', () => {
  test('finds every key by name and id through inserts, removes, growth and shrinking (model)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 150 }), (ops) => {
        const t = new KeyTable();
        const model = new Map<string, ModelKey>();
        const probes: string[] = [];
        const insert = (key: string, slot: number): void => {
          if (model.has(key)) return;
          const id = t.insert(key, slot, 7);
          for (const m of model.values()) expect(m.id).not.toBe(id);
          model.set(key, { id, slot, revision: 7 });
        };
        const remove = (key: string): void => {
          const m = model.get(key);
          if (m === undefined) return;
          t.remove(m.id);
          expect(t.has(m.id)).toBe(false);
          model.delete(key);
        };
        for (const op of ops) {
          if (op.kind === 'insert') insert(op.key, op.slot);
          else if (op.kind === 'remove') remove(op.key);
          else if (op.kind === 'set') {
            const m = model.get(op.key);
            if (m !== undefined) {
              t.setRaw(m.id, op.slot);
              t.setRevision(m.id, op.revision);
              m.slot = op.slot;
              m.revision = op.revision;
            }
          } else if (op.kind === 'fill') {
            for (let i = 0; i < op.n; i++) insert(`fill:${i}`, i);
          } else {
            for (const key of [...model.keys()]) remove(key);
          }
          if (op.kind !== 'fill' && op.kind !== 'clear') probes.push(op.key);
          check(t, model, probes);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('holds collection values beside the records, and arena slots in them', () => {
    const t = new KeyTable();
    const hash = new Map([['f', 'v']]);
    const id = t.insert('h', hash, 1);
    expect(t.raw(id)).toBe(hash);
    t.setRaw(id, 42);
    expect(t.raw(id)).toBe(42);
    t.setRaw(id, 'a long string value');
    expect(t.raw(id)).toBe('a long string value');
    t.remove(id);
    // A freed id is reused, and its new key starts with no snapshot mark.
    t.setMark(t.insert('x', 0, 2), 5);
    const again = t.insert('y', 1, 3);
    expect(t.mark(again)).toBe(0);
  });

  test('reuses freed ids before new ones, and shrinks its index as keys go', () => {
    const t = new KeyTable();
    const n = 100_000;
    for (let i = 0; i < n; i++) t.insert(`key:${i}`, i, i);
    const full = t.reservedBytes;
    for (let i = 0; i < n; i += 2) t.remove(t.find(`key:${i}`));
    expect(t.size).toBe(n / 2);
    for (let i = 0; i < n; i++) expect(t.find(`key:${i}`) === -1).toBe(i % 2 === 0);
    for (let i = 0; i < n; i += 2) t.insert(`new:${i}`, i, i);
    expect(t.idEnd).toBe(n);
    for (let i = 1; i < n; i += 2) expect(t.raw(t.find(`key:${i}`))).toBe(i);
    for (let i = 0; i < n; i += 2) expect(t.raw(t.find(`new:${i}`))).toBe(i);
    for (let id = 0; id < n; id++) t.remove(id);
    expect(t.size).toBe(0);
    expect(t.reservedBytes).toBeLessThan(full);
    expect(t.find('key:1')).toBe(-1);
  });

  test('refuses to work on a key that is not there', () => {
    const t = new KeyTable();
    const id = t.insert('a', 0, 1);
    t.remove(id);
    expect(() => t.remove(id)).toThrow(/removing a live key/);
    expect(() => t.key(id)).toThrow(/live record/);
  });
});
