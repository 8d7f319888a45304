import { crashAtEveryOperation } from './crash-points.js';
/**
 * Crash consistency of RaftStorage over the simulated disk (issue 3): a
 * scripted sequence of Readys (appends, an overwrite, a commit-only Ready,
 * an application snapshot with compaction, two snapshots installed from a
 * leader) is cut at every mutating operation, the disk crashes there, and
 * reopening must give back every Ready whose persist() resolved, a
 * contiguous log, and nothing never written.
 */

import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/raft/prng.js';
import type { Ready } from '../../src/raft/ready.js';
import type { Entry, SnapshotMeta } from '../../src/raft/types.js';
import { FsError } from '../../src/storage/fs.js';
import {
  RaftStorage,
  type RaftStorageOpenResult,
  type RaftStorageOptions,
} from '../../src/storage/raft-storage.js';
import { entries, entry, hs, ready, snap } from '../../src/storage/raft-storage.test-util.js';
import { WalFailedError } from '../../src/storage/wal.js';
import { SimFileSystem, type TearMode } from './sim-fs.js';

const dir = '/data/node';
const options: RaftStorageOptions = { wal: { segmentBytesMax: 200 } };

type Step =
  | {
      readonly kind: 'ready';
      readonly ready: Ready;
      readonly data?: Buffer;
      /** Issued together with the next step, before this one resolves. */
      readonly overlapsNext?: boolean;
    }
  | { readonly kind: 'save'; readonly meta: SnapshotMeta; readonly data: Buffer };

const script: Step[] = [
  { kind: 'ready', ready: ready({ entries: entries(1, 3, 1), hardState: hs(1, 'a', 0) }) },
  { kind: 'ready', ready: ready({ entries: entries(4, 6, 1), hardState: hs(1, 'a', 3) }) },
  { kind: 'ready', ready: ready({ hardState: hs(1, 'a', 5), mustSync: false }) },
  // A follower overwriting a conflicting suffix.
  { kind: 'ready', ready: ready({ entries: entries(5, 7, 2), hardState: hs(2, 'b', 4) }) },
  { kind: 'ready', ready: ready({ entries: entries(8, 10, 2) }) },
  { kind: 'save', meta: snap(7, 2), data: Buffer.from('application state at 7') },
  { kind: 'ready', ready: ready({ entries: entries(11, 12, 2), hardState: hs(2, 'b', 9) }) },
  // A leader's snapshot whose last entry differs from ours: the log is replaced.
  {
    kind: 'ready',
    ready: ready({ snapshot: snap(11, 3), hardState: hs(3, 'c', 11) }),
    data: Buffer.from('leader state at 11'),
  },
  { kind: 'ready', ready: ready({ entries: entries(12, 13, 3), hardState: hs(3, 'c', 12) }) },
  // A leader's snapshot just past our log, with entries after it.
  {
    kind: 'ready',
    ready: ready({ snapshot: snap(14, 4), entries: entries(15, 16, 4), hardState: hs(4, 'a', 14) }),
    data: Buffer.from('leader state at 14'),
  },
  { kind: 'ready', ready: ready({ entries: entries(17, 18, 4), hardState: hs(4, 'a', 16) }) },
  // Overlapping calls: the snapshot must not become durable before the append.
  {
    kind: 'ready',
    ready: ready({ entries: entries(19, 20, 4), hardState: hs(4, 'a', 18) }),
    overlapsNext: true,
  },
  {
    kind: 'ready',
    ready: ready({ snapshot: snap(21, 5), hardState: hs(5, 'b', 21) }),
    data: Buffer.from('leader state at 21'),
  },
  { kind: 'ready', ready: ready({ entries: entries(22, 23, 5), hardState: hs(5, 'b', 22) }) },
  // A leader's snapshot far beyond our log (a follower that fell behind): the WAL restarts.
  {
    kind: 'ready',
    ready: ready({ snapshot: snap(40, 6), entries: entries(41, 42, 6), hardState: hs(6, 'c', 40) }),
    data: Buffer.from('leader state at 40'),
  },
  { kind: 'ready', ready: ready({ entries: entries(43, 44, 6), hardState: hs(6, 'c', 42) }) },
];

interface Model {
  readonly snapshot: SnapshotMeta;
  /** The log after the snapshot, by index. */
  readonly log: ReadonlyMap<number, Entry>;
}

const initial: Model = { snapshot: snap(0, 0), log: new Map() };

