/**
 * Write unavailability after kill -9 of the leader, on real processes. A
 * measurement, not a test:
 *
 *   npm run bench:failover -- [--trials 5] [--tick-ms 100] [--election-ticks 10]
 *   npm run bench:failover -- --slow-disk-ms 600 [--trials 1]
 *   npm run bench:failover -- --transfer [--trials 5]
 *
 * Starts a 3-node cluster of `tandem node` processes on loopback (the
 * production defaults unless flags say otherwise), with one client per node
 * writing in a loop. Each trial kills the leader with SIGKILL and measures
 * the time from the kill to the first write *issued after the kill* that
 * succeeds on a surviving node, and to the first node reporting a new
 * leader; then restarts the killed node and waits until it has caught up.
 * Prints one line per trial, a summary, then one JSON line.
 *
 * With `--slow-disk-ms N`, nothing is killed: n1 runs with every fsync
 * delayed by N ms (`--fault-fsync-delay-ms`) and the default degradation
 * limits (fsync p99 above 500 ms for 10 s); each trial makes n1 the leader
 * and measures how long until it hands leadership to a healthy node, the
 * longest pause between two acknowledged writes around the handover, and the
 * writes' median latency under the slow leader and after. A node hands over
 * at most once a minute, so trials are a minute apart.
 *
 * With `--transfer`, nothing is killed either: each trial asks the leader
 * to hand leadership to another node (`tandem failover`'s admin call) and
 * measures the time until the new leader reports itself and the longest
 * pause between two acknowledged writes around it (the write
 * unavailability a manual failover causes).
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
    'slow-disk-ms': { type: 'string', default: '0' },
    transfer: { type: 'boolean', default: false },
  },
});
const slowDiskMs = Number(values['slow-disk-ms']);
if (!Number.isSafeInteger(slowDiskMs) || slowDiskMs < 0) {
  throw new Error('--slow-disk-ms must be a non-negative integer');
}
const trials = positive('--trials', values.trials);
const tickMs = positive('--tick-ms', values['tick-ms']);
const electionTicks = positive('--election-ticks', values['election-ticks']);

function positive(flag: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer`);
  return n;
}

const root = await mkdtemp(join(tmpdir(), 'tandem-bench-failover-'));
const cluster = await ProcessCluster.plan(
  root,
  3,
  ['--tick-ms', String(tickMs), '--election-ticks', String(electionTicks)],
  (id) => (slowDiskMs > 0 && id === 'n1' ? ['--fault-fsync-delay-ms', String(slowDiskMs)] : []),
);
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
  if (slowDiskMs > 0) await slowDiskTrials(successes);
  else if (values.transfer === true) await transferTrials(successes);
  else await killTrials(successes);
  writing = false;
  await Promise.all(writers);
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

interface Write {
  issuedMs: number;
  doneMs: number;
}

/** Makes the slow n1 the leader, then measures its handover (see the header). */
async function slowDiskTrials(successes: Write[][]): Promise<void> {
  const slow = nodes[0] as BenchNode;
  const results: Record<string, number>[] = [];
  for (let t = 0; t < trials; t++) {
    if (t > 0) await sleep(61_000); // a node hands over at most once a minute
    await makeLeader(slow);
    const ledAt = performance.now();
    await sleep(1_000);
    let handedAt = 0;
    let to = '';
    while (handedAt === 0) {
      if (performance.now() - ledAt > 120_000) throw new Error('n1 never handed leadership over');
      const s = await cluster.status(slow);
      if (s !== null && s.role !== 'leader' && s.leader !== '' && s.leader !== slow.id) {
        handedAt = performance.now();
        to = s.leader;
      }
      await sleep(5);
    }
    await sleep(3_000); // writes after the handover
    const all = successes.flat().sort((a, b) => a.doneMs - b.doneMs);
    const pause = longestPause(successes, handedAt - 1_000, handedAt + 1_000);
    const latency = (from: number, to: number): number => {
      const l = all
        .filter((w) => w.issuedMs >= from && w.doneMs <= to)
        .map((w) => w.doneMs - w.issuedMs)
        .sort((x, y) => x - y);
      return l[Math.floor(l.length / 2)] ?? Number.NaN;
    };
    const trial = {
      handoverMs: handedAt - ledAt,
      pauseMs: pause,
      slowP50Ms: latency(ledAt, handedAt),
      afterP50Ms: latency(handedAt + 500, handedAt + 3_000),
    };
    results.push(trial);
    console.log(
      `trial ${t + 1}: n1 (fsync +${slowDiskMs} ms) led, handed over to ${to} after ` +
        `${(trial.handoverMs / 1000).toFixed(1)} s; longest pause between acknowledged writes ` +
        `around the handover ${trial.pauseMs.toFixed(0)} ms; write p50 ${trial.slowP50Ms.toFixed(0)} ms ` +
        `under the slow leader, ${trial.afterP50Ms.toFixed(1)} ms after`,
    );
  }
  console.log(JSON.stringify({ bench: 'failover-slow-disk', slowDiskMs, tickMs, results }));
}

