/**
 * Real processes (issue 3): a child appends to the WAL and reports each index
 * that became durable; the parent SIGKILLs it at a random moment, many times,
 * against the same data directory. Every restart must take the directory's
 * lock, recover every index reported durable (contiguous, right payloads) and
 * go on from its recovered last index. Set WAL_SIGKILL_SEED to replay a
 * schedule of kill delays (the timing of the disk stays what it is).
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { NodeFileSystem } from '../src/storage/node-fs.js';
import { Wal } from '../src/storage/wal.js';
import { killRunningChild, prng, runRound } from './kill-loop.js';
import { checkRecovered, childSegmentBytesMax, walDir } from './wal-child.js';

const rounds = 15;
const killDelayMsMin = 20;
const killDelayMsMax = 200;
const childPath = fileURLToPath(new URL('./wal-child.ts', import.meta.url));
const repoRoot = resolve(dirname(childPath), '..');

let dataDir = '';

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tandem-wal-sigkill-'));
});

afterEach(async () => {
  killRunningChild();
  await rm(dataDir, { recursive: true, force: true });
});

it('every index reported durable survives repeated SIGKILLs', async () => {
  const seed = Number(process.env.WAL_SIGKILL_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const random = prng(seed);
  const context = `WAL_SIGKILL_SEED=${seed}, data dir ${dataDir}`;
  let durableMax = 0;
  let roundsWithProgress = 0;
  for (let round = 0; round < rounds; round++) {
    const delayMs = killDelayMsMin + Math.floor(random() * (killDelayMsMax - killDelayMsMin + 1));
    const where = `round ${round} (kill after ${delayMs} ms), ${context}`;
    const r = await runRound(childPath, [dataDir], repoRoot, delayMs);
    const recoveredFirst = Number(r.recovered?.[0] ?? -1);
    const recoveredLast = Number(r.recovered?.[1] ?? -1);
    const durable = r.lines.filter((l) => l[0] === 'durable').map((l) => Number(l[1]));
    expect(r.errors, `${where}; stderr: ${r.stderr}`).toEqual([]);
    expect(r.signal, `${where}: the child must die of SIGKILL; stderr: ${r.stderr}`).toBe(
      'SIGKILL',
    );
    // Everything reported durable before is there, from index 1 on; the child
    // itself checked contiguity and payloads before saying "recovered".
    expect(recoveredLast, where).toBeGreaterThanOrEqual(durableMax);
    expect(recoveredFirst, where).toBe(recoveredLast === 0 ? 0 : 1);
    // Appends go on from the recovered last index, and resolve in order.
    let previous = recoveredLast;
    for (const index of durable) {
      expect(index, `${where}: durable indexes increase`).toBeGreaterThan(previous);
      previous = index;
    }
    if (durable.length > 0) roundsWithProgress++;
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
