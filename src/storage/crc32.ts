/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum of gzip
 * and PNG, for bulk data: snapshot files and the snapshot streams between
 * nodes. Node's zlib computes it in native code (`zlib.crc32`, Node 20.15
 * and 22.2 on), 2.3-2.8x as fast as our CRC32C in JavaScript from 4 KiB up
 * (`npm run bench:crc32c`: 4.0-5.0 against 1.75-1.80 GB/s; slower at 100
 * bytes, where the call costs more than the loop), and every snapshot byte
 * passes through it on the node that writes it, on the node that sends it
 * and on the node that receives it.
 *
 * Over megabytes of data the two 32-bit CRCs guard alike: each catches every
 * burst of up to 32 bits and misses a random error with probability 2^-32.
 * CRC32C's better Hamming distance at record sizes is why the WAL's records
 * keep it (crc32c.ts).
 *
 * On Node releases without `zlib.crc32` a table-driven loop in JavaScript
 * computes the same values, more slowly.
 */

import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, crc: number) => number;

const polynomialReflected = 0xedb88320;

/** `zlib.crc32` where this Node has it. */
const native: Crc32 | undefined = (zlib as { crc32?: Crc32 }).crc32;

let table: Int32Array | null = null;

function buildTable(): Int32Array {
  const t = new Int32Array(256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ polynomialReflected : c >>> 1;
    t[b] = c;
  }
  return t;
}

/** One byte per step: the fallback, also the reference the tests hold `crc32` to. */
export function crc32Portable(data: Uint8Array, crc = 0): number {
  table ??= buildTable();
  const t = table;
  let c = ~crc;
  for (let i = 0; i < data.length; i++) {
    c = (t[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  }
  return ~c >>> 0;
}

/**
 * The CRC-32 of `data`, continuing from `crc` (the value returned for the
 * bytes before), so a checksum can be built over pieces.
 *
 * @example
 * crc32(new TextEncoder().encode('123456789')) === 0xcbf43926;
 * crc32(b, crc32(a)) === crc32(concat(a, b));
 */
export function crc32(data: Uint8Array, crc = 0): number {
  return native === undefined ? crc32Portable(data, crc) : native(data, crc >>> 0) >>> 0;
}

/** Whether `crc32` runs natively here (reported by the benchmark). */
export const crc32IsNative = native !== undefined;
