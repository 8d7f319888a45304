/**
 * Shared by the SIGKILL tests: start a child process over a data directory,
 * let it work for a while after it reports its recovery, SIGKILL it, and
 * collect the lines it wrote. Kill delays come from a seeded PRNG, so a
 * failing schedule replays (the disk's timing stays what it is).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

/** From spawn to the child's `recovered` line: node + tsx start-up and recovery. */
const startMsMax = 15_000;

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export interface Round {
  /** The words after `recovered`, or null if the child never said it. */
  readonly recovered: readonly string[] | null;
  /** Every other line but errors, in order, split into words. */
  readonly lines: readonly (readonly string[])[];
  readonly signal: NodeJS.Signals | null;
  readonly errors: string[];
  readonly stderr: string;
}

/** The child of the round in progress, so a test's afterEach can kill it. */
let running: ChildProcess | null = null;

export function killRunningChild(): void {
  const proc = running;
  running = null;
  if (proc?.pid !== undefined && proc.exitCode === null && proc.signalCode === null) {
    process.kill(proc.pid, 'SIGKILL');
  }
}

/**
 * Runs `childPath` (TypeScript, through tsx) with `args`, SIGKILLs it
 * `killDelayMs` after its `recovered` line, and returns what it said.
 * Lines starting with `error` are collected as errors.
 */
export async function runRound(
  childPath: string,
  args: readonly string[],
  cwd: string,
  killDelayMs: number,
): Promise<Round> {
  const proc = spawn(process.execPath, ['--import', 'tsx', childPath, ...args], {
    cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running = proc;
  const pid = proc.pid;
  if (pid === undefined) throw new Error('the child process did not start');
  let stderr = '';
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<NodeJS.Signals | null>((done) => {
    proc.on('close', (_code, signal) => done(signal));
  });
  let recovered: string[] | null = null;
  const lines: string[][] = [];
  const errors: string[] = [];
  const input = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  let killTimer: NodeJS.Timeout | undefined;
  const startTimer = setTimeout(() => {
    errors.push(`no "recovered" line within ${startMsMax} ms`);
    process.kill(pid, 'SIGKILL');
  }, startMsMax);
  input.on('line', (line) => {
    const [kind = '', ...rest] = line.split(' ');
    if (kind === 'error') errors.push(line);
    else if (kind === 'recovered') {
      recovered = rest;
      clearTimeout(startTimer);
      killTimer = setTimeout(() => process.kill(pid, 'SIGKILL'), killDelayMs);
    } else lines.push([kind, ...rest]);
  });
  const signal = await exited;
  proc.stdin?.destroy();
  clearTimeout(startTimer);
  clearTimeout(killTimer);
  running = null;
  return { recovered, lines, signal, errors, stderr };
}

/** A line to the parent; stdout to a pipe is synchronous on Linux, so it survives a SIGKILL. */
export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/**
 * The child side: when `moduleUrl` is the script being run, calls `main`
 * with the data directory argument. The child ends itself after
 * `lifetimeMsMax` or when its parent goes away, and reports a failure as an
 * `error` line and exit code 1.
 */
export function runAsChild(
  moduleUrl: string,
  lifetimeMsMax: number,
  main: (dataDir: string) => Promise<void>,
): void {
  const script = process.argv[1];
  if (script === undefined || moduleUrl !== pathToFileURL(script).href) return;
  const dataDir = process.argv[2];
  setTimeout(() => process.exit(2), lifetimeMsMax).unref();
  process.stdin.on('end', () => process.exit(3)); // the parent went away
  process.stdin.resume();
  if (dataDir === undefined) {
    say(`error usage: node --import tsx ${script} DATA_DIR`);
    process.exit(1);
  }
  main(dataDir).catch((error: unknown) => {
    say(`error ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
