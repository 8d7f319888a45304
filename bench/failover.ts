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

import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from '../src/node/test-cluster.test-util.js';

const repo = resolve(import.meta.dirname, '..');
/** Bounds: a trial that takes longer than this is a failure, not a figure. */
const trialTimeoutMs = 60_000;
const settleTimeoutMs = 60_000;

interface NodeProcess {
  readonly id: string;
  readonly args: readonly string[];
  readonly http: string;
  readonly respPort: number;
  child: ChildProcess | null;
}

interface Status {
  readonly role: string;
  readonly leader: string;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
}

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
const nodes = await planNodes(3);
const clients: Redis[] = [];
let writing = true;
try {
  for (const node of nodes) spawnNode(node);
  await settle();
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
    const leader = await currentLeader();
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
    spawnNode(leader);
    await settle();
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
  for (const node of nodes) if (node.child?.exitCode === null) node.child.kill('SIGKILL');
  await sleep(200);
  await rm(root, { recursive: true, force: true });
}

async function planNodes(size: number): Promise<NodeProcess[]> {
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const ports: { resp: number; http: number; peer: number }[] = [];
  for (const _ of ids) {
    ports.push({ resp: await freePort(), http: await freePort(), peer: await freePort() });
  }
  const initialCluster = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]?.peer}`).join(',');
  return ids.map((id, i) => {
    const p = ports[i];
    if (p === undefined) throw new Error('a port per node');
    const args = [
      ...['--import', 'tsx', 'src/cli/main.ts', 'node', '--id', id, '--data', join(root, id)],
      ...['--resp', `127.0.0.1:${p.resp}`, '--http', `127.0.0.1:${p.http}`],
      ...['--peer', `127.0.0.1:${p.peer}`, '--initial-cluster', initialCluster],
      ...['--tick-ms', String(tickMs), '--election-ticks', String(electionTicks)],
    ];
    return { id, args, http: `http://127.0.0.1:${p.http}`, respPort: p.resp, child: null };
  });
}

function spawnNode(node: NodeProcess): void {
  const log = createWriteStream(join(root, `${node.id}.log`), { flags: 'a' });
  node.child = spawn(process.execPath, node.args, {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  node.child.stdout?.pipe(log);
  node.child.stderr?.pipe(log);
}

async function status(node: NodeProcess): Promise<Status | null> {
  try {
    const response = await fetch(`${node.http}/status`, { signal: AbortSignal.timeout(1_000) });
    return response.ok ? ((await response.json()) as Status) : null;
  } catch {
    return null;
  }
}

/** Waits until every node answers, agrees on a leader and has applied the leader's commit. */
async function settle(): Promise<void> {
  const deadline = performance.now() + settleTimeoutMs;
  while (performance.now() < deadline) {
    const all = await Promise.all(nodes.map(status));
    const leader = all.find((s) => s?.role === 'leader');
    if (
      leader != null &&
      all.every((s) => s !== null && s.leader === leader.leader && s.applied >= leader.commit)
    ) {
      return;
    }
    await sleep(50);
  }
  throw new Error(`the cluster did not settle within ${settleTimeoutMs} ms; logs in ${root}`);
}

async function currentLeader(): Promise<NodeProcess> {
  for (const node of nodes) if ((await status(node))?.role === 'leader') return node;
  throw new Error('no leader');
}

async function pollNewLeader(
  survivors: NodeProcess[],
  old: string,
  killedAt: number,
): Promise<{ newLeader: string; newLeaderMs: number }> {
  while (performance.now() - killedAt < trialTimeoutMs) {
    for (const node of survivors) {
      const s = await status(node);
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