/** The state after `step`, with only the first `entryCount` of its entries persisted. */
function apply(model: Model, step: Step, entryCount: number): Model {
  if (step.kind === 'save') return { snapshot: step.meta, log: model.log };
  const rd = step.ready;
  const log = new Map(rd.snapshot === null ? model.log : []);
  const list = rd.entries.slice(0, entryCount);
  const first = list[0];
  if (first !== undefined) {
    for (const index of [...log.keys()]) if (index >= first.index) log.delete(index);
    for (const e of list) log.set(e.index, e);
  }
  return { snapshot: rd.snapshot ?? model.snapshot, log };
}

function stepEntries(step: Step): number {
  return step.kind === 'ready' ? step.ready.entries.length : 0;
}

/** The states a crash during `steps[acked]` (if any) may leave. */
function candidates(acked: number): Model[] {
  let model = initial;
  for (const step of script.slice(0, acked)) model = apply(model, step, stepEntries(step));
  const inFlight = script[acked];
  if (inFlight === undefined) return [model];
  const list = [model];
  for (let j = 0; j <= stepEntries(inFlight); j++) list.push(apply(model, inFlight, j));
  const next = script[acked + 1];
  if (inFlight.kind === 'ready' && inFlight.overlapsNext === true && next !== undefined) {
    const after = apply(model, inFlight, stepEntries(inFlight));
    for (let j = 0; j <= stepEntries(next); j++) list.push(apply(after, next, j));
  }
  return list;
}

function sameEntry(a: Entry, b: Entry | undefined): boolean {
  if (b === undefined || a.index !== b.index || a.term !== b.term || a.kind !== b.kind) {
    return false;
  }
  if (a.kind === 'normal' && b.kind === 'normal') {
    return Buffer.from(a.data).equals(Buffer.from(b.data));
  }
  return false;
}

function matches(model: Model, recovered: RaftStorageOpenResult): boolean {
  const { snapshot, entries: got } = recovered.persisted;
  if (snapshot.index !== model.snapshot.index || snapshot.term !== model.snapshot.term) {
    return false;
  }
  const expected = [...model.log.values()]
    .filter((e) => e.index > snapshot.index)
    .sort((a, b) => a.index - b.index);
  return got.length === expected.length && got.every((e, i) => sameEntry(e, expected[i]));
}

interface Outcome {
  /** How many steps resolved; the next one (if any) was in flight. */
  acked: number;
}

async function runWorkload(fs: SimFileSystem): Promise<Outcome> {
  const outcome: Outcome = { acked: 0 };
  try {
    const { storage } = await RaftStorage.open(fs, dir, options);
    let pending: Promise<void>[] = [];
    for (const step of script) {
      const position = outcome.acked + pending.length;
      const done =
        step.kind === 'save'
          ? storage.saveSnapshot(step.meta, step.data).then(() => undefined)
          : storage.persist(step.ready, step.data);
      pending.push(
        done.then(() => {
          expect(outcome.acked).toBe(position); // resolved in call order
          outcome.acked++;
        }),
      );
      if (step.kind === 'ready' && step.overlapsNext === true) continue;
      const settled = await Promise.allSettled(pending);
      pending = [];
      const rejected = settled.find((r) => r.status === 'rejected');
      if (rejected !== undefined) throw rejected.reason;
    }
    await storage.close();
  } catch (error) {
    if (!(error instanceof FsError || error instanceof WalFailedError)) throw error;
  }
  return outcome;
}

/** Hard states are ordered by term; within a term the vote never changes once cast. */
function problemsOf(outcome: Outcome, recovered: RaftStorageOpenResult): string[] {
  const problems: string[] = [];
  const { hardState, snapshot, entries: got } = recovered.persisted;
  for (let i = 1; i < got.length; i++) {
    const previous = got[i - 1] as Entry;
    const current = got[i] as Entry;
    if (current.index !== previous.index + 1) problems.push(`gap after ${previous.index}`);
  }
  if (got.length > 0 && (got[0] as Entry).index !== snapshot.index + 1) {
    problems.push(`log starts at ${(got[0] as Entry).index} after snapshot ${snapshot.index}`);
  }
  const states = candidates(outcome.acked);
  if (!states.some((model) => matches(model, recovered))) {
    problems.push(
      `no legitimate state: snapshot ${snapshot.index}/${snapshot.term}, entries ` +
        `[${got.map((e) => `${e.index}/${e.term}`).join(' ')}] after ${outcome.acked} acked steps`,
    );
  }
  // The hard state is at least as new as the last acknowledged one, and was written.
  const synced = script
    .slice(0, outcome.acked)
    .flatMap((s) =>
      s.kind === 'ready' && s.ready.mustSync && s.ready.hardState !== null
        ? [s.ready.hardState]
        : [],
    );
  const last = synced[synced.length - 1];
  if (last !== undefined) {
    if (hardState.term < last.term) {
      problems.push(`hard state term ${hardState.term} older than acknowledged ${last.term}`);
    } else if (hardState.term === last.term && hardState.vote !== last.vote) {
      problems.push(`vote ${hardState.vote} in term ${hardState.term}, acknowledged ${last.vote}`);
    }
  }
  const issued = script.flatMap((s) =>
    s.kind === 'ready' && s.ready.hardState !== null ? [s.ready.hardState] : [],
  );
  // Or, when a torn append kept entries but not the hard state after them,
  // the log's last term with no vote (see RaftStorage's startHardState).
  const logTerm = Math.max(got[got.length - 1]?.term ?? 0, snapshot.term);
  const raised = hardState.vote === '' && hardState.term === logTerm;
  if (
    hardState.term > 0 &&
    !raised &&
    !issued.some((h) => h.term === hardState.term && h.vote === hardState.vote)
  ) {
    problems.push(`hard state ${JSON.stringify(hardState)} was never written`);
  }
  const maxCommit = Math.max(snapshot.index, ...issued.map((h) => h.commit));
  if (hardState.commit < snapshot.index || hardState.commit > maxCommit) {
    problems.push(`commit ${hardState.commit} outside [${snapshot.index}, ${maxCommit}]`);
  }
  return problems;
}

