import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTandem } from './systems/tandem.js';
import { describeRow, runWorkload } from './workloads.js';

const root = await mkdtemp(join(tmpdir(), 'prof-'));
const sys = await startTandem(root);
const w = JSON.parse(process.argv[2] ?? '{}');
const row = await runWorkload(
  sys,
  { id: 'p', title: 'p', clients: 50, pipeline: 1, valueBytes: 100, readRatio: 0, ...w },
  { keys: 100000, durationMs: 8000, warmupMs: 1000, seed: 1 },
  new Set(),
);
console.log(describeRow(row));
console.log('leader port', sys.ports[0], 'nodes', [...sys.pids()]);
await sys.stop();
console.log('root', root);
