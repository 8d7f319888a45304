/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of iSCSI
 * (RFC 3720), ext4 metadata and most write-ahead logs. Its Hamming distance
 * beats CRC32 (IEEE) at record sizes, which is why storage framing uses it.
 *
 * Pure TypeScript, slicing-by-16: sixteen 256-entry tables let the loop
 * consume sixteen bytes per iteration, read as four 32-bit words, with
 * independent lookups instead of one byte per dependent lookup. Short
 * inputs take an eight-byte loop over single byte reads instead, since the
 * word view costs an allocation per call. Measured (`npm run bench:crc32c`,
 * against slicing-by-8 alone): 1 KiB 1.29-1.30 -> 1.58-1.62 GB/s, 64 KiB
 * 1.31 -> 1.70-1.81 GB/s, 100 B unchanged at 1.14-1.16 GB/s.
 * Written by hand rather than taken from npm because the
 * pure-JS packages found are byte-at-a-time (@aws-crypto/crc32c, which also
 * pulls in @aws-sdk/types and tslib) and the fast ones need a native addon
 * (fast-crc32c via sse4_crc32, @chainsafe/fast-crc32c via @node-rs/crc32).
 */

const polynomialReflected = 0x82f63b78;
const tableCount = 16;
/** 32-bit words read from bytes [b0, b1, b2, b3] are b0 | b1 << 8 | ... (true on x64 and arm64). */
const littleEndian = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
/** From this many bytes on, the word loop (which makes a view) beats the byte loop. */
const wordLoopBytesMin = 256;

/** tables[k * 256 + b]: the CRC of byte b followed by k zero bytes. */
const tables: Int32Array = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(tableCount * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ polynomialReflected : c >>> 1;
    t[b] = c;
  }
  for (let b = 0; b < 256; b++) {
    let c = t[b] as number;
    for (let k = 1; k < tableCount; k++) {
      c = (t[c & 0xff] as number) ^ (c >>> 8);
      t[k * 256 + b] = c;
    }
  }
  return t;
}

/**
 * Computes the CRC32C of `data[start, end)`, continuing from `crc` (the value
 * returned for the bytes before), so a checksum can be built over pieces.
 *
 * @example
 * crc32c(new TextEncoder().encode('123456789')) === 0xe3069283;
 * crc32c(b, crc32c(a)) === crc32c(concat(a, b));
 */
export function crc32c(data: Uint8Array, crc = 0, start = 0, end: number = data.length): number {
  if (!(start >= 0 && start <= end && end <= data.length)) {
    throw new RangeError(`crc32c: range [${start}, ${end}) outside 0..${data.length}`);
  }
  return littleEndian && end - start >= wordLoopBytesMin
    ? crcOfLong(data, crc, start, end)
    : crcOfBytes(data, crc, start, end);
}

/** Aligns to 4 bytes, runs the word loop, and leaves the rest to the byte loop. */
function crcOfLong(data: Uint8Array, crc: number, start: number, end: number): number {
  const t = tables;
  let c = ~crc;
  let i = start;
  while (((data.byteOffset + i) & 3) !== 0) {
    c = (t[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
    i++;
  }
  const words = new Int32Array(data.buffer, data.byteOffset + i, (end - i) >>> 2);
  const wordsEnd = (words.length >>> 2) << 2;
  c = crcOfWords(words, wordsEnd, c);
  return crcOfBytes(data, ~c >>> 0, i + (wordsEnd << 2), end);
}

/** Eight bytes per iteration through single byte reads, then one at a time. */
function crcOfBytes(data: Uint8Array, crc: number, start: number, end: number): number {
  const t = tables;
  let c = ~crc;
  let i = start;
  // Casts: every index below is in bounds (i + 7 < end <= length, word
  // indices below the view's length, table indices masked to 0..255 plus a
  // table offset), and the checks that noUncheckedIndexedAccess would want
  // cost a third of the throughput.
  const end8 = end - 8;
  while (i <= end8) {
    c ^=
      (data[i] as number) |
      ((data[i + 1] as number) << 8) |
      ((data[i + 2] as number) << 16) |
      ((data[i + 3] as number) << 24);
    c =
      (t[1792 + (c & 0xff)] as number) ^
      (t[1536 + ((c >>> 8) & 0xff)] as number) ^
      (t[1280 + ((c >>> 16) & 0xff)] as number) ^
      (t[1024 + (c >>> 24)] as number) ^
      (t[768 + (data[i + 4] as number)] as number) ^
      (t[512 + (data[i + 5] as number)] as number) ^
      (t[256 + (data[i + 6] as number)] as number) ^
      (t[data[i + 7] as number] as number);
    i += 8;
  }
  while (i < end) {
    c = (t[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
    i++;
  }
  return ~c >>> 0;
}

/** Continues the (inverted) crc `c` over words[0, wordsEnd), sixteen bytes at a time. */
function crcOfWords(words: Int32Array, wordsEnd: number, crc: number): number {
  const t = tables;
  let c = crc;
  for (let w = 0; w < wordsEnd; w += 4) {
    c ^= words[w] as number;
    const b = words[w + 1] as number;
    const d = words[w + 2] as number;
    const e = words[w + 3] as number;
    c =
      (t[3840 + (c & 0xff)] as number) ^
      (t[3584 + ((c >>> 8) & 0xff)] as number) ^
      (t[3328 + ((c >>> 16) & 0xff)] as number) ^
      (t[3072 + (c >>> 24)] as number) ^
      (t[2816 + (b & 0xff)] as number) ^
      (t[2560 + ((b >>> 8) & 0xff)] as number) ^
      (t[2304 + ((b >>> 16) & 0xff)] as number) ^
      (t[2048 + (b >>> 24)] as number) ^
      (t[1792 + (d & 0xff)] as number) ^
      (t[1536 + ((d >>> 8) & 0xff)] as number) ^
      (t[1280 + ((d >>> 16) & 0xff)] as number) ^
      (t[1024 + (d >>> 24)] as number) ^
      (t[768 + (e & 0xff)] as number) ^
      (t[512 + ((e >>> 8) & 0xff)] as number) ^
      (t[256 + ((e >>> 16) & 0xff)] as number) ^
      (t[e >>> 24] as number);
  }
  return c;
}
