import { crashAtEveryOperation, tearModes } from './crash-points.js';
/**
 * Crash consistency of snapshot files over the simulated disk (issue 3): a
 * scripted workload (write, retire, write again) is cut at every mutating
 * operation, the disk crashes there (the last write lost or torn, any in-order
 * prefix of the unsynced directory operations kept), and after reopening the
 * newest snapshot must be one that was completely written and must verify:
 * the previous one or the new one, never a partial one.
 */

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/raft/prng.js';
import { logIndex, nodeId, type SnapshotMeta, term } from '../../src/raft/types.js';
import { DataDir } from '../../src/storage/data-dir.js';
import { FsError } from '../../src/storage/fs.js';
import {
  formatSnapshotName,
  SnapshotCorruptionError,
  SnapshotStore,
} from '../../src/storage/snapshot-store.js';
import { SimFileSystem } from './sim-fs.js';

const dir = '/data/snap';
const chunkBytes = 700;

function meta(index: number, snapshotTerm: number): SnapshotMeta {
  return {
    index: logIndex(index),
    term: term(snapshotTerm),
    membership: { voters: [nodeId('n1'), nodeId('n2'), nodeId('n3')], learners: [] },
  };
}

function content(index: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + index * 7) & 0xff;
  return out;
}

type Step =
  | { readonly kind: 'write'; readonly meta: SnapshotMeta; readonly bytes: number }
  | { readonly kind: 'retire'; readonly keep: number };

const script: Step[] = [
  { kind: 'write', meta: meta(10, 1), bytes: 2000 },
  { kind: 'write', meta: meta(20, 2), bytes: 3100 },
  { kind: 'retire', keep: 1 },
  { kind: 'write', meta: meta(30, 2), bytes: 1500 },
  { kind: 'retire', keep: 2 },
];

const key = (m: Pick<SnapshotMeta, 'index' | 'term'>): string => `${m.index}/${m.term}`;
const expectedContent = new Map(
  script.flatMap((s) =>
    s.kind === 'write' ? [[key(s.meta), content(s.meta.index, s.bytes)]] : [],
  ),
);

interface Outcome {
  /** Snapshots whose `finish()` was called. */
  readonly finishing: Set<string>;
  /** Snapshots whose `finish()` resolved, in order. */
  readonly finished: SnapshotMeta[];
  /** Snapshots removed by a `retire` that resolved. */
  readonly retired: Set<string>;
}

async function runWorkload(fs: SimFileSystem): Promise<Outcome> {
  const outcome: Outcome = { finishing: new Set(), finished: [], retired: new Set() };
  try {
    const store = await SnapshotStore.open(fs, dir);
    for (const step of script) {
      if (step.kind === 'retire') {
        const before = store.list().map((s) => key(s.meta));
        await store.retire(step.keep);
        const after = new Set(store.list().map((s) => key(s.meta)));
        for (const k of before) if (!after.has(k)) outcome.retired.add(k);
        continue;
      }
      const bytes = expectedContent.get(key(step.meta)) as Buffer;
      const writer = await store.beginWrite(step.meta);
      for (let at = 0; at < bytes.length; at += chunkBytes) {
        await writer.write(bytes.subarray(at, at + chunkBytes));
      }
      outcome.finishing.add(key(step.meta));
      await writer.finish();
      outcome.finished.push(step.meta);
    }
  } catch (error) {
    if (!(error instanceof FsError)) throw error;
  }
  return outcome;
}

async function readAll(store: SnapshotStore, m: SnapshotMeta): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.openRead(m)) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Reopens and checks the snapshots against what the workload did. */
async function recoverAndCheck(fs: SimFileSystem, outcome: Outcome, label: string): Promise<void> {
  let store: SnapshotStore;
  try {
    store = await SnapshotStore.open(fs, dir, { readChunkBytes: 512 });
  } catch (error) {
    // A crash alone never looks like corruption.
    throw new Error(`${label}: reopening threw ${String(error)}`);
  }
  const listed = store.list().map((s) => s.meta);
  for (const m of listed) {
    expect(outcome.finishing.has(key(m)), `${label}: ${key(m)} was never finished`).toBe(true);
    expect(outcome.retired.has(key(m)), `${label}: ${key(m)} was retired`).toBe(false);
    const bytes = await readAll(store, m);
    expect(bytes.equals(expectedContent.get(key(m)) as Buffer), `${label}: ${key(m)}`).toBe(true);
  }
  const latest = store.latest();
  const lastFinished = outcome.finished[outcome.finished.length - 1];
  if (lastFinished === undefined) {
    if (latest !== null) expect(outcome.finishing.has(key(latest)), label).toBe(true);
  } else {
    expect(latest, `${label}: the finished ${key(lastFinished)} is lost`).not.toBeNull();
    expect((latest as SnapshotMeta).index, label).toBeGreaterThanOrEqual(lastFinished.index);
  }
  if (latest !== null) {
    expect(latest, label).toEqual(listed[listed.length - 1]);
    await store.verify(latest);
  }

  // The recovered store works: leftovers are cleaned, a new snapshot survives a crash.
  await store.retire(1);
  expect(
    (await fs.readdir(dir)).filter((n) => n.endsWith('.tmp')),
    label,
  ).toEqual([]);
  const next = meta(99, 9);
  const writer = await store.beginWrite(next);
  await writer.write(content(99, 1000));
  await writer.finish();
  fs.crash('prng', 'prng');
  const again = await SnapshotStore.open(fs, dir);
  expect(again.latest(), `${label}: after a second write`).toEqual(next);
  await again.verify(next);
}

const tears = tearModes;

