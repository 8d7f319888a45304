/**
 * Real processes (issue 3): a child persists entries through RaftStorage and
 * saves snapshots (which compact the WAL and retire older snapshots),
 * reporting what became durable; the parent SIGKILLs it at random moments,
 * many times, against the same data directory. Every restart must recover
 * the newest snapshot reported saved (or a newer one), byte for byte, and
 * every entry reported durable after it. STORAGE_SIGKILL_SEED replays a
 * schedule of kill delays.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { killRunningChild, prng, runRound } from './kill-loop.js';

const rounds = 15;
const killDelayMsMin = 30;
const killDelayMsMax = 400;
const childPath = fileURLToPath(new URL('./storage-child.ts', import.meta.url));
const repoRoot = resolve(dirname(childPath), '..');

let dataDir = '';

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tandem-storage-sigkill-'));
});

afterEach(async () => {
  killRunningChild();
  await rm(dataDir, { recursive: true, force: true });
});

it('every snapshot and entry reported durable survives repeated SIGKILLs', async () => {
  const seed = Number(process.env.STORAGE_SIGKILL_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const random = prng(seed);
  const context = `STORAGE_SIGKILL_SEED=${seed}, data dir ${dataDir}`;
  let durableMax = 0;
  let snapshotMax = 0;
  let snapshotsSaved = 0;
  for (let round = 0; round < rounds; round++) {
    const delayMs = killDelayMsMin + Math.floor(random() * (killDelayMsMax - killDelayMsMin + 1));
    const where = `round ${round} (kill after ${delayMs} ms), ${context}`;
    const r = await runRound(childPath, [dataDir], repoRoot, delayMs);
    expect(r.errors, `${where}; stderr: ${r.stderr}`).toEqual([]);
    expect(r.signal, `${where}: the child must die of SIGKILL; stderr: ${r.stderr}`).toBe(
      'SIGKILL',
    );
    // The child verified the snapshot's bytes and the entries after it.
    const [snapshotIndex = -1, lastIndex = -1] = (r.recovered ?? []).map(Number);
    expect(snapshotIndex, where).toBeGreaterThanOrEqual(snapshotMax);
    expect(lastIndex, where).toBeGreaterThanOrEqual(durableMax);
    for (const [kind, value] of r.lines) {
      const index = Number(value);
      if (kind === 'durable') durableMax = Math.max(durableMax, index);
      if (kind === 'snapshot') {
        expect(index, `${where}: snapshots move forward`).toBeGreaterThan(snapshotMax);
        snapshotMax = index;
        snapshotsSaved++;
      }
    }
  }
  // A loaded machine may kill some rounds early, but the run must have
  // saved snapshots (so kills could land on them) to prove anything.
  expect(snapshotsSaved, context).toBeGreaterThan(0);
  expect(durableMax, context).toBeGreaterThan(0);
});
