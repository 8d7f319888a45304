/**
 * Throughput of crc32c() over buffers of record-like sizes. A measurement,
 * not a test: run `npx tsx src/storage/crc32c.bench.ts`.
 */

import { crc32c } from '../src/storage/crc32c.js';

const totalBytesPerSize = 512 * 1024 * 1024;
const sizesBytes = [100, 1024, 4096, 64 * 1024, 1024 * 1024];

function measure(sizeBytes: number): number {
  const data = new Uint8Array(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) data[i] = (i * 31 + 7) & 0xff;
  const iterations = Math.max(1, Math.floor(totalBytesPerSize / sizeBytes));
  let sink = 0;
  for (let i = 0; i < Math.min(iterations, 1000); i++) sink ^= crc32c(data); // warm-up
  const startNs = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink ^= crc32c(data, sink);
  const elapsedNs = Number(process.hrtime.bigint() - startNs);
  if (sink === 0.5) console.log('unreachable'); // keeps the loop from being optimized away
  return (iterations * sizeBytes) / 1e6 / (elapsedNs / 1e9);
}

for (const sizeBytes of sizesBytes) {
  console.log(`crc32c ${String(sizeBytes).padStart(8)} B: ${measure(sizeBytes).toFixed(0)} MB/s`);
}
