/**
 * The short chaos suite for CI (about two minutes): real node processes
 * (run from the sources through tsx, so a stale build cannot hide a bug)
 * behind the peer proxies, real ioredis clients, faults, checkers. The long
 * run is `npm run chaos -- --duration 1800`.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chrtAvailable, schedBatch, threadPolicies } from '../src/cli/cpu-policy.js';
import { ChaosCluster } from './cluster.js';
import { defaultResultsDir, type RunOptions, runChaos } from './run.js';

const base: Omit<RunOptions, 'durationS' | 'nemeses' | 'seed'> = {
  nodes: 3,
  workloads: ['register', 'set', 'bank', 'files'],
  // The files client is the seventh: the other workloads keep their six.
  clients: 7,
  // Bounded for CI: up to two 1 MiB chunks per file, 24 MiB put in all.
  fileBytesMax: 1_536 << 10,
  fileBytesBudget: 24 << 20,
  runner: 'tsx',
  tickMs: 50,
  resultsDir: defaultResultsDir,
  keep: false,
  recoveryMsMax: 30_000,
  quietMs: [500, 1_500],
  faultMs: [1_500, 3_500],
  log: () => undefined,
};

let cluster: ChaosCluster | null = null;
let root = '';

afterEach(async () => {
  await cluster?.stop();
  cluster = null;
  if (root !== '') await rm(root, { recursive: true, force: true });
  root = '';
});

describe('chaos suite', () => {
  it('routes every peer link through the proxies: isolating the leader elects another', async () => {
    root = await mkdtemp(join(tmpdir(), 'tandem-chaos-test-'));
    cluster = await ChaosCluster.plan({ size: 3, root, runner: 'tsx', tickMs: 50 });
    await cluster.start(60_000);
    const old = await cluster.waitSettled(10_000);
    expect(old).not.toBeNull();
    if (process.platform === 'linux' && chrtAvailable()) {
      // `tandem node` runs every thread under SCHED_BATCH by default (cpu-policy.ts).
      for (const id of cluster.ids) {
        const pid = cluster.node(id).child?.pid as number;
        expect(threadPolicies(pid).every((p) => p === schedBatch)).toBe(true);
      }
    }
    const others = cluster.ids.filter((id) => id !== old?.id);
    for (const id of others) cluster.links.setBoth(old?.id ?? '', id, { kind: 'drop' });
    await expect
      .poll(
        async () => {
          const statuses = await Promise.all(others.map((id) => cluster?.status(cluster.node(id))));
          const leader = statuses.find((s) => s?.role === 'leader');
          return leader !== undefined && statuses.every((s) => s?.leader === leader?.id);
        },
        { timeout: 15_000, interval: 200 },
      )
      .toBe(true);
    cluster.links.healAll();
    expect(await cluster.waitSettled(15_000)).not.toBeNull();
  }, 120_000);

  for (const [name, nemeses, seed] of [
    ['kill -9, pause and leadership transfer', ['kill', 'pause', 'transfer'], 101],
    ['partitions, delay and loss', ['partition', 'delay', 'loss'], 202],
    // Without root the disk nemesis is switched off (the run says so).
    ['member removal and re-adding, and a full disk', ['member', 'disk'], 404],
  ] as const) {
    it(`finds no violation under ${name}, and the cluster converges after`, async () => {
      const lines: string[] = [];
      const summary = await runChaos({
        ...base,
        durationS: 20,
        nemeses,
        seed,
        log: (line) => lines.push(line),
      });
      expect(summary.violations, lines.join('\n')).toBe(0);
      expect(summary.operations).toBeGreaterThan(300);
      expect(summary.byWorkload.files).toBeGreaterThan(10);
      expect(Object.values(summary.faultsByKind).reduce((a, b) => a + b, 0)).toBeGreaterThan(2);
      expect(summary.recovery.finalConvergedMs).not.toBeNull();
    }, 180_000);
  }

  for (const [bug, what, nemeses, workloads] of [
    ['skip-watch', 'EXEC ignoring WATCH', [], ['register', 'bank']],
    ['stale-reads', 'reads without a read barrier', ['partition'], ['register']],
  ] as const) {
    it(`catches a planted server bug (${what}) as a violation`, async () => {
      const summary = await runChaos({
        ...base,
        durationS: 12,
        nemeses,
        workloads,
        clients: 8,
        seed: 303,
        env: { TANDEM_PLANTED_BUG: bug },
      });
      expect(summary.violations).toBeGreaterThan(0);
      expect(summary.resultsFolder).not.toBeNull();
      if (summary.resultsFolder !== null) await rm(summary.resultsFolder, { recursive: true });
    }, 180_000);
  }
});
