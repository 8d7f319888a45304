/**
 * redis-benchmark against Tandem's leader and against Redis, in one run:
 *
 *   npm run bench:redis -- [--requests 200000] [--clients 50] [--pipelines 1,16] [--tests set,get]
 *                          [--keys 100000] [--value-bytes 100]
 *
 * Tandem: a 3-node cluster of `tandem node` processes on loopback (fsync on,
 * a write acknowledged once a majority made it durable). Redis: a primary
 * and 2 replicas with `appendonly yes`, `appendfsync always` (the primary
 * fsyncs each write before answering; replication is asynchronous). The two
 * systems run one after the other, never at the same time. Needs Debian's
 * redis-server and redis-tools (`apt-get install -y redis-server
 * redis-tools`); without redis-server the Redis half is skipped with a
 * message. Prints a table with the Tandem/Redis ratios, then one JSON line.
 */

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { ProcessCluster } from './process-cluster.js';
import { redisMissing, startRedis } from './systems/redis.js';
import { has } from './systems/system.js';

const run = promisify(execFile);

interface Options {
  readonly requests: number;
  readonly clients: number;
  readonly pipelines: number[];
  readonly tests: string[];
  readonly keys: number;
  readonly valueBytes: number;
}

interface Row {
  readonly test: string;
  readonly pipeline: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

const options = parseOptions();
const root = await mkdtemp(join(tmpdir(), 'tandem-bench-redis-'));
try {
  if (!(await has('redis-benchmark'))) {
    throw new Error(
      'redis-benchmark is not installed: run `apt-get install -y redis-tools` (and redis-server for the comparison)',
    );
  }
  console.log(
    `bench:redis: ${options.requests} requests, ${options.clients} clients, tests ${options.tests.join(',')}, ` +
      `pipelines ${options.pipelines.join(',')}, ${options.keys} keys, ${options.valueBytes}-byte values; work dir ${root}`,
  );
  const tandem = await benchTandem();
  const redis = (await has('redis-server')) ? await benchRedis() : null;
  if (redis === null) {
    console.log('redis-server is not installed: skipping Redis (apt-get install -y redis-server)');
  }
  printTable(tandem, redis);
  console.log(JSON.stringify({ bench: 'redis-benchmark', options, tandem, redis }));
} finally {
  await rm(root, { recursive: true, force: true });
}

function parseOptions(): Options {
  const program = new Command()
    .option('--requests <n>', 'requests per test', '200000')
    .option('--clients <n>', 'parallel connections', '50')
    .option('--pipelines <list>', 'pipeline depths, comma-separated', '1,16')
    .option('--tests <list>', 'redis-benchmark tests', 'set,get')
    // redis-benchmark's own default is one key and 3-byte values: every SET
    // overwrites the same entry, which flatters a store whose cost grows
    // with the keyspace. These match `npm run bench`'s defaults.
    .option('--keys <n>', 'distinct keys (redis-benchmark -r)', '100000')
    .option('--value-bytes <n>', 'value size (redis-benchmark -d)', '100')
    .parse();
  const raw = program.opts<Record<string, string>>();
  const int = (flag: string, text: string | undefined): number => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new Error(`--${flag} must be a positive integer, got '${text}'`);
    }
    return n;
  };
  return {
    requests: int('requests', raw.requests),
    clients: int('clients', raw.clients),
    pipelines: (raw.pipelines ?? '').split(',').map((p) => int('pipelines', p)),
    tests: (raw.tests ?? '').split(',').filter((t) => /^[a-z]+$/.test(t)),
    keys: int('keys', raw.keys),
    valueBytes: int('value-bytes', raw.valueBytes),
  };
}

/** redis-benchmark --csv against one port; one row per test and pipeline depth. */
async function benchmark(port: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const pipeline of options.pipelines) {
    const args = ['-h', '127.0.0.1', '-p', String(port), '-t', options.tests.join(',')];
    args.push('-n', String(options.requests), '-c', String(options.clients));
    args.push('-P', String(pipeline), '-r', String(options.keys), '-d', String(options.valueBytes));
    args.push('--csv');
    const { stdout } = await run('redis-benchmark', args, { maxBuffer: 1 << 20 });
    for (const line of stdout.split('\n')) {
      const cells = line.split(',').map((c) => c.replaceAll('"', ''));
      const rps = Number(cells[1]);
      if (cells[0] === 'test' || !Number.isFinite(rps) || cells.length < 7) continue;
      const row = {
        test: cells[0] ?? '',
        pipeline,
        rps,
        p50Ms: Number(cells[4]),
        p99Ms: Number(cells[6]),
      };
      rows.push(row);
      console.log(
        `  ${row.test} -P ${pipeline}: ${row.rps.toFixed(0)} req/s, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms`,
      );
    }
  }
  return rows;
}

async function benchTandem(): Promise<Row[]> {
  const cluster = await ProcessCluster.plan(join(root, 'tandem'), 3, ['--log-level', 'warn']);
  await mkdir(cluster.root, { recursive: true });
  try {
    await cluster.start();
    const leader = await cluster.leader();
    console.log(`Tandem (3 nodes, leader ${leader.id}):`);
    return await benchmark(leader.respPort);
  } finally {
    await cluster.stop();
  }
}

async function benchRedis(): Promise<Row[]> {
  const redis = await startRedis(root);
  if (redis === null) throw new Error(redisMissing);
  try {
    console.log('Redis (primary + 2 replicas, appendfsync always):');
    return await benchmark(redis.ports[0] as number);
  } finally {
    await redis.stop();
  }
}

function printTable(tandem: readonly Row[], redis: readonly Row[] | null): void {
  const header = ['test', 'pipeline', 'Tandem req/s', 'p50 ms', 'p99 ms', 'Redis req/s'];
  header.push('p50 ms', 'p99 ms', 'Tandem/Redis');
  const rows = [header];
  for (const t of tandem) {
    const r = redis?.find((x) => x.test === t.test && x.pipeline === t.pipeline);
    rows.push([
      t.test,
      String(t.pipeline),
      t.rps.toFixed(0),
      t.p50Ms.toFixed(3),
      t.p99Ms.toFixed(3),
      r === undefined ? '-' : r.rps.toFixed(0),
      r === undefined ? '-' : r.p50Ms.toFixed(3),
      r === undefined ? '-' : r.p99Ms.toFixed(3),
      r === undefined ? '-' : (t.rps / r.rps).toFixed(2),
    ]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  console.log('');
  for (const row of rows) {
    console.log(row.map((cell, i) => cell.padStart(widths[i] ?? 0)).join('  '));
  }
}
