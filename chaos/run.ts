/**
 * One chaos run: start a cluster behind proxies, drive the workloads, inject
 * faults on a seeded schedule for `durationS`, heal, wait for recovery
 * (a leader, then every node at the same applied index with the same
 * keyspace digest), take the final reads, check the history, and summarize.
 * On failure (or with `keep`) the history, the fault timeline, a timeline
 * picture and the node logs are saved in a results folder.
 */

import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Prng } from '../src/raft/prng.js';
import { checkAll, type Verdict } from './checkers.js';
import { ChaosCluster, getJson, type NodeRunner, repo } from './cluster.js';
import { countByStatus, emptyHistory, type History } from './history.js';
import { isNetworkKind, kindsFor, type NemesisGroup, startFault } from './nemesis.js';
import { timelineHtml } from './timeline.js';
import { bankAccounts, bankStart, type WorkloadName, Workloads, waitReady } from './workloads.js';

export interface RunOptions {
  readonly durationS: number;
  readonly nodes: number;
  readonly nemeses: readonly NemesisGroup[];
  readonly workloads: readonly WorkloadName[];
  readonly seed: number;
  readonly clients: number;
  readonly runner: NodeRunner;
  readonly tickMs: number;
  /** Where results folders go (one per run). */
  readonly resultsDir: string;
  /** Save the results folder even when the run passed. */
  readonly keep: boolean;
  /** Bound on recovery after the faults stop. */
  readonly recoveryMsMax: number;
  /** Quiet time between faults, and how long each lasts (ms, ranges). */
  readonly quietMs: readonly [number, number];
  readonly faultMs: readonly [number, number];
  /** Extra environment for every node (a planted bug, e.g.). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Process faults (kill, pause, member, disk, transfer) and network faults
   * (partition, delay, loss) on two schedules at once, overlapping. Per-fault
   * recovery then lasts until the other fault lets the nodes agree too.
   */
  readonly overlap?: boolean;
  /** Extra flags for every node (e.g. `--read-mode lease`). */
  readonly nodeArgs?: readonly string[];
  /** Largest file the files workload puts (bytes); default 3 MiB. */
  readonly fileBytesMax?: number;
  /** Bytes all file puts together may send (then only reads); default 64 MiB. */
  readonly fileBytesBudget?: number;
  readonly log?: (line: string) => void;
}

export interface FaultRecord {
  readonly kind: string;
  readonly detail: string;
  readonly startMs: number;
  readonly healMs: number;
  /** From heal until every node agreed on a leader; null if not within the bound. */
  readonly recoveryMs: number | null;
}

export interface Summary {
  readonly seed: number;
  readonly nodes: number;
  readonly durationS: number;
  readonly operations: number;
  readonly byWorkload: Record<string, number>;
  readonly byStatus: Record<string, number>;
  readonly indeterminate: number;
  readonly faultsByKind: Record<string, number>;
  readonly recovery: {
    readonly perFaultMsMax: number | null;
    readonly perFaultMsMedian: number | null;
    readonly unrecoveredFaults: number;
    /** Final: from the last heal to one leader and equal digests everywhere. */
    readonly finalLeaderMs: number | null;
    readonly finalConvergedMs: number | null;
    readonly appliedIndex: number | null;
    /** The leader's view of the membership at the end. */
    readonly membership: string;
    /** From the last heal until a write through every node was acknowledged. */
    readonly writableMs: number | null;
  };
  readonly verdicts: readonly Verdict[];
  /** Why operations failed or ended unknown, by error text. */
  readonly errors: Record<string, number>;
  readonly violations: number;
  readonly ok: boolean;
  readonly resultsFolder: string | null;
}

const perFaultRecoveryMsMax = 20_000;
const opTimeoutMs = 2_000;
/** A file of a few MiB goes through a follower, the leader and a majority's fsyncs. */
const fileOpTimeoutMs = 10_000;

