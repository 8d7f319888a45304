/**
 * `npm run bench`: one workload against a local Tandem cluster (fsync on),
 * load from a separate process. A measurement, not a test:
 *
 *   npm run bench -- [--nodes 3] [--clients 50] [--pipeline 1] [--value-bytes 100]
 *                    [--read-ratio 0] [--keys 100000] [--duration-ms 10000] [--warmup-ms 2000]
 *                    [--system tandem|redis|etcd] [--tandem-args '--read-mode lease'] [--json]
 *                    [--populate]
 *
 * Prints throughput, latency p50/p90/p99/p999 (HDR histogram), and the CPU
 * time and peak RSS of each server process during the measured run.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { int } from './cli-args.js';
import { populate } from './load/populate.js';
import { etcdMissing, startEtcd } from './systems/etcd.js';
import { redisMissing, startRedis } from './systems/redis.js';
import type { BenchSystem } from './systems/system.js';
import { startTandem } from './systems/tandem.js';
import { describeRow, runWorkload } from './workloads.js';

const ratio = (text: string): number => {
  const n = Number(text);
  if (!(n >= 0 && n <= 1))
    throw new InvalidArgumentError(`expected a number in [0, 1], got '${text}'`);
  return n;
};

const program = new Command('bench')
  .option('--system <name>', 'tandem, redis or etcd', 'tandem')
  .option('--nodes <n>', 'Tandem nodes', int(1), 3)
  .option('--clients <n>', 'connections', int(1), 50)
  .option('--pipeline <n>', 'requests in flight per connection', int(1), 1)
  .option('--value-bytes <n>', 'value size', int(1), 100)
  .option('--read-ratio <r>', 'fraction of GETs (the rest are SETs)', ratio, 0)
  .option('--keys <n>', 'distinct keys', int(1), 100_000)
  .option('--duration-ms <n>', 'measured time', int(1), 10_000)
  .option('--warmup-ms <n>', 'unmeasured load first', int(0), 2_000)
  .option('--seed <n>', 'key choice seed', int(0), 1)
  .option(
    '--tandem-args <flags>',
    "extra flags for every Tandem node, e.g. '--read-mode lease' or '--snapshot-mb 256'",
    '',
  )
  .option(
    '--populate',
    'write every key before the run (read workloads always do), so SETs overwrite a full keyspace',
  )
  .option('--json', 'also print the row as one JSON line')
  .parse();
const o = program.opts<{
  system: string;
  tandemArgs: string;
  nodes: number;
  clients: number;
  pipeline: number;
  valueBytes: number;
  readRatio: number;
  keys: number;
  durationMs: number;
  warmupMs: number;
  seed: number;
  populate?: boolean;
  json?: boolean;
}>();

const root = await mkdtemp(join(tmpdir(), 'tandem-bench-'));
let system: BenchSystem | null = null;
try {
  system = await start(o.system);
  const populated = new Set<number>();
  if (o.populate === true) {
    const port = system.ports[0] as number;
    await populate(system.protocol, '127.0.0.1', port, o.keys, o.valueBytes);
    populated.add(o.valueBytes);
  }
  const row = await runWorkload(
    system,
    {
      id: 'custom',
      title: 'custom',
      clients: o.clients,
      pipeline: o.pipeline,
      valueBytes: o.valueBytes,
      readRatio: o.readRatio,
    },
    { keys: o.keys, durationMs: o.durationMs, warmupMs: o.warmupMs, seed: o.seed },
    populated,
  );
  console.log(
    `bench: ${o.system}${o.system === 'tandem' ? ` (${o.nodes} nodes)` : ''}, ${o.clients} clients, ` +
      `pipeline ${o.pipeline}, ${o.valueBytes} B values, ${Math.round(o.readRatio * 100)}% reads, ` +
      `${o.keys} keys${o.populate === true ? ' (populated)' : ''}, ${o.durationMs} ms after ${o.warmupMs} ms warm-up`,
  );
  console.log(describeRow(row));
  if (o.json === true) console.log(JSON.stringify({ bench: 'load', options: o, row }));
} finally {
  await system?.stop();
  await rm(root, { recursive: true, force: true });
}

async function start(name: string): Promise<BenchSystem> {
  switch (name) {
    case 'tandem':
      return startTandem(
        root,
        o.nodes,
        o.tandemArgs.split(' ').filter((f) => f !== ''),
      );
    case 'redis': {
      const redis = await startRedis(root);
      if (redis === null) throw new Error(redisMissing);
      return redis;
    }
    case 'etcd': {
      const etcd = await startEtcd(root);
      if (etcd === null) throw new Error(etcdMissing);
      return etcd;
    }
    default:
      throw new Error(`--system must be tandem, redis or etcd, got '${name}'`);
  }
}
