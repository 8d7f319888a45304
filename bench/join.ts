/**
 * Joining a node to a cluster that holds a lot of data (issue 5). A
 * measurement, not a test:
 *
 *   npm run bench:join -- [--mb 1024] [--value-bytes 1024]
 *
 * Starts 3 `tandem node` processes, loads MB megabytes of values through the
 * leader (pipelined SETs), then starts a fourth node with `--join` while a
 * client keeps writing, and reports: the load rate, the time until the new
 * node is a voter that has applied the leader's commit index (catch-up), the
 * writes' worst latency during the join, whether the leader kept its
 * leadership, and each node's peak RSS. TANDEM_BENCH_KEEP=1 keeps the data and
 * the nodes' logs (at info level).
 */

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { type BenchNode, ProcessCluster } from './process-cluster.js';

const catchUpTimeoutMs = 30 * 60 * 1000;
const batch = 1_000;

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '1024' },
    'value-bytes': { type: 'string', default: '1024' },
  },
});
const megabytes = positive('--mb', values.mb);
const valueBytes = positive('--value-bytes', values['value-bytes']);
const keys = Math.ceil((megabytes * 1024 * 1024) / valueBytes);

function positive(flag: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer`);
  return n;
}

const root = await mkdtemp(join(tmpdir(), 'tandem-bench-join-'));
const logLevel = process.env.TANDEM_BENCH_KEEP === undefined ? 'warn' : 'info';
const cluster = await ProcessCluster.plan(root, 3, ['--log-level', logLevel]);
try {
  await cluster.start();
  const leader = await cluster.leader();
  const before = await cluster.status(leader);
  console.log(
    `bench:join: loading ${keys} keys of ${valueBytes} B (${megabytes} MiB) through ${leader.id}`,
  );
  const client = new Redis({ port: leader.respPort, host: '127.0.0.1' });
  const value = 'v'.repeat(valueBytes);
  const loadStart = performance.now();
  for (let i = 0; i < keys; i += batch) {
    const pipeline = client.pipeline();
    for (let k = i; k < Math.min(keys, i + batch); k++) pipeline.set(`key:${k}`, value);
    await pipeline.exec();
  }
  const loadSeconds = (performance.now() - loadStart) / 1000;
  console.log(
    `loaded in ${loadSeconds.toFixed(1)} s: ${(keys / loadSeconds).toFixed(0)} SET/s, ` +
      `${(megabytes / loadSeconds).toFixed(1)} MiB/s`,
  );
  await cluster.settle();

  // A writer keeps going during the join: its worst latency shows what the join costs.
  let writing = true;
  let worstMs = 0;
  let writes = 0;
  const writer = (async () => {
    while (writing) {
      const t = performance.now();
      await client.set(`during:${writes % 1000}`, 'x').catch(() => undefined);
      worstMs = Math.max(worstMs, performance.now() - t);
      writes++;
    }
  })();
  const joiner = await cluster.planJoiner('n4', leader, ['--log-level', logLevel]);
  const joinStart = performance.now();
  cluster.spawn(joiner);
  const caughtUpMs = await waitCaughtUp(cluster, leader, joiner, joinStart);
  writing = false;
  await writer;
  client.disconnect();
  const after = await cluster.status(leader);
  console.log(
    `n4 joined, was promoted and applied the leader's commit index after ${(caughtUpMs / 1000).toFixed(1)} s`,
  );
  console.log(
    `during the join: ${writes} writes, worst latency ${worstMs.toFixed(0)} ms; leader ${leader.id} ` +
      `${after?.role === 'leader' && after.term === before?.term ? 'kept' : 'lost'} its leadership ` +
      `(term ${before?.term} -> ${after?.term})`,
  );
  const rss: Record<string, number> = {};
  for (const node of [...cluster.nodes, joiner]) rss[node.id] = await peakRssMb(node);
  console.log(`peak RSS (MiB): ${JSON.stringify(rss)}`);
  console.log(
    JSON.stringify({
      bench: 'join',
      megabytes,
      valueBytes,
      keys,
      loadSeconds,
      caughtUpSeconds: caughtUpMs / 1000,
      writesDuringJoin: writes,
      worstWriteMs: worstMs,
      leaderKept: after?.role === 'leader' && after.term === before?.term,
      peakRssMb: rss,
    }),
  );
} finally {
  await cluster.stop();
  if (process.env.TANDEM_BENCH_KEEP === undefined) await rm(root, { recursive: true, force: true });
  else console.log(`logs kept in ${root}`);
}

async function waitCaughtUp(
  c: ProcessCluster,
  leader: BenchNode,
  joiner: BenchNode,
  startedAt: number,
): Promise<number> {
  while (performance.now() - startedAt < catchUpTimeoutMs) {
    const members = await fetch(`${leader.http}/v1/admin/members`)
      .then((r) => r.json() as Promise<{ voters: string[] }>)
      .catch(() => null);
    const lead = await c.status(leader);
    const mine = await c.status(joiner);
    if (
      members?.voters.includes(joiner.id) === true &&
      lead !== null &&
      mine !== null &&
      mine.applied >= lead.commit - 10
    ) {
      return performance.now() - startedAt;
    }
    await sleep(200);
  }
  throw new Error(`n4 did not catch up within ${catchUpTimeoutMs} ms; logs in ${c.root}`);
}

/** Peak resident set size of a node's process, from /proc (Linux). */
async function peakRssMb(node: BenchNode): Promise<number> {
  const pid = node.child?.pid;
  if (pid === undefined) return 0;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    return Math.round(kb / 1024);
  } catch {
    return 0;
  }
}
