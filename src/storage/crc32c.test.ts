import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crcBitwise } from './crc.test-util.js';
import { crc32c } from './crc32c.js';

const crc32cNaive = (data: Uint8Array): number => crcBitwise(data, 0x82f63b78);

describe('crc32c', () => {
  it('matches the published check value', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('matches the RFC 3720 B.4 test vectors', () => {
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it('is 0 for no bytes', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('agrees with the bit-at-a-time reference', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        expect(crc32c(data)).toBe(crc32cNaive(data));
      }),
      { numRuns: 500 },
    );
  });

  it('continues across pieces and honours start/end', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (data, cut) => {
        const at = data.length === 0 ? 0 : cut % (data.length + 1);
        const whole = crc32c(data);
        expect(crc32c(data.subarray(at), crc32c(data.subarray(0, at)))).toBe(whole);
        expect(crc32c(data, crc32c(data, 0, 0, at), at)).toBe(whole);
      }),
    );
  });

  it('agrees with the reference on long inputs at every alignment (the word loop)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 256, maxLength: 3000 }),
        fc.nat(7),
        fc.nat(),
        (data, shift, seed) => {
          // The same bytes at another offset in their buffer, and a chained start.
          const buffer = new Uint8Array(data.length + 8);
          buffer.set(data, shift);
          const moved = buffer.subarray(shift, shift + data.length);
          expect(crc32c(moved)).toBe(crc32cNaive(data));
          const at = seed % (data.length + 1);
          expect(crc32c(moved, crc32c(moved, 0, 0, at), at)).toBe(crc32cNaive(data));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects a range outside the data', () => {
    expect(() => crc32c(new Uint8Array(4), 0, 2, 5)).toThrow(RangeError);
    expect(() => crc32c(new Uint8Array(4), 0, 3, 2)).toThrow(RangeError);
  });
});