export async function runChaos(options: RunOptions): Promise<Summary> {
  const log = options.log ?? ((line: string) => console.log(line));
  const prng = new Prng(options.seed);
  const root = await mkdtemp(join(tmpdir(), 'tandem-chaos-'));
  let nemeses = options.nemeses;
  const diskNode = `n${options.nodes}`;
  const smallDisk = nemeses.includes('disk') ? await mountSmallDisk(root, diskNode) : null;
  if (nemeses.includes('disk') && typeof smallDisk === 'string') {
    log(`chaos: the disk nemesis is off: ${smallDisk}`);
    nemeses = nemeses.filter((n) => n !== 'disk');
  }
  const cluster = await ChaosCluster.plan({
    size: options.nodes,
    root,
    runner: options.runner,
    tickMs: options.tickMs,
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(smallDisk === null || typeof smallDisk === 'string' ? {} : { smallDisk }),
    // The small disk's node raises NOSPACE below 16 MiB free, the others never.
    argsFor: (id) => [
      ...(options.nodeArgs ?? []),
      '--space-low-bytes',
      id === diskNode && smallDisk !== null ? String(16 << 20) : '0',
    ],
  });
  // Interrupted (Ctrl-C, a CI timeout): no node may outlive the run, no tmpfs stay mounted.
  const onExit = (): void => {
    cluster.killAllSync();
    if (smallDisk !== null && typeof smallDisk !== 'string') {
      spawnSync('umount', [smallDisk.dir], { timeout: 10_000 });
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    onExit();
    rmSync(root, { recursive: true, force: true });
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.kill(process.pid, signal);
  };
  process.once('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const history = emptyHistory(bankAccounts, bankAccounts * bankStart);
  const faults: FaultRecord[] = [];
  const workloads = new Workloads(
    cluster,
    history,
    {
      clients: options.clients,
      workloads: options.workloads,
      opTimeoutMs,
      registerKeyMs: 5_000,
      registerKeys: 3,
      fileBytesMax: options.fileBytesMax ?? 3 << 20,
      filePaths: 3,
      fileBytesBudget: options.fileBytesBudget ?? 64 << 20,
      fileOpTimeoutMs,
    },
    prng.fork(),
  );
  let finalLeaderMs: number | null = null;
  let finalConvergedMs: number | null = null;
  let appliedIndex: number | null = null;
  let membership = '?';
  let membershipProblem: string | null = null;
  let writableMs: number | null = null;
  let writeProblem: string | null = null;
  try {
    log(
      `chaos: seed ${options.seed}, ${options.nodes} nodes, ${options.durationS} s, nemeses ${options.nemeses.join(',') || 'none'}, workloads ${options.workloads.join(',')}; data and logs in ${root}`,
    );
    await cluster.start(60_000);
    await workloads.setup(30_000);
    workloads.start();
    // Below 5 nodes every pair on a ring is adjacent: the ring would cut nothing.
    const kinds = kindsFor(nemeses).filter((k) => k !== 'partition-ring' || options.nodes >= 5);
    const endAt = workloads.now() + options.durationS * 1000;
    const schedule = async (pool: readonly string[], faultPrng: Prng): Promise<void> => {
      while (workloads.now() < endAt) {
        await sleep(between(faultPrng, options.quietMs));
        if (pool.length === 0 || workloads.now() >= endAt) continue;
        const kind = pool[faultPrng.int(pool.length)] as string;
        const startMs = workloads.now();
        const fault = await startFault(kind, cluster, faultPrng);
        log(`  ${(startMs / 1000).toFixed(1)}s ${kind}: ${fault.detail}`);
        await sleep(
          Math.min(between(faultPrng, options.faultMs), Math.max(0, endAt - workloads.now())),
        );
        const healMs = workloads.now();
        await fault.heal();
        const leader = await cluster.waitSettled(perFaultRecoveryMsMax);
        const recoveryMs = leader === null ? null : workloads.now() - healMs;
        faults.push({ kind, detail: fault.detail, startMs, healMs, recoveryMs });
      }
    };
    if (options.overlap === true) {
      // Two schedules at once: process faults and network faults overlap.
      const network = kinds.filter((k) => isNetworkKind(k));
      await Promise.all([
        schedule(
          kinds.filter((k) => !isNetworkKind(k)),
          prng.fork(),
        ),
        schedule(network, prng.fork()),
      ]);
    } else {
      await schedule(kinds, prng.fork());
    }
    // The faults stop: heal everything, let in-flight operations end.
    const healedAt = workloads.now();
    await cluster.healAll();
    await workloads.stop();
    const leader = await cluster.waitSettled(options.recoveryMsMax);
    if (leader !== null) finalLeaderMs = workloads.now() - healedAt;
    const converged = await waitConverged(cluster, options.recoveryMsMax);
    if (converged !== null) {
      finalConvergedMs = workloads.now() - healedAt;
      appliedIndex = converged;
    }
    // Re-added members must have been promoted again (the leader does it once they caught up).
    const promoted = await waitAllVoters(cluster, options.recoveryMsMax);
    membership = promoted.text;
    if (!promoted.ok) membershipProblem = `not every node is a voter again: ${promoted.text}`;
    // Live again: a write through every node is acknowledged within the bound.
    const writable = await probeWrites(workloads, cluster, options.recoveryMsMax);
    if (writable.ok) writableMs = workloads.now() - healedAt;
    else {
      // Each node's view of the alarms, for whoever debugs this.
      const views = await Promise.all(
        cluster.nodes.map(async (n) => {
          const st = await getJson<{ alarms?: unknown; role?: string }>(`${n.http}/status`);
          return `${n.id} (${st?.role ?? '?'}) alarms ${JSON.stringify(st?.alarms ?? '?')}`;
        }),
      );
      writeProblem = `writes are still refused after the faults stopped: ${writable.last}; ${views.join('; ')}`;
    }
    await workloads.finalReads(30_000);
  } finally {
    workloads.closeAll();
    await cluster.stop();
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (smallDisk !== null && typeof smallDisk !== 'string') {
      spawnSync('umount', [smallDisk.dir], { timeout: 10_000 });
    }
  }
  const verdicts = checkAll(history);
  const recoveryViolations = [
    ...(finalConvergedMs === null
      ? [`the cluster did not converge within ${options.recoveryMsMax} ms after the faults stopped`]
      : []),
    ...(membershipProblem === null ? [] : [membershipProblem]),
    ...(writeProblem === null ? [] : [writeProblem]),
    ...cluster.unexpectedExits.map(
      (e) =>
        `${e.node} exited on its own (code ${e.code}, signal ${e.signal}) at ${e.at}: see its log`,
    ),
  ];
  const violations =
    verdicts.reduce((n, v) => n + v.violations.length, 0) + recoveryViolations.length;
  const summary = summarize(options, history, faults, verdicts, violations, {
    finalLeaderMs,
    finalConvergedMs,
    appliedIndex,
    membership,
    writableMs,
  });
  let resultsFolder: string | null = null;
  if (!summary.ok || options.keep) {
    resultsFolder = await saveResults(options, root, history, faults, summary, recoveryViolations);
  }
  await rm(root, { recursive: true, force: true });
  const final = { ...summary, resultsFolder };
  printSummary(final, recoveryViolations, log);
  return final;
}

const smallDiskMb = 256;

/** Mounts a tmpfs for one node's data; the reason when this machine does not allow it. */
async function mountSmallDisk(
  root: string,
  node: string,
): Promise<{ dir: string; node: string } | string> {
  const dir = join(root, 'small-disk');
  await mkdir(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${smallDiskMb}m`, 'tmpfs', dir], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (r.status !== 0) {
    return `cannot mount a tmpfs (needs root with CAP_SYS_ADMIN): ${(r.stderr || r.error?.message) ?? ''}`.trim();
  }
  return { dir, node };
}

function between(prng: Prng, [lo, hi]: readonly [number, number]): number {
  return lo + prng.int(Math.max(1, hi - lo + 1));
}

/** A SET through every node, retried until acknowledged or `timeoutMs` passed. */
async function probeWrites(
  workloads: Workloads,
  cluster: ChaosCluster,
  timeoutMs: number,
): Promise<{ ok: boolean; last: string }> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (const node of cluster.nodes) {
    for (;;) {
      if (Date.now() > deadline) return { ok: false, last };
      const redis = workloads.connect(node.respPort);
      try {
        await waitReady(redis, 2_000);
        await redis.set('chaos:probe', node.id);
        break;
      } catch (failure) {
        last = `${node.id}: ${(failure as Error).message}`;
        await sleep(200);
      } finally {
        workloads.close(redis);
      }
    }
  }
  return { ok: true, last };
}

/** Waits until the leader counts every node as a voter. */
async function waitAllVoters(
  cluster: ChaosCluster,
  timeoutMs: number,
): Promise<{ ok: boolean; text: string }> {
  const deadline = Date.now() + timeoutMs;
  let text = 'no leader';
  while (Date.now() < deadline) {
    const leader = await cluster.agreedLeader();
    const s = leader === null ? null : await cluster.status(leader);
    if (s !== null) {
      text = `voters ${[...s.voters].sort().join(',')}, learners ${[...s.learners].sort().join(',') || '-'}`;
      if (cluster.ids.every((id) => s.voters.includes(id))) return { ok: true, text };
    }
    await sleep(200);
  }
  return { ok: false, text };
}

/** Waits until every node reports the same applied index and digest; that index, or null. */
async function waitConverged(cluster: ChaosCluster, timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const all = await Promise.all(cluster.nodes.map((n) => cluster.digest(n)));
    const first = all[0];
    if (
      first !== null &&
      first !== undefined &&
      all.every((d) => d !== null && d.applied === first.applied && d.digest === first.digest)
    ) {
      return first.applied;
    }
    await sleep(100);
  }
  return null;
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? null;
}

function summarize(
  options: RunOptions,
  history: History,
  faults: readonly FaultRecord[],
  verdicts: readonly Verdict[],
  violations: number,
  final: {
    finalLeaderMs: number | null;
    finalConvergedMs: number | null;
    appliedIndex: number | null;
    membership: string;
    writableMs: number | null;
  },
): Summary {
  const byStatus = countByStatus(history);
  const faultsByKind: Record<string, number> = {};
  for (const f of faults) faultsByKind[f.kind] = (faultsByKind[f.kind] ?? 0) + 1;
  const recovered = faults.flatMap((f) =>
    f.recoveryMs === null ? [] : [Math.round(f.recoveryMs)],
  );
  const byWorkload = {
    register: history.registers.length,
    set: history.setAdds.length,
    bank: history.bank.filter((b) => b.kind === 'transfer' || b.source === 'client').length,
    files: history.files.filter((f) => f.kind === 'put' || f.source === 'client').length,
  };
  return {
    seed: options.seed,
    nodes: options.nodes,
    durationS: options.durationS,
    operations: byStatus.ok + byStatus.fail + byStatus.unknown,
    byWorkload,
    byStatus,
    indeterminate: byStatus.unknown,
    faultsByKind,
    recovery: {
      perFaultMsMax: recovered.length === 0 ? null : Math.max(...recovered),
      perFaultMsMedian: median(recovered),
      unrecoveredFaults: faults.filter((f) => f.recoveryMs === null).length,
      finalLeaderMs: final.finalLeaderMs === null ? null : Math.round(final.finalLeaderMs),
      finalConvergedMs: final.finalConvergedMs === null ? null : Math.round(final.finalConvergedMs),
      appliedIndex: final.appliedIndex,
      membership: final.membership,
      writableMs: final.writableMs === null ? null : Math.round(final.writableMs),
    },
    verdicts,
    errors: history.errors,
    violations,
    ok: violations === 0,
    resultsFolder: null,
  };
}

async function saveResults(
  options: RunOptions,
  root: string,
  history: History,
  faults: readonly FaultRecord[],
  summary: Summary,
  recoveryViolations: readonly string[],
): Promise<string> {
  const stamp = new Date().toISOString().replaceAll(':', '-').replace(/\..*/, '');
  const folder = join(
    options.resultsDir,
    `${stamp}-seed${options.seed}${summary.ok ? '' : '-FAILED'}`,
  );
  await mkdir(join(folder, 'logs'), { recursive: true });
  await writeFile(join(folder, 'history.json'), JSON.stringify(history));
  await writeFile(join(folder, 'timeline.json'), JSON.stringify(faults, null, 1));
  await writeFile(
    join(folder, 'summary.json'),
    JSON.stringify(
      { ...summary, recoveryViolations, options: { ...options, log: undefined } },
      null,
      1,
    ),
  );
  await writeFile(join(folder, 'timeline.html'), timelineHtml(history, faults, summary));
  for (let i = 1; i <= options.nodes; i++) {
    await copyFile(join(root, `n${i}.log`), join(folder, 'logs', `n${i}.log`)).catch(
      () => undefined,
    );
  }
  return folder;
}

export function printSummary(
  s: Summary,
  recoveryViolations: readonly string[],
  log: (line: string) => void,
): void {
  const kinds = Object.entries(s.faultsByKind)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  log(`chaos summary (seed ${s.seed}, ${s.nodes} nodes, ${s.durationS} s)`);
  log(
    `  operations: ${s.operations} (register ${s.byWorkload.register}, set ${s.byWorkload.set}, bank ${s.byWorkload.bank}, files ${s.byWorkload.files ?? 0}; ok ${s.byStatus.ok}, fail ${s.byStatus.fail}, unknown ${s.byStatus.unknown})`,
  );
  log(`  faults: ${Object.values(s.faultsByKind).reduce((a, b) => a + b, 0)} (${kinds || 'none'})`);
  log(`  indeterminate operations: ${s.indeterminate}`);
  const r = s.recovery;
  log(
    `  recovery: per fault median ${r.perFaultMsMedian ?? '-'} ms, max ${r.perFaultMsMax ?? '-'} ms, unrecovered ${r.unrecoveredFaults}; after the last heal: leader in ${r.finalLeaderMs ?? 'never'} ms, all digests equal in ${r.finalConvergedMs ?? 'never'} ms (applied index ${r.appliedIndex ?? '-'}), writes through every node in ${r.writableMs ?? 'never'} ms; ${r.membership}`,
  );
  const reasons = Object.entries(s.errors)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5);
  for (const [text, n] of reasons) log(`  error ${n}x: ${text}`);
  for (const v of s.verdicts) for (const note of v.notes) log(`  ${v.checker}: ${note}`);
  for (const v of s.verdicts)
    for (const line of v.violations) log(`  VIOLATION ${v.checker}: ${line}`);
  for (const line of recoveryViolations) log(`  VIOLATION: ${line}`);
  log(`  violations: ${s.violations}`);
  if (s.resultsFolder !== null) log(`  results: ${s.resultsFolder}`);
}

export const defaultResultsDir = join(repo, 'results', 'chaos');
