/**
 * Throughput of the two checksums over buffers of record-like and
 * snapshot-chunk sizes: crc32c() (the WAL's records, in JavaScript) and
 * crc32() (snapshot data: zlib's native CRC-32 where Node has it). A
 * measurement, not a test: `npm run bench:crc32c`.
 */

import { crc32, crc32IsNative } from '../src/storage/crc32.js';
import { crc32c } from '../src/storage/crc32c.js';

const totalBytesPerSize = 512 * 1024 * 1024;
const sizesBytes = [100, 1024, 4096, 64 * 1024, 1024 * 1024];

function measure(sum: (data: Uint8Array, crc: number) => number, sizeBytes: number): number {
  const data = new Uint8Array(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) data[i] = (i * 31 + 7) & 0xff;
  const iterations = Math.max(1, Math.floor(totalBytesPerSize / sizeBytes));
  let sink = 0;
  for (let i = 0; i < Math.min(iterations, 1000); i++) sink ^= sum(data, 0); // warm-up
  const startNs = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink ^= sum(data, sink);
  const elapsedNs = Number(process.hrtime.bigint() - startNs);
  if (sink === 0.5) console.log('unreachable'); // keeps the loop from being optimized away
  return (iterations * sizeBytes) / 1e6 / (elapsedNs / 1e9);
}

const sums = [
  { name: 'crc32c', sum: crc32c },
  { name: crc32IsNative ? 'crc32 (native)' : 'crc32 (portable)', sum: crc32 },
];
for (const sizeBytes of sizesBytes) {
  const cells = sums.map(({ name, sum }) => `${name} ${measure(sum, sizeBytes).toFixed(0)} MB/s`);
  console.log(`${String(sizeBytes).padStart(8)} B: ${cells.join(', ')}`);
}