/** Reopens, checks, then persists once more and checks that survives a clean crash. */
async function recoverAndCheck(fs: SimFileSystem, outcome: Outcome, label: string): Promise<void> {
  let recovered: RaftStorageOpenResult;
  try {
    recovered = await RaftStorage.open(fs, dir, options);
  } catch (error) {
    throw new Error(`${label}: reopening threw ${String(error)}`);
  }
  expect(problemsOf(outcome, recovered), label).toEqual([]);
  const { storage, persisted } = recovered;
  const lastIndex =
    persisted.entries[persisted.entries.length - 1]?.index ?? persisted.snapshot.index;
  const next = entry(lastIndex + 1, 9);
  await storage.persist(ready({ entries: [next], hardState: hs(9, 'z', lastIndex) }));
  await storage.close();
  fs.crash('none');
  const again = await RaftStorage.open(fs, dir, options);
  expect(again.persisted.snapshot, label).toEqual(persisted.snapshot);
  const expected = [...persisted.entries, next];
  expect(again.persisted.entries.length, `${label}: reappend`).toBe(expected.length);
  expect(
    again.persisted.entries.every((e, i) => sameEntry(e, expected[i])),
    `${label}: reappend`,
  ).toBe(true);
  expect(again.persisted.hardState, label).toEqual(hs(9, 'z', lastIndex));
  await again.storage.close();
}

const tears: ReadonlyArray<readonly [string, TearMode]> = [
  ['lost', 'none'],
  ['half', (bytes) => bytes / 2],
  ['whole', 'all'],
];

describe('RaftStorage crash consistency over SimFileSystem', () => {
  it('runs the whole script', async () => {
    const fs = new SimFileSystem({ prng: new Prng(1) });
    const outcome = await runWorkload(fs);
    expect(outcome.acked).toBe(script.length);
    fs.crash('none');
    const recovered = await RaftStorage.open(fs, dir, options);
    expect(recovered.persisted.snapshot).toEqual(snap(40, 6));
    expect(recovered.persisted.entries.map((e) => e.index)).toEqual([41, 42, 43, 44]);
    expect(recovered.persisted.hardState).toEqual(hs(6, 'c', 42));
    await recovered.storage.close();
    fs.crash('none');
    await recoverAndCheck(fs, outcome, 'after a clean run');
  });

  it('recovers every acknowledged Ready after a crash at every mutating operation', async () => {
    const reference = new SimFileSystem({ prng: new Prng(1) });
    await runWorkload(reference);
    const boundaries = reference.mutationCount;
    expect(boundaries).toBeGreaterThan(50);
    const ops = reference.operations;
    const { runs, withDirOps } = await crashAtEveryOperation({
      reference: ops,
      tears,
      seed: (k) => k,
      run: runWorkload,
      check: recoverAndCheck,
    });
    expect(runs).toBeGreaterThan(boundaries);
    expect(withDirOps).toBeGreaterThan(0);
  });

  it('recovers after crashes at random boundaries with PRNG-chosen tears', async () => {
    const reference = new SimFileSystem({ prng: new Prng(1) });
    await runWorkload(reference);
    const boundaries = reference.mutationCount;
    const pick = new Prng(77);
    for (let seed = 1; seed <= 40; seed++) {
      const k = pick.int(boundaries + 1);
      const fs = new SimFileSystem({ prng: new Prng(seed) });
      fs.haltAfter(k);
      const outcome = await runWorkload(fs);
      fs.crash('prng', 'prng');
      await recoverAndCheck(fs, outcome, `seed ${seed}, boundary ${k}`);
    }
  });
});
