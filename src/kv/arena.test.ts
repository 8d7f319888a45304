import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { type ArenaSlot, arenaValueMax, StringArena } from './arena.js';
import { ByteWriter } from './bytes.js';

/** Latin1 strings: every byte value, lengths biased to the small ones keys and values have. */
const valueArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.string({
      unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
      maxLength: 40,
    }),
  },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 300 }).map((n) => 'v'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: arenaValueMax }).map((n) => '\xff'.repeat(n)) },
);

type Op =
  | { readonly kind: 'store'; readonly value: string }
  | { readonly kind: 'replace'; readonly pick: number; readonly value: string }
  | { readonly kind: 'free'; readonly pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: valueArb.map((value) => ({ kind: 'store' as const, value })) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.nat(), valueArb)
      .map(([pick, value]) => ({ kind: 'replace' as const, pick, value })),
  },
  { weight: 2, arbitrary: fc.nat().map((pick) => ({ kind: 'free' as const, pick })) },
);

function slotBytes(length: number): number {
  return Math.ceil((length + 4) / 8) * 8;
}

describe('StringArena', () => {
  test('holds every live value intact through stores, replaces and frees (model)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        const arena = new StringArena();
        const model = new Map<ArenaSlot, string>();
        for (const op of ops) {
          const live = [...model.keys()];
          if (op.kind === 'store') {
            const slot = arena.store(op.value);
            expect(model.has(slot)).toBe(false);
            model.set(slot, op.value);
          } else if (live.length > 0) {
            const slot = live[op.pick % live.length] as ArenaSlot;
            model.delete(slot);
            if (op.kind === 'free') arena.free(slot);
            else model.set(arena.replace(slot, op.value), op.value);
          }
          // No two live slots overlap: every value reads back as stored.
          for (const [slot, value] of model) {
            expect(arena.length(slot)).toBe(value.length);
            expect(arena.read(slot)).toBe(value);
          }
          let live2 = 0;
          for (const value of model.values()) live2 += slotBytes(value.length);
          const stats = arena.stats();
          expect(stats.liveBytes).toBe(live2);
          expect(stats.liveBytes + stats.freeBytes).toBeLessThanOrEqual(stats.reservedBytes);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('a replace of the same size keeps the slot; a freed slot of that size is reused', () => {
    const arena = new StringArena();
    const a = arena.store('x'.repeat(100));
    expect(arena.replace(a, 'y'.repeat(100))).toBe(a);
    expect(arena.replace(a, 'z'.repeat(99))).toBe(a); // 103 and 104 bytes round to 104
    const b = arena.replace(a, 'w'.repeat(200));
    expect(b).not.toBe(a);
    expect(arena.store('q'.repeat(100))).toBe(a);
    expect(arena.stats().freeBytes).toBe(0);
  });

  test('reading or freeing a freed slot fails loudly', () => {
    const arena = new StringArena();
    const a = arena.store('value');
    arena.free(a);
    expect(() => arena.read(a)).toThrow(/read after it was freed/);
    expect(() => arena.free(a)).toThrow(/read after it was freed/);
    expect(() => arena.read(a + (1 << 20))).toThrow(/outside the arena/);
  });

  test('fills many pages, cutting none of its slots across a page end', () => {
    const arena = new StringArena();
    const slots: [ArenaSlot, string][] = [];
    // 3,000 values of 1,000 to 5,000 bytes: about 9 MB, pages of 64 KiB up to 1 MiB.
    for (let i = 0; i < 3_000; i++) {
      const value = String.fromCharCode(i % 256).repeat(1_000 + ((i * 7919) % 4_000));
      slots.push([arena.store(value), value]);
    }
    for (const [slot, value] of slots) expect(arena.read(slot)).toBe(value);
    const stats = arena.stats();
    expect(stats.reservedBytes).toBeGreaterThan(9_000_000);
    // Page tails go to the free lists: a few KiB per page at most.
    expect(stats.freeBytes).toBeLessThan(stats.reservedBytes / 50);
  });

  test('copies between arenas and writes as ByteWriter.str does', () => {
    const a = new StringArena();
    const b = new StringArena();
    // Short values are copied out by a loop, long ones by TypedArray.set.
    for (const value of ['', 'k\x00\xff'.repeat(50), '\x80z'.repeat(600)]) {
      const slot = a.store(value);
      const copied = b.copyFrom(a, slot);
      expect(b.read(copied)).toBe(value);
      const viaArena = new ByteWriter(8);
      viaArena.u8(7);
      b.writeTo(copied, viaArena);
      const viaStr = new ByteWriter(8);
      viaStr.u8(7);
      viaStr.str(value);
      expect(Buffer.from(viaArena.finish())).toEqual(Buffer.from(viaStr.finish()));
    }
    // storeBytes takes the same bytes straight from a buffer (snapshot restore).
    for (const value of ['', 'k\x00\xff'.repeat(50), '\x80z'.repeat(600)]) {
      const src = Buffer.from(`ab${value}cd`, 'latin1');
      const slot = a.storeBytes(src, 2, 2 + value.length);
      expect(a.read(slot)).toBe(value);
    }
    expect(StringArena.fits(arenaValueMax)).toBe(true);
    expect(StringArena.fits(arenaValueMax + 1)).toBe(false);
  });
});
