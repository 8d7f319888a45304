import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crcBitwise } from './crc.test-util.js';
import { crc32, crc32Portable } from './crc32.js';

const crc32Naive = (data: Uint8Array): number => crcBitwise(data, 0xedb88320);

const check = new TextEncoder().encode('123456789');

describe('crc32', () => {
  it('matches the published check value, native and portable', () => {
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32Portable(check)).toBe(0xcbf43926);
  });

  it('is 0 for no bytes', () => {
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32Portable(new Uint8Array(0))).toBe(0);
  });

  it('agrees with the bit-at-a-time reference, over views into larger buffers too', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.nat(16),
        fc.nat(16),
        (data, before, after) => {
          const backing = new Uint8Array(before + data.length + after).fill(0xa5);
          backing.set(data, before);
          const view = backing.subarray(before, before + data.length);
          const expected = crc32Naive(data);
          expect(crc32(view)).toBe(expected);
          expect(crc32Portable(view)).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('continues across pieces', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(300), (data, cut) => {
        const at = Math.min(cut, data.length);
        const whole = crc32(data);
        expect(crc32(data.subarray(at), crc32(data.subarray(0, at)))).toBe(whole);
        expect(crc32Portable(data.subarray(at), crc32Portable(data.subarray(0, at)))).toBe(whole);
      }),
      { numRuns: 300 },
    );
  });
});
