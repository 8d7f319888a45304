import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ByteReader, ByteWriter, copyWords, viewOf } from './bytes.js';

/** A binary string: one code unit per byte, 0..255 (see reply.ts). */
const binaryString = (maxLength: number) =>
  fc
    .array(fc.integer({ min: 0, max: 255 }), { maxLength })
    .map((codes) => String.fromCharCode(...codes));

describe('copyWords', () => {
  test('copies any range to any offset, word by word or by a view, and nothing else', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 600 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 7 }),
        (length, srcPad, start, at) => {
          // Views that do not start their buffers: offsets are relative to the view.
          const srcBuf = Buffer.alloc(srcPad + start + length + 5);
          for (let i = 0; i < srcBuf.length; i++) srcBuf[i] = (i * 37 + 11) & 0xff;
          const src = srcBuf.subarray(srcPad);
          const dstBuf = Buffer.alloc(3 + at + length + 5, 0xee);
          const dst = dstBuf.subarray(3);
          copyWords(viewOf(dst), at, viewOf(src), start, start + length);
          const expected = Buffer.alloc(dstBuf.length, 0xee);
          src.copy(expected, 3 + at, start, start + length);
          expect(dstBuf.equals(expected)).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('ByteWriter', () => {
  test('take hands out the bytes so far; writes after it never change them', () => {
    const w = new ByteWriter(8);
    w.str('abc');
    const first = w.take();
    w.str('xyz');
    w.u8(9);
    const second = w.take();
    expect(Buffer.from(first)).toEqual(Buffer.from([3, 0, 0, 0, 97, 98, 99]));
    expect(Buffer.from(second)).toEqual(Buffer.from([3, 0, 0, 0, 120, 121, 122, 9]));
    expect(w.length).toBe(0);
  });

  test('str writes a u32 length and the latin1 bytes, short or long, and reads back', () => {
    fc.assert(
      fc.property(fc.array(binaryString(80), { maxLength: 8 }), (values) => {
        const w = new ByteWriter(1);
        for (const v of values) w.str(v);
        const bytes = w.finish();
        const expected: Buffer[] = [];
        for (const v of values) {
          const length = Buffer.alloc(4);
          length.writeUInt32LE(v.length);
          expected.push(length, Buffer.from(v, 'latin1'));
        }
        expect(Buffer.from(bytes).equals(Buffer.concat(expected))).toBe(true);
        const r = new ByteReader(bytes, 'test');
        for (const v of values) expect(r.str()).toBe(v);
        r.expectEnd();
      }),
      { numRuns: 300 },
    );
  });

  test('u32 is little-endian over the whole range and refuses what is not a u32', () => {
    const values = [0, 1, 0xff, 0x100, 0x12345678, 0x7fffffff, 0x80000000, 0xffffffff];
    const w = new ByteWriter(1);
    for (const v of values) w.u32(v);
    const bytes = Buffer.from(w.finish());
    for (const [i, v] of values.entries()) expect(bytes.readUInt32LE(i * 4)).toBe(v);
    for (const bad of [-1, 2 ** 32, 1.5, Number.NaN]) expect(() => w.u32(bad)).toThrow(/u32/);
  });
});
