/**
 * Real processes (issue 3): a child appends to the WAL and reports each index
 * that became durable; the parent SIGKILLs it at a random moment, many times,
 * against the same data directory. Every restart must take the directory's
 * lock, recover every index reported durable (contiguous, right payloads) and
 * go on from its recovered last index. Set WAL_SIGKILL_SEED to replay a
 * schedule of kill delays (the timing of the disk stays what it is).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { NodeFileSystem } from '../src/storage/node-fs.js';
import { Wal } from '../src/storage/wal.js';
import { checkRecovered, childSegmentBytesMax, walDir } from './wal-child.js';

const rounds = 15;
const killDelayMsMin = 20;
const killDelayMsMax = 200;
/** From spawn to the child's `recovered` line: node + tsx start-up and recovery. */
const startMsMax = 15_000;
const childPath = fileURLToPath(new URL('./wal-child.ts', import.meta.url));
const repoRoot = resolve(dirname(childPath), '..');

let dataDir = '';
let child: ChildProcess | null = null;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tandem-wal-sigkill-'));
});

afterEach(async () => {
  const running = child;
  child = null;
  if (running?.pid !== undefined && running.exitCode === null && running.signalCode === null) {
    process.kill(running.pid, 'SIGKILL');
  }
  await rm(dataDir, { recursive: true, force: true });
});

/** mulberry32: a small seeded PRNG, so a failing schedule can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

interface Round {
  readonly recoveredFirst: number;
  readonly recoveredLast: number;
  readonly durable: number[];
  readonly signal: NodeJS.Signals | null;
  readonly errors: string[];
  readonly stderr: string;
}

/** Starts a child, kills it `killDelayMs` after it has recovered, and collects what it said. */
async function runRound(killDelayMs: number): Promise<Round> {
  const proc = spawn(process.execPath, ['--import', 'tsx', childPath, dataDir], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child = proc;
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
  let recoveredFirst = -1;
  let recoveredLast = -1;
  const durable: number[] = [];
  const errors: string[] = [];
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  let killTimer: NodeJS.Timeout | undefined;
  const startTimer = setTimeout(() => {
    errors.push(`no "recovered" line within ${startMsMax} ms`);
    process.kill(pid, 'SIGKILL');
  }, startMsMax);
  lines.on('line', (line) => {
    const [kind, ...rest] = line.split(' ');
    if (kind === 'durable') durable.push(Number(rest[0]));
    else if (kind === 'recovered') {
      recoveredFirst = Number(rest[0]);
      recoveredLast = Number(rest[1]);
      clearTimeout(startTimer);
      killTimer = setTimeout(() => process.kill(pid, 'SIGKILL'), killDelayMs);
    } else errors.push(line);
  });
  const signal = await exited;
  proc.stdin?.destroy();
  clearTimeout(startTimer);
  clearTimeout(killTimer);
  child = null;
  return { recoveredFirst, recoveredLast, durable, signal, errors, stderr };
}

it('every index reported durable survives repeated SIGKILLs', async () => {
  const seed = Number(process.env.WAL_SIGKILL_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const random = prng(seed);
  const context = `WAL_SIGKILL_SEED=${seed}, data dir ${dataDir}`;
  let durableMax = 0;
  let roundsWithProgress = 0;
  for (let round = 0; round < rounds; round++) {
    const delayMs = killDelayMsMin + Math.floor(random() * (killDelayMsMax - killDelayMsMin + 1));
    const where = `round ${round} (kill after ${delayMs} ms), ${context}`;
    const r = await runRound(delayMs);
    expect(r.errors, `${where}; stderr: ${r.stderr}`).toEqual([]);
    expect(r.signal, `${where}: the child must die of SIGKILL; stderr: ${r.stderr}`).toBe(
      'SIGKILL',
    );
    // Everything reported durable before is there, from index 1 on; the child
    // itself checked contiguity and payloads before saying "recovered".
    expect(r.recoveredLast, where).toBeGreaterThanOrEqual(durableMax);
    expect(r.recoveredFirst, where).toBe(r.recoveredLast === 0 ? 0 : 1);
    // Appends go on from the recovered last index, and resolve in order.
    let previous = r.recoveredLast;
    for (const index of r.durable) {
      expect(index, `${where}: durable indexes increase`).toBeGreaterThan(previous);
      previous = index;
    }
    if (r.durable.length > 0) roundsWithProgress++;
    durableMax = Math.max(durableMax, previous);
  }
  // Under a loaded machine a short round may end before its first fdatasync,
  // but the run as a whole must have made progress to prove anything.
  expect(roundsWithProgress, context).toBeGreaterThan(0);

  // The parent checks the log itself too, and the last SIGKILL must have freed the lock.
  const fs = new NodeFileSystem();
  const lock = await fs.lock(dataDir);
  try {
    const { wal, entries } = await Wal.open(fs, walDir(dataDir), {
      segmentBytesMax: childSegmentBytesMax,
    });
    await wal.close();
    expect(checkRecovered(entries), context).toBeNull();
    expect(entries.length, context).toBeGreaterThanOrEqual(durableMax);
    expect(wal.segmentCount, context).toBeGreaterThan(1);
  } finally {
    await lock.release();
  }
});
