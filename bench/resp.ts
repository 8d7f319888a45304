/**
 * Throughput of the RESP request parser and reply encoder. A measurement, not
 * a test: run `npm run bench:resp`.
 */

import { array, bulk, ok, type Reply } from '../src/kv/reply.js';
import { encodeCommand, ReplyWriter } from '../src/resp/encoder.js';
import { RequestParser } from '../src/resp/parser.js';

const durationMs = 1500;
const pipelineDepth = 16;
/** Socket reads deliver at most this much at a time. */
const chunkBytes = 64 * 1024;

interface Row {
  readonly name: string;
  readonly opsPerSecond: number;
  readonly megabytesPerSecond: number;
}

/** Runs `round` repeatedly for about durationMs after a warm-up; returns rounds per second. */
function measure(round: () => number): number {
  let sink = 0;
  const warmupEnd = performance.now() + 300;
  while (performance.now() < warmupEnd) sink += round();
  let rounds = 0;
  const start = performance.now();
  let elapsedMs = 0;
  while (elapsedMs < durationMs) {
    for (let i = 0; i < 10; i++) sink += round();
    rounds += 10;
    elapsedMs = performance.now() - start;
  }
  if (sink === -1) console.log('unreachable'); // keeps the work from being optimized away
  return rounds / (elapsedMs / 1000);
}

/** SET batches of `pipelineDepth`, fed in socket-sized chunks. */
function parseRow(valueBytes: number): Row {
  const value = 'v'.repeat(valueBytes);
  const batch = Buffer.concat(
    Array.from({ length: pipelineDepth }, (_, i) =>
      encodeCommand(['SET', `key:${String(i).padStart(4, '0')}`, value]),
    ),
  );
  const chunks: Buffer[] = [];
  for (let at = 0; at < batch.length; at += chunkBytes) {
    chunks.push(batch.subarray(at, at + chunkBytes));
  }
  const parser = new RequestParser();
  const roundsPerSecond = measure(() => {
    let commands = 0;
    for (const chunk of chunks) {
      parser.feed(chunk);
      for (let r = parser.next(); r !== null; r = parser.next()) {
        if (!Array.isArray(r)) throw new Error(r.message);
        commands++;
      }
    }
    return commands;
  });
  return {
    name: `parse SET ${valueBytes} B x${pipelineDepth}`,
    opsPerSecond: roundsPerSecond * pipelineDepth,
    megabytesPerSecond: (roundsPerSecond * batch.length) / 1e6,
  };
}

/** Encodes `pipelineDepth` replies per batch and takes the batch, as the server will per read. */
function encodeRow(name: string, reply: Reply): Row {
  const writer = new ReplyWriter();
  let batchBytes = 0;
  const roundsPerSecond = measure(() => {
    for (let i = 0; i < pipelineDepth; i++) writer.write(reply, 2);
    batchBytes = writer.take().length;
    return batchBytes;
  });
  return {
    name: `encode ${name} x${pipelineDepth}`,
    opsPerSecond: roundsPerSecond * pipelineDepth,
    megabytesPerSecond: (roundsPerSecond * batchBytes) / 1e6,
  };
}

const bulk100 = bulk('x'.repeat(100));
const rows = [
  parseRow(100),
  parseRow(16 * 1024),
  encodeRow('+OK', ok),
  encodeRow('bulk 100 B', bulk100),
  encodeRow('array of 10 bulks', array(Array.from({ length: 10 }, (_, i) => bulk(`value-${i}`)))),
];

console.log(`node ${process.version}, ${durationMs} ms per row`);
console.log(`${'case'.padEnd(30)} ${'ops/s'.padStart(14)} ${'MB/s'.padStart(10)}`);
for (const row of rows) {
  const ops = Math.round(row.opsPerSecond).toLocaleString('en-US');
  console.log(
    `${row.name.padEnd(30)} ${ops.padStart(14)} ${row.megabytesPerSecond.toFixed(1).padStart(10)}`,
  );
}
