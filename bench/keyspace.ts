/**
 * Memory and restart time with a large keyspace (issue 8). A measurement,
 * not a test:
 *
 *   npm run bench:keyspace -- [--keys 1000000] [--value-bytes 100] [--systems tandem,redis]
 *
 * Loads KEYS keys of VALUE-BYTES through Tandem's leader (3 nodes) and into
 * Redis (primary + 2 replicas, appendfsync always), one system after the
 * other, and reports each process's resident memory once every node holds
 * the data; then stops one Tandem follower gracefully, starts it again and
 * reports the time until its /ready answers 200 (it has recovered its
 * snapshot and log and caught up with the leader).
 *
 * Resident memory is read twice per system: 5 s after the load (Tandem's
 * heap still holds the load's garbage and V8's growth slack) and again after
 * both systems have sat idle for --idle-ms (V8's memory reducer runs a few
 * compacting collections once a node has been idle a while: 20-120 s after
 * the load in our runs; Redis is given the same idle time so that jemalloc's
 * page purging counts for it too). Both ratios are printed; the idle one is
 * the steady state. The follower restart comes after the idle reading.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { int } from './cli-args.js';
import { populate } from './load/populate.js';
import { rssBytes } from './proc-stats.js';
import type { BenchNode, ProcessCluster } from './process-cluster.js';
import { redisMissing, startRedis } from './systems/redis.js';
import type { BenchSystem } from './systems/system.js';
import { startTandem } from './systems/tandem.js';

const readyTimeoutMs = 5 * 60_000;

const o = new Command('bench:keyspace')
  .option('--keys <n>', 'keys to load', int(1), 1_000_000)
  .option('--value-bytes <n>', 'value size', int(1), 100)
  .option('--systems <list>', 'tandem and/or redis', (t: string) => t.split(','), [
    'tandem',
    'redis',
  ])
  .option('--idle-ms <n>', 'idle time before the second RSS reading (0: skip it)', int(0), 150_000)
  .parse()
  .opts<{ keys: number; valueBytes: number; systems: string[]; idleMs: number }>();

const root = await mkdtemp(join(tmpdir(), 'tandem-bench-keyspace-'));
const report: Record<string, unknown> = {
  bench: 'keyspace',
  keys: o.keys,
  valueBytes: o.valueBytes,
};
try {
  console.log(`bench:keyspace: ${o.keys} keys of ${o.valueBytes} B`);
  if (o.systems.includes('tandem')) report.tandem = await benchTandem();
  if (o.systems.includes('redis')) report.redis = await benchRedis();
  for (const [reading, field] of [
    ['after the load', 'rssMb'],
    ['idle', 'idleRssMb'],
  ] as const) {
    const tandemRss = (
      report.tandem as Partial<Record<string, Record<string, number>>> | undefined
    )?.[field];
    const redisRss = (
      report.redis as Partial<Record<string, Record<string, number>>> | undefined
    )?.[field];
    if (tandemRss === undefined || redisRss?.primary === undefined) continue;
    const ratio = Math.max(...Object.values(tandemRss)) / redisRss.primary;
    report[
      field === 'rssMb'
        ? 'rssRatioTandemMaxNodeToRedisPrimary'
        : 'idleRssRatioTandemMaxNodeToRedisPrimary'
    ] = Math.round(ratio * 100) / 100;
    console.log(`largest Tandem node RSS / Redis primary RSS, ${reading}: ${ratio.toFixed(2)}`);
  }
  console.log(JSON.stringify(report));
} finally {
  await rm(root, { recursive: true, force: true });
}

async function load(system: BenchSystem): Promise<number> {
  const started = performance.now();
  await populate(system.protocol, '127.0.0.1', system.ports[0] as number, o.keys, o.valueBytes);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `  ${system.name}: loaded in ${seconds.toFixed(1)} s (${Math.round(o.keys / seconds)} SET/s)`,
  );
  return seconds;
}

async function rssOf(system: BenchSystem, reading: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, pid] of system.pids())
    out[name] = Math.round(((await rssBytes(pid)) ?? 0) / 2 ** 20);
  console.log(`  ${system.name}: RSS MiB ${reading} ${JSON.stringify(out)}`);
  return out;
}

/** The RSS after `--idle-ms` without load, printing it every 30 s on the way; null if skipped. */
async function idleRssOf(system: BenchSystem): Promise<Record<string, number> | null> {
  if (o.idleMs === 0) return null;
  const stepMs = 30_000;
  for (let waited = 0; waited < o.idleMs; ) {
    const step = Math.min(stepMs, o.idleMs - waited);
    await sleep(step);
    waited += step;
    if (waited < o.idleMs) await rssOf(system, `idle ${Math.round(waited / 1000)} s`);
  }
  return rssOf(system, `idle ${Math.round(o.idleMs / 1000)} s`);
}

