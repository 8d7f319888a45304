import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { CorruptDataError } from './bytes.js';
import { decodeEntry, decodePlainSet, type Entry, encodeEntry } from './entry-codec.js';

const bin = fc.string({
  unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
  maxLength: 20,
});
const argv = fc.array(bin, { minLength: 1, maxLength: 6 });
const db = fc.integer({ min: 0, max: 15 });
const common = {
  nowMs: fc.integer({ min: 0, max: 2 ** 50 }),
  seed: fc.integer({ min: 0, max: 0xffffffff }),
};

const entryArb: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({ tag: fc.constant('command' as const), ...common, db, argv }),
  fc.record({
    tag: fc.constant('exec' as const),
    ...common,
    db,
    watched: fc.array(fc.record({ db, key: bin, revision: fc.nat() }), { maxLength: 3 }),
    commands: fc.array(argv, { maxLength: 4 }),
  }),
  fc.record({
    tag: fc.constant('expire' as const),
    ...common,
    keys: fc.array(fc.record({ db, key: bin }), { maxLength: 4 }),
  }),
);

describe('entry codec', () => {
  test('round-trips every entry (binary strings included)', () => {
    fc.assert(
      fc.property(entryArb, (e) => {
        expect(decodeEntry(encodeEntry(e))).toEqual(e);
      }),
      { numRuns: 300, seed: 5 },
    );
  });

  test('refuses to encode strings that are not binary (a caller bug)', () => {
    expect(() =>
      encodeEntry({ tag: 'command', nowMs: 0, seed: 0, db: 0, argv: ['SET', 'k', '\u20ac'] }),
    ).toThrow(/binary strings/);
  });

  test('every truncation is rejected with a clear error', () => {
    fc.assert(
      fc.property(entryArb, fc.nat(), (e, cut) => {
        const data = encodeEntry(e);
        const n = cut % data.length;
        expect(() => decodeEntry(data.subarray(0, n))).toThrow(CorruptDataError);
      }),
      { numRuns: 300, seed: 6 },
    );
  });

  test('reads a plain SET from its bytes exactly when decodeEntry gives one, and never more', () => {
    const setArgv = fc.oneof(
      fc.tuple(fc.constantFrom('SET', 'set', 'sEt', 'SETX', 'SE', 'GET'), bin, bin),
      fc.tuple(fc.constant('SET'), bin, bin, fc.constantFrom('NX', 'EX')),
    );
    const setEntry: fc.Arbitrary<Entry> = fc.oneof(
      fc.record({ tag: fc.constant('command' as const), ...common, db, argv: setArgv }),
      entryArb,
    );
    fc.assert(
      fc.property(
        setEntry,
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (e, cut, at, byte) => {
          const data = encodeEntry(e);
          const set = decodePlainSet(data);
          const plain =
            e.tag === 'command' && e.argv.length === 3 && e.argv[0]?.toLowerCase() === 'set';
          expect(set !== undefined).toBe(plain);
          if (set !== undefined && e.tag === 'command') {
            expect([set.db, set.nowMs, set.key]).toEqual([e.db, e.nowMs, e.argv[1]]);
            expect(set.value.toString()).toBe(e.argv[2]);
          }
          // Damaged bytes: either not a plain SET, or the very SET decodeEntry reads.
          const damaged = Buffer.from(data.subarray(0, data.length - (cut % 3)));
          if (damaged.length > 0) damaged[at % damaged.length] = byte;
          const fast = decodePlainSet(damaged);
          if (fast !== undefined) {
            const full = decodeEntry(damaged);
            expect(full.tag).toBe('command');
            if (full.tag === 'command') {
              expect(full.argv.length).toBe(3);
              expect(full.argv[0]?.toLowerCase()).toBe('set');
              expect([fast.db, fast.nowMs, fast.key]).toEqual([full.db, full.nowMs, full.argv[1]]);
              expect(fast.value.toString()).toBe(full.argv[2]);
            }
          }
        },
      ),
      { numRuns: 1000, seed: 7 },
    );
  });
});
