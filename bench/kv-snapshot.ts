/**
 * Speed of the kv snapshot image (issue 8): encoding a keyspace into chunks
 * (what every node does at each snapshot) and restoring one as a stream
 * (what a restart and an installed snapshot do). In one process, no disk:
 * the storage layer's checksum and writes are not included. A measurement,
 * not a test:
 *
 *   npm run bench:kv-snapshot -- [--keys 1000000] [--value-bytes 100] [--runs 5]
 */

import { Command } from 'commander';
import { KvStateMachine } from '../src/kv/state-machine.js';
import { int } from './cli-args.js';

const o = new Command('bench:kv-snapshot')
  .option('--keys <n>', 'keys in the keyspace', int(1), 1_000_000)
  .option('--value-bytes <n>', 'value size', int(1), 100)
  .option('--runs <n>', 'runs of each measurement (the best is printed)', int(1), 5)
  .parse()
  .opts<{ keys: number; valueBytes: number; runs: number }>();

/** Keys per MSET entry while loading. */
const loadBatchKeys = 1000;

function load(): KvStateMachine {
  const sm = new KvStateMachine();
  const value = 'v'.repeat(o.valueBytes);
  let index = 0;
  for (let first = 0; first < o.keys; first += loadBatchKeys) {
    const argv = ['MSET'];
    for (let k = first; k < Math.min(o.keys, first + loadBatchKeys); k++)
      argv.push(`key:${k}`, value);
    const entry = sm.prepareWrite(0, argv, 1_000, 1);
    if (!(entry instanceof Uint8Array)) throw new Error(`MSET refused: ${JSON.stringify(entry)}`);
    sm.apply(++index, entry);
  }
  return sm;
}

function timed<T>(run: () => T): { ms: number; value: T } {
  const started = process.hrtime.bigint();
  const value = run();
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, value };
}

function report(what: string, msRuns: number[], bytes: number): void {
  const best = Math.min(...msRuns);
  const perKeyNs = (best * 1e6) / o.keys;
  console.log(
    `${what}: best ${best.toFixed(0)} ms of ${msRuns.map((ms) => ms.toFixed(0)).join(' / ')}; ` +
      `${(bytes / 1e6 / (best / 1000)).toFixed(0)} MB/s, ${perKeyNs.toFixed(0)} ns per key`,
  );
}

const sm = load();
console.log(`bench:kv-snapshot: ${o.keys} keys of ${o.valueBytes} B`);
const encodeMs: number[] = [];
let imageBytes = 0;
for (let run = 0; run < o.runs; run++) {
  // Each chunk is dropped once counted, as a node drops it once written.
  const { ms, value } = timed(() => {
    let bytes = 0;
    for (const chunk of sm.snapshot()) bytes += chunk.length;
    return bytes;
  });
  encodeMs.push(ms);
  imageBytes = value;
}
console.log(`image: ${(imageBytes / 2 ** 20).toFixed(1)} MiB`);
report('encode', encodeMs, imageBytes);
const chunks = [...sm.snapshot()];
const restoreMs: number[] = [];
for (let run = 0; run < o.runs; run++) {
  // The path a node takes: streaming, the end of the image checked.
  const started = process.hrtime.bigint();
  const restored = await KvStateMachine.restoreAsync(chunks);
  restoreMs.push(Number(process.hrtime.bigint() - started) / 1e6);
  if (restored.digest() !== sm.digest())
    throw new Error('the restored keyspace differs from the original');
}
report('restore', restoreMs, imageBytes);
