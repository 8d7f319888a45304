/**
 * Write unavailability after kill -9 of the leader, on real processes. A
 * measurement, not a test:
 *
 *   npm run bench:failover -- [--trials 5] [--tick-ms 100] [--election-ticks 10]
 *
 * Starts a 3-node cluster of `tandem node` processes on loopback (the
 * production defaults unless flags say otherwise), with one client per node
 * writing in a loop. Each trial kills the leader with SIGKILL and measures
 * the time from the kill to the first write *issued after the kill* that
 * succeeds on a surviving node, and to the first node reporting a new
 * leader; then restarts the killed node and waits until it has caught up.
 * Prints one line per trial, a summary, then one JSON line.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { type BenchNode, ProcessCluster } from './process-cluster.js';

/** Bounds: a trial that takes longer than this is a failure, not a figure. */
const trialTimeoutMs = 60_000;

interface Trial {
  readonly killed: string;
  readonly firstWriteMs: number;
  readonly newLeaderMs: number;
  readonly newLeader: string;
}

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '5' },
    'tick-ms': { type: 'string', default: '100' },
    'election-ticks': { type: 'string', default: '10' },
  },
});
const trials = positive('--trials', values.trials);
const tickMs = positive('--tick-ms', values['tick-ms']);
const electionTicks = positive('--election-ticks', values['election-ticks']);

function positive(flag: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer`);
  return n;
}

const root = await mkdtemp(join(tmpdir(), 'tandem-bench-failover-'));
const cluster = await ProcessCluster.plan(root, 3, [
  ...['--tick-ms', String(tickMs), '--election-ticks', String(electionTicks)],
]);
const nodes = cluster.nodes;
const clients: Redis[] = [];
let writing = true;
try {
  await cluster.start();
  console.log(
    `bench:failover: 3 nodes, tick ${tickMs} ms, election timeout ${electionTicks} ticks ` +
      `(${tickMs * electionTicks}-${2 * tickMs * electionTicks} ms randomized), ${trials} trials, logs in ${root}`,
  );
  const successes = nodes.map(() => [] as { issuedMs: number; doneMs: number }[]);
  const writers = nodes.map((node, i) => {
    const client = new Redis({
      port: node.respPort,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => 20,
      commandTimeout: 5_000,
    });
    client.on('error', () => undefined); // a killed node refuses connections: expected
    clients.push(client);
    return writeLoop(client, i, successes[i] ?? []);
  });
  const results: Trial[] = [];
  for (let t = 0; t < trials; t++) {
    const leader = await cluster.leader();
    await sleep(300); // steady writes before the kill
    const killedAt = performance.now();
    leader.child?.kill('SIGKILL');
    const survivors = nodes.filter((n) => n !== leader);
    const newLeader = await pollNewLeader(survivors, leader.id, killedAt);
    const firstWriteMs = await firstWriteAfter(
      successes.filter((_, i) => nodes[i] !== leader),
      killedAt,
    );
    const trial = { killed: leader.id, firstWriteMs, ...newLeader };
    results.push(trial);
    console.log(
      `trial ${t + 1}: killed ${trial.killed}; ${trial.newLeader} leads after ` +
        `${trial.newLeaderMs.toFixed(0)} ms; first write ok after ${trial.firstWriteMs.toFixed(0)} ms`,
    );
    cluster.spawn(leader);
    await cluster.settle();
  }
  writing = false;
  await Promise.all(writers);
  const writes = results.map((r) => r.firstWriteMs).sort((a, b) => a - b);
  const median = writes[Math.floor(writes.length / 2)] ?? 0;
  const max = writes[writes.length - 1] ?? 0;
  console.log(
    `write unavailability after kill -9 of the leader: median ${median.toFixed(0)} ms, ` +
      `max ${max.toFixed(0)} ms over ${results.length} trials`,
  );
  console.log(
    JSON.stringify({ bench: 'failover', tickMs, electionTicks, trials: results, median, max }),
  );
} finally {
  writing = false;
  for (const client of clients) client.disconnect();
  await cluster.stop();
  await rm(root, { recursive: true, force: true });
}

async function pollNewLeader(
  survivors: readonly BenchNode[],
  old: string,
  killedAt: number,
): Promise<{ newLeader: string; newLeaderMs: number }> {
  while (performance.now() - killedAt < trialTimeoutMs) {
    for (const node of survivors) {
      const s = await cluster.status(node);
      if (s?.role === 'leader' && node.id !== old) {
        return { newLeader: node.id, newLeaderMs: performance.now() - killedAt };
      }
    }
    await sleep(5);
  }
  throw new Error(`no new leader within ${trialTimeoutMs} ms`);
}

async function firstWriteAfter(
  lists: { issuedMs: number; doneMs: number }[][],
  killedAt: number,
): Promise<number> {
  while (performance.now() - killedAt < trialTimeoutMs) {
    const done = lists.flat().filter((w) => w.issuedMs >= killedAt);
    if (done.length > 0) return Math.min(...done.map((w) => w.doneMs)) - killedAt;
    await sleep(5);
  }
  throw new Error(`no write succeeded within ${trialTimeoutMs} ms of the kill`);
}

/** Writes one key after the other; records each success (the last 1,000). */
async function writeLoop(
  client: Redis,
  index: number,
  successes: { issuedMs: number; doneMs: number }[],
): Promise<void> {
  let n = 0;
  while (writing) {
    const issuedMs = performance.now();
    try {
      await client.set(`failover:${index}:${n++ % 1000}`, String(n));
      successes.push({ issuedMs, doneMs: performance.now() });
      if (successes.length > 1_000) successes.splice(0, successes.length - 1_000);
    } catch {
      await sleep(2); // refused (TRYAGAIN, connection down): try again
    }
  }
}