async function benchTandem(): Promise<Record<string, unknown>> {
  const system = await startTandem(root);
  try {
    const loadSeconds = await load(system);
    await system.cluster.settle();
    // Let a snapshot that the load triggered finish, as in steady state.
    await sleep(5_000);
    const rssMb = await rssOf(system, 'after the load');
    const heapMb = await heapOf(system.cluster);
    const idleRssMb = await idleRssOf(system);
    const idleHeapMb = idleRssMb === null ? null : await heapOf(system.cluster);
    const restart = await restartFollower(system.cluster);
    return { loadSeconds, rssMb, heapMb, idleRssMb, idleHeapMb, ...restart };
  } finally {
    await system.stop();
  }
}

/** V8 heap used and total, and memory outside the heap, per node (from its /metrics). */
async function heapOf(cluster: ProcessCluster): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const node of cluster.nodes) {
    const text = await (await fetch(`${node.http}/metrics`)).text();
    const metric = (name: string): number => {
      const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
      return Math.round(Number(match?.[1] ?? 0) / 2 ** 20);
    };
    out[node.id] = {
      heapUsed: metric('nodejs_heap_size_used_bytes'),
      heapTotal: metric('nodejs_heap_size_total_bytes'),
      external: metric('nodejs_external_memory_bytes'),
    };
  }
  console.log(`  tandem: V8 heap MiB ${JSON.stringify(out)}`);
  return out;
}

async function restartFollower(cluster: ProcessCluster): Promise<Record<string, unknown>> {
  const leader = await cluster.leader();
  const follower = cluster.nodes.find((n) => n.id !== leader.id) as BenchNode;
  const child = follower.child;
  if (child === null) throw new Error(`${follower.id} is not running`);
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  await exited;
  const started = performance.now();
  cluster.spawn(follower);
  const deadline = started + readyTimeoutMs;
  while (performance.now() < deadline) {
    try {
      const response = await fetch(`${follower.http}/ready`, {
        signal: AbortSignal.timeout(1_000),
      });
      if (response.ok) {
        const readyMs = Math.round(performance.now() - started);
        console.log(`  tandem: ${follower.id} restarted and ready after ${readyMs} ms`);
        return { restartedNode: follower.id, restartReadyMs: readyMs };
      }
    } catch {
      // Not listening yet.
    }
    await sleep(20);
  }
  throw new Error(`${follower.id} was not ready within ${readyTimeoutMs} ms after its restart`);
}

async function benchRedis(): Promise<Record<string, unknown> | null> {
  const system = await startRedis(root);
  if (system === null) {
    console.log(redisMissing);
    return null;
  }
  try {
    const loadSeconds = await load(system);
    await sleep(2_000); // the replicas catch up
    const rssMb = await rssOf(system, 'after the load');
    return { loadSeconds, rssMb, idleRssMb: await idleRssOf(system) };
  } finally {
    await system.stop();
  }
}
