/**
 * The node's CPU scheduling policy (issue 8).
 *
 * Under Linux's fair scheduler a thread that wakes up may preempt the one
 * running on its CPU. A Tandem node wakes its own helper threads (libuv's
 * pool for every WAL write, V8's collector threads) and, on a small machine
 * shared with its peers or clients, wakes them too with every message; each
 * wake-up could then push the event loop off its CPU in the middle of a
 * batch, and every write waiting in that batch waits with it. SCHED_BATCH
 * (sched(7)) keeps the same fair shares but lets a waking thread preempt
 * nobody: it runs on an idle CPU, or when the running thread blocks or
 * ends its slice.
 *
 * Measured in the 3-node bench (nodes and load generator on one 2-core
 * machine, interleaved pairs against `inherit`): 50 clients' SETs gave
 * 27.0-28.9K/s against 23.8-26.2K, the 90%-read mix 33.2-36.0K against
 * 29.9-30.1K, pipelined SETs 104-106K against 101-102K; the leader had
 * been preempted about 2,500 times a second, and 416 after. It costs where
 * every CPU is busy, since a waking thread then waits for the running
 * one's slice: with 16 KiB values 7 of 9 pairs were slower (medians 3,070
 * against 3,342 SET/s).
 *
 * Node has no call for it, so the node runs util-linux's `chrt` on itself
 * at start: every thread then, and threads started later inherit it.
 * Switching between the normal policies needs no privilege. `inherit`
 * leaves the policy the process was started with.
 */

import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { statField } from './proc-stat.js';

export type CpuPolicy = 'batch' | 'inherit';
export const cpuPolicies: readonly CpuPolicy[] = ['batch', 'inherit'];

/** sched(7)'s numbers, as /proc shows them. */
export const schedBatch = 3;

/** What became of the request: applied, left alone, or failed with the reason. */
export type CpuPolicyOutcome =
  | { readonly kind: 'applied' }
  | { readonly kind: 'inherited' }
  | { readonly kind: 'failed'; readonly reason: string };

export interface CpuPolicyDeps {
  readonly platform: NodeJS.Platform;
  /** Runs a command; returns its exit status (null if it could not run) and output. */
  readonly run: (command: string, args: readonly string[]) => CommandResult;
}

export interface CommandResult {
  readonly status: number | null;
  readonly output: string;
  readonly error?: Error;
}

const realDeps: CpuPolicyDeps = {
  platform: process.platform,
  run: (command, args) => {
    const result = spawnSync(command, args, { encoding: 'utf8', timeout: 5_000 });
    return {
      status: result.status,
      output: `${result.stdout ?? ''}${result.stderr ?? ''}`.trim(),
      ...(result.error === undefined ? {} : { error: result.error }),
    };
  },
};

/** Puts every thread of process `pid` under `policy`. */
export function applyCpuPolicy(
  policy: CpuPolicy,
  pid: number = process.pid,
  deps: CpuPolicyDeps = realDeps,
): CpuPolicyOutcome {
  if (policy === 'inherit') return { kind: 'inherited' };
  if (deps.platform !== 'linux') {
    return { kind: 'failed', reason: `SCHED_BATCH is Linux's; this is ${deps.platform}` };
  }
  const result = deps.run('chrt', ['--batch', '--all-tasks', '--pid', '0', String(pid)]);
  if (result.status === 0) return { kind: 'applied' };
  const why =
    result.error !== undefined
      ? `chrt could not run (${result.error.message}); it is in util-linux`
      : `chrt exited with ${result.status ?? 'a signal'}: ${result.output || 'no output'}`;
  return { kind: 'failed', reason: why };
}

/** Whether util-linux's `chrt` is here to run (tests skip what needs it otherwise). */
export function chrtAvailable(): boolean {
  return spawnSync('chrt', ['--version'], { timeout: 5_000 }).status === 0;
}

/** The scheduling policy of each thread of `pid` (field 41 of /proc/PID/task/TID/stat). */
export function threadPolicies(pid: number): number[] {
  const dir = `/proc/${pid}/task`;
  const policies: number[] = [];
  for (const tid of readdirSync(dir)) {
    let stat: string;
    try {
      stat = readFileSync(`${dir}/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    policies.push(statField(stat, 41));
  }
  return policies;
}