/** Asks the current leader to hand leadership to `node`, until it leads. */
async function makeLeader(node: BenchNode): Promise<void> {
  const deadline = performance.now() + trialTimeoutMs;
  while (performance.now() < deadline) {
    const s = await cluster.status(node);
    if (s?.role === 'leader') return;
    const leader = nodes.find((n) => n.id === s?.leader);
    if (leader !== undefined) {
      await fetch(`${leader.http}/v1/admin/transfer-leadership?to=${node.id}`, {
        method: 'POST',
      }).catch(() => undefined);
    }
    await sleep(200);
  }
  throw new Error(`${node.id} did not become the leader`);
}

/** kill -9 of the leader, `trials` times (see the header). */
async function killTrials(successes: Write[][]): Promise<void> {
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
}

/** Manual failover, `trials` times: leadership moves round the nodes (see the header). */
async function transferTrials(successes: Write[][]): Promise<void> {
  const results: { handoverMs: number; pauseMs: number }[] = [];
  for (let t = 0; t < trials; t++) {
    await sleep(1_000); // steady writes before the transfer
    const leader = await cluster.leader();
    const target = nodes[(nodes.indexOf(leader) + 1) % nodes.length] as BenchNode;
    const askedAt = performance.now();
    await fetch(`${leader.http}/v1/admin/transfer-leadership?to=${target.id}`, { method: 'POST' });
    let ledAt = 0;
    while (ledAt === 0) {
      if (performance.now() - askedAt > trialTimeoutMs)
        throw new Error('the transfer never finished');
      if ((await cluster.status(target))?.role === 'leader') ledAt = performance.now();
      else await sleep(2);
    }
    await sleep(1_000); // writes after the transfer
    const trial = { handoverMs: ledAt - askedAt, pauseMs: longestPause(successes, askedAt, ledAt) };
    results.push(trial);
    console.log(
      `trial ${t + 1}: ${leader.id} -> ${target.id} in ${trial.handoverMs.toFixed(0)} ms; longest ` +
        `pause between acknowledged writes around it ${trial.pauseMs.toFixed(0)} ms`,
    );
  }
  const pauses = results.map((r) => r.pauseMs).sort((a, b) => a - b);
  console.log(
    `manual failover: median pause ${(pauses[Math.floor(pauses.length / 2)] ?? 0).toFixed(0)} ms, ` +
      `max ${(pauses[pauses.length - 1] ?? 0).toFixed(0)} ms over ${results.length} trials`,
  );
  console.log(JSON.stringify({ bench: 'failover-transfer', tickMs, electionTicks, results }));
}

/** The longest gap between two consecutive acknowledged writes (any client) from 1 s before `from` to 1 s after `to`. */
function longestPause(successes: Write[][], from: number, to: number): number {
  const done = successes
    .flat()
    .map((w) => w.doneMs)
    .filter((d) => d >= from - 1_000 && d <= to + 1_000)
    .sort((a, b) => a - b);
  let pause = 0;
  for (let i = 1; i < done.length; i++) {
    pause = Math.max(pause, (done[i] as number) - (done[i - 1] as number));
  }
  return pause;
}