describe('snapshot crash consistency over SimFileSystem', () => {
  it('runs the whole workload', async () => {
    const fs = new SimFileSystem({ prng: new Prng(1) });
    const outcome = await runWorkload(fs);
    expect(outcome.finished.map(key)).toEqual(['10/1', '20/2', '30/2']);
    expect([...outcome.retired]).toEqual(['10/1']);
    const ops = fs.operations.map((o) => o.op);
    expect(ops.filter((op) => op === 'rename').length).toBe(3);
    expect(ops.filter((op) => op === 'unlink').length).toBe(1);
    fs.crash('none');
    await recoverAndCheck(fs, outcome, 'after a clean run');
  });

  it('never exposes a partial snapshot after a crash at every mutating operation', async () => {
    const reference = new SimFileSystem({ prng: new Prng(1) });
    await runWorkload(reference);
    const ops = reference.operations;
    const boundaries = ops.length;
    expect(boundaries).toBeGreaterThan(20);
    const { runs, withDirOps } = await crashAtEveryOperation({
      reference: ops,
      tears,
      seed: (k, kept) => k * 7 + kept,
      run: runWorkload,
      check: recoverAndCheck,
    });
    expect(runs).toBeGreaterThan(boundaries);
    expect(withDirOps).toBeGreaterThan(0);
  });
});

describe('snapshot faults over SimFileSystem', () => {
  async function twoSnapshots(seed: number) {
    const fs = new SimFileSystem({ prng: new Prng(seed) });
    const outcome = await runWorkload(fs);
    expect(outcome.finished.length).toBe(3);
    fs.crash('none');
    return fs;
  }

  it('detects sticky corruption in the data of the newest snapshot, naming the file', async () => {
    const fs = await twoSnapshots(3);
    const file = join(dir, formatSnapshotName(logIndex(30), term(2)));
    fs.corrupt(file, 800, 1);
    const store = await SnapshotStore.open(fs, dir);
    const latest = store.latest() as SnapshotMeta;
    expect(latest.index).toBe(30);
    const error = await store.verify(latest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapshotCorruptionError);
    expect((error as SnapshotCorruptionError).file).toBe(file);
    expect((error as Error).message).toContain('data checksum mismatch');
    // The older one is intact.
    await store.verify(meta(20, 2));
  });

  it('refuses to open on corruption in a trailer, naming the file', async () => {
    const fs = await twoSnapshots(4);
    const file = join(dir, formatSnapshotName(logIndex(20), term(2)));
    const size = fs.contentOf(file).length;
    for (const offset of [size - 1, size - 10, size - 30]) {
      fs.corrupt(file, offset, 1);
      const error = await SnapshotStore.open(fs, dir).catch((e: unknown) => e);
      expect(error, `offset ${offset}`).toBeInstanceOf(SnapshotCorruptionError);
      expect((error as SnapshotCorruptionError).file).toBe(file);
      expect((error as Error).message).toContain(file);
    }
  });

  it('keeps the previous snapshot when a datasync of the new one fails', async () => {
    const fs = new SimFileSystem({ prng: new Prng(5) });
    const store = await SnapshotStore.open(fs, dir);
    const first = await store.beginWrite(meta(10, 1));
    await first.write(content(10, 2000));
    await first.finish();
    const second = await store.beginWrite(meta(20, 2));
    await second.write(content(20, 3100));
    fs.failNext('datasync', 'EIO');
    await expect(second.finish()).rejects.toMatchObject({ code: 'EIO', operation: 'datasync' });
    expect(store.latest()).toEqual(meta(10, 1));
    fs.crash('prng', 'prng');
    const reopened = await SnapshotStore.open(fs, dir);
    expect(reopened.latest()).toEqual(meta(10, 1));
    await reopened.verify(meta(10, 1));
  });
});

describe('data directory initialization over SimFileSystem', () => {
  it('initializes correctly after a crash at every mutating operation of a first open', async () => {
    const reference = new SimFileSystem({ prng: new Prng(1) });
    await (await DataDir.open(reference, '/node/data')).close();
    const boundaries = reference.mutationCount;
    expect(boundaries).toBeGreaterThanOrEqual(5); // create, write, datasync, rename, syncDir...
    for (let k = 0; k <= boundaries; k++) {
      for (const dirOps of ['lost', 'prng', 99] as const) {
        const fs = new SimFileSystem({ prng: new Prng(k) });
        fs.haltAfter(k);
        try {
          await (await DataDir.open(fs, '/node/data')).close();
        } catch (error) {
          if (!(error instanceof FsError)) throw error;
        }
        fs.crash('prng', dirOps);
        const label = `boundary ${k}, dir ops ${dirOps}`;
        const dataDir = await DataDir.open(fs, '/node/data');
        expect(fs.contentOf('/node/data/FORMAT').toString(), label).toBe('tandem-data 1\n');
        expect(await fs.readdir('/node/data'), label).toEqual([
          'FORMAT',
          'INCARNATION',
          'snap',
          'wal',
        ]);
        expect(fs.contentOf('/node/data/INCARNATION').toString(), label).toBe(
          `${dataDir.incarnation}\n`,
        );
        // The lock refuses a second opener while held.
        await expect(DataDir.open(fs, '/node/data'), label).rejects.toMatchObject({
          code: 'ELOCKED',
        });
        await dataDir.close();
        fs.crash('none');
        expect(fs.durableContentOf('/node/data/FORMAT')?.toString(), label).toBe('tandem-data 1\n');
        // Once a directory has an incarnation, a crash never changes it.
        const reopened = await DataDir.open(fs, '/node/data');
        expect(reopened.incarnation, label).toBe(dataDir.incarnation);
        await reopened.close();
      }
    }
  });
});
