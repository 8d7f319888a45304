import { crashAtEveryOperation, type NamedTears, tearModes } from './crash-points.js';
/**
 * Crash consistency of the WAL over the simulated disk (issue 3): a scripted
 * workload is cut at every write and sync boundary, the disk crashes there
 * (the last write lost, or torn at several lengths), and recovery must give
 * back everything acknowledged and nothing never written.
 */

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/raft/prng.js';
import type { Entry, HardState } from '../../src/raft/types.js';
import { logIndex, nodeId, term } from '../../src/raft/types.js';
import { FsError } from '../../src/storage/fs.js';
import {
  Wal,
  WalCorruptionError,
  WalFailedError,
  type WalOpenResult,
  type WalOptions,
} from '../../src/storage/wal.js';
import { SimFileSystem } from './sim-fs.js';

const dir = '/data/wal';
const options: WalOptions = { segmentBytesMax: 250 };
/** The same, with each next segment prepared (zero-filled) in the background. */
const preallocated: WalOptions = { ...options, preallocate: true, prepareAfterBytes: 0 };

function entry(index: number, entryTerm: number): Entry {
  const data = Buffer.from(`entry ${index} of term ${entryTerm}: ${'x'.repeat(index % 7)}`);
  return { kind: 'normal', index: logIndex(index), term: term(entryTerm), data };
}

function entries(from: number, to: number, entryTerm: number): Entry[] {
  const list: Entry[] = [];
  for (let i = from; i <= to; i++) list.push(entry(i, entryTerm));
  return list;
}

function hardState(hsTerm: number, commit: number): HardState {
  return { term: term(hsTerm), vote: nodeId(`n${hsTerm % 3}`), commit: logIndex(commit) };
}

interface Append {
  readonly entries: Entry[];
  readonly hardState: HardState | null;
}

/** Appends of one step are issued together (one group commit) and awaited together. */
type Step =
  | { readonly kind: 'append'; readonly appends: Append[] }
  | { readonly kind: 'compact'; readonly throughIndex: number };

const script: Step[] = [
  { kind: 'append', appends: [{ entries: entries(1, 1, 1), hardState: hardState(1, 0) }] },
  { kind: 'append', appends: [{ entries: entries(2, 3, 1), hardState: null }] },
  {
    kind: 'append',
    appends: [
      { entries: entries(4, 6, 1), hardState: hardState(1, 3) },
      { entries: entries(7, 8, 1), hardState: null },
      { entries: [], hardState: hardState(2, 6) },
    ],
  },
  { kind: 'append', appends: [{ entries: entries(9, 12, 2), hardState: hardState(2, 8) }] },
  // A follower overwriting a conflicting suffix.
  { kind: 'append', appends: [{ entries: entries(10, 11, 3), hardState: hardState(3, 9) }] },
  {
    kind: 'append',
    appends: [
      { entries: entries(12, 14, 3), hardState: null },
      { entries: entries(15, 16, 3), hardState: hardState(3, 14) },
    ],
  },
  { kind: 'compact', throughIndex: 12 },
  { kind: 'append', appends: [{ entries: entries(17, 18, 3), hardState: hardState(3, 16) }] },
  { kind: 'append', appends: [{ entries: entries(19, 21, 4), hardState: hardState(4, 18) }] },
];

/** What a run of the workload did before it stopped (halted, or done). */
interface Outcome {
  /** Appends whose `append()` was called, in call order. */
  readonly issued: Append[];
  /** How many of `issued` resolved (always a prefix: appends resolve in order). */
  acked: number;
  /** Highest `throughIndex` of a compaction that was started; 0 if none. */
  compactedThrough: number;
  /** Segments deleted by compactions that resolved. */
  segmentsDeleted: number;
  wal: Wal | null;
}

async function runWorkload(
  fs: SimFileSystem,
  walOptions = options,
  steps: readonly Step[] = script,
): Promise<Outcome> {
  const outcome: Outcome = {
    issued: [],
    acked: 0,
    compactedThrough: 0,
    segmentsDeleted: 0,
    wal: null,
  };
  try {
    const { wal } = await Wal.open(fs, dir, walOptions);
    outcome.wal = wal;
    for (const step of steps) {
      if (step.kind === 'compact') {
        outcome.compactedThrough = Math.max(outcome.compactedThrough, step.throughIndex);
        outcome.segmentsDeleted += await wal.compact(logIndex(step.throughIndex));
        continue;
      }
      const pending = step.appends.map((append) => {
        const position = outcome.issued.length;
        outcome.issued.push(append);
        return wal.append(append.entries, append.hardState).then(() => {
          expect(outcome.acked).toBe(position); // resolved in call order
          outcome.acked = position + 1;
        });
      });
      // allSettled, so a rejection does not leave later resolutions unobserved.
      const settled = await Promise.allSettled(pending);
      const rejected = settled.find((s) => s.status === 'rejected');
      if (rejected !== undefined) throw rejected.reason;
    }
  } catch (error) {
    if (!(error instanceof WalFailedError || error instanceof FsError)) throw error;
  }
  return outcome;
}

type WalRecordModel = { readonly entry: Entry } | { readonly hardState: HardState };

function records(appends: readonly Append[]): WalRecordModel[] {
  const list: WalRecordModel[] = [];
  for (const append of appends) {
    for (const e of append.entries) list.push({ entry: e });
    if (append.hardState !== null) list.push({ hardState: append.hardState });
  }
  return list;
}

function sameEntry(a: Entry | undefined, b: Entry | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  if (a.index !== b.index || a.term !== b.term || a.kind !== b.kind) return false;
  if (a.kind === 'normal' && b.kind === 'normal') {
    return Buffer.from(a.data).equals(Buffer.from(b.data));
  }
  return JSON.stringify(a) === JSON.stringify(b);
}

function sameHardState(a: HardState | null, b: HardState | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Checks a recovered WAL against what the workload did; returns the problems
 * found (empty if none).
 *
 * A recovered log is legitimate when it is the log after applying, in order,
 * every record of the acknowledged appends and then some prefix of the
 * records of the appends still in flight (recovery applies records in order
 * and stops at the first damaged one), minus a head removed by compaction.
 */
function problemsOf(outcome: Outcome, recovered: WalOpenResult): string[] {
  const problems: string[] = [];
  const got = recovered.entries;
  const lastIndex: number = recovered.wal.lastIndex;
  const firstIndex = got[0]?.index ?? lastIndex + 1;
  // (c) contiguous, terms non-decreasing.
  for (let i = 1; i < got.length; i++) {
    const previous = got[i - 1] as Entry;
    const current = got[i] as Entry;
    if (current.index !== previous.index + 1) problems.push(`gap after ${previous.index}`);
    if (current.term < previous.term) problems.push(`term decreases at ${current.index}`);
  }
  if (got.length > 0 && (got[got.length - 1] as Entry).index !== lastIndex) {
    problems.push(`entries end below lastIndex ${lastIndex}`);
  }
  // (b) nothing that was never appended.
  const written = outcome.issued.flatMap((a) => a.entries);
  for (const e of got) {
    if (!written.some((w) => sameEntry(w, e))) {
      problems.push(`entry ${e.index}/${e.term} was never appended`);
    }
  }
  // The head may be missing only where a compaction was asked for.
  if (firstIndex > 1 && firstIndex - 1 > outcome.compactedThrough) {
    problems.push(
      `entries 1..${firstIndex - 1} missing, compaction only through ${outcome.compactedThrough}`,
    );
  }
  // (a) everything acknowledged, exactly: find a legitimate record prefix.
  const all = records(outcome.issued);
  const ackedRecords = records(outcome.issued.slice(0, outcome.acked)).length;
  const model: Entry[] = [];
  let modelHardState: HardState | null = null;
  const matches = (): boolean => {
    if (model.length !== lastIndex) return false;
    if (!sameHardState(modelHardState, recovered.hardState)) return false;
    return got.every((e) => sameEntry(model[e.index - 1], e));
  };
  let found = false;
  for (let p = 0; p <= all.length && !found; p++) {
    if (p >= ackedRecords && matches()) found = true;
    const record = all[p];
    if (record === undefined) break;
    if ('entry' in record) {
      model.length = record.entry.index - 1;
      model.push(record.entry);
    } else modelHardState = record.hardState;
  }
  if (!found) {
    problems.push(
      `no legitimate state: recovered ${firstIndex}..${lastIndex} ` +
        `[${got.map((e) => `${e.index}/${e.term}`).join(' ')}] with hard state ` +
        `${JSON.stringify(recovered.hardState)}; ${outcome.acked} of ${outcome.issued.length} ` +
        'appends were acknowledged',
    );
  }
  return problems;
}

/** Recovers, checks, then appends once more and checks that survives a clean crash. */
async function recoverAndCheck(
  fs: SimFileSystem,
  outcome: Outcome,
  label: string,
  walOptions = options,
): Promise<void> {
  let recovered: WalOpenResult;
  try {
    recovered = await Wal.open(fs, dir, walOptions);
  } catch (error) {
    // (d) a crash alone never looks like corruption.
    throw new Error(`${label}: recovery threw ${String(error)}`);
  }
  const problems = problemsOf(outcome, recovered);
  expect(problems, label).toEqual([]);

  // The recovered WAL must work, and its recovery (cut tails) must be durable.
  const { wal, entries: before } = recovered;
  const lastTerm = before[before.length - 1]?.term ?? 1;
  const next = entry(wal.lastIndex + 1, Math.max(lastTerm, 9));
  await wal.append([next], null);
  await wal.close();
  fs.crash('none');
  const again = await Wal.open(fs, dir, walOptions);
  const expected = [...before, next];
  expect(again.entries.length, label).toBe(expected.length);
  expect(
    again.entries.every((e, i) => sameEntry(e, expected[i])),
    `${label}: reappend`,
  ).toBe(true);
  await again.wal.close();
}

const tears = tearModes;

async function fullRun(
  seed: number,
  walOptions = options,
): Promise<{ fs: SimFileSystem; outcome: Outcome }> {
  const fs = new SimFileSystem({ prng: new Prng(seed) });
  const outcome = await runWorkload(fs, walOptions);
  return { fs, outcome };
}

for (const [variant, walOptions] of [
  ['appended segments', options],
  ['preallocated segments', preallocated],
] as const) {
  describe(`WAL crash consistency over SimFileSystem, ${variant}`, () => {
    it('runs the whole workload: rotation, overwrite, compaction', async () => {
      const { fs, outcome } = await fullRun(1, walOptions);
      expect(outcome.acked).toBe(outcome.issued.length);
      const ops = fs.operations.map((o) => o.op);
      if (walOptions.preallocate === true) {
        // Rotations took prepared segments (a header, then a rename), one of
        // them early, to leave the first segment, which was not prepared.
        expect(ops.filter((op) => op === 'rename').length).toBeGreaterThan(1);
        expect(outcome.segmentsDeleted).toBeGreaterThan(0);
      } else {
        expect(outcome.segmentsDeleted).toBe(2);
        expect(outcome.wal?.segmentCount).toBe(2);
        expect(ops.filter((op) => op === 'create').length).toBe(4);
        expect(ops.filter((op) => op === 'unlink').length).toBe(2);
      }
      await outcome.wal?.close();
      fs.crash('none');
      await recoverAndCheck(fs, outcome, 'after a clean run', walOptions);
    });

    it('recovers every acknowledged entry after a crash at every write and sync boundary', async () => {
      const reference = await fullRun(1, walOptions);
      const boundaries = reference.fs.mutationCount;
      expect(boundaries).toBeGreaterThan(30);
      const ops = reference.fs.operations;
      const { runs, withDirOps } = await crashAtEveryOperation({
        reference: ops,
        tears,
        seed: (k) => k,
        run: (fs) => runWorkload(fs, walOptions),
        check: (fs, outcome, label) => recoverAndCheck(fs, outcome, label, walOptions),
      });
      expect(runs).toBeGreaterThan(boundaries);
      expect(withDirOps).toBeGreaterThan(0);
    });

    it('recovers after a second crash in the middle of recovery', async () => {
      const boundaries = (await fullRun(1, walOptions)).fs.mutationCount;
      let recoveryMutations = 0;
      for (let k = 0; k <= boundaries; k++) {
        for (const [tearName, tear] of tears) {
          // j = 0 measures how many mutations recovery makes; then each is cut.
          for (let j = 0, total = 0; j <= total; j++) {
            const fs = new SimFileSystem({ prng: new Prng(k * 31 + j) });
            fs.haltAfter(k);
            const outcome = await runWorkload(fs, walOptions);
            fs.crash(tear);
            const before = fs.mutationCount;
            if (j === 0) {
              const probe = await Wal.open(fs, dir, walOptions);
              await probe.wal.close();
              total = fs.mutationCount - before;
              recoveryMutations += total;
              continue;
            }
            fs.haltAfter(before + j);
            try {
              await (await Wal.open(fs, dir, walOptions)).wal.close();
            } catch (error) {
              if (!(error instanceof FsError)) throw error;
            }
            fs.crash('prng', 'prng');
            const label = `boundary ${k}, last write ${tearName}, recovery cut after ${j} of ${total}`;
            await recoverAndCheck(fs, outcome, label, walOptions);
          }
        }
      }
      expect(recoveryMutations).toBeGreaterThan(0);
    });

    it('recovers after crashes at random boundaries with PRNG-chosen tears', async () => {
      const boundaries = (await fullRun(1, walOptions)).fs.mutationCount;
      const pick = new Prng(2024);
      for (let seed = 1; seed <= 60; seed++) {
        const k = pick.int(boundaries + 1);
        const fs = new SimFileSystem({ prng: new Prng(seed) });
        fs.haltAfter(k);
        const outcome = await runWorkload(fs, walOptions);
        fs.crash('prng');
        await recoverAndCheck(fs, outcome, `seed ${seed}, boundary ${k}`, walOptions);
      }
    });
  });
}

/**
 * The script with 400-byte payloads, so a batch spans several sectors, over
 * prepared segments of 4 KiB: a crash may keep any sectors of the batch in
 * flight and leave the others zero, as a disk writing over space the file
 * already has may.
 */
const wideScript: Step[] = script.map((step) =>
  step.kind === 'compact'
    ? step
    : {
        kind: 'append',
        appends: step.appends.map((append) => ({
          hardState: append.hardState,
          entries: append.entries.map((e) => ({
            ...e,
            data: Buffer.alloc(400, `${e.index}/${e.term};`),
          })),
        })),
      },
);
const widePreallocated: WalOptions = { ...preallocated, segmentBytesMax: 4096 };
const sectorTears: NamedTears = [
  ['its second sector lost', { sectors: (i) => i !== 1 }],
  ['every other sector lost', { sectors: (i) => i % 2 === 0 }],
  ['only its last sector kept', { sectors: (i, sectors) => i === sectors - 1 }],
  ['only its first sector lost', { sectors: (i) => i !== 0 }],
];

describe('WAL crash consistency over SimFileSystem, prepared segments torn by sectors', () => {
  const run = (fs: SimFileSystem) => runWorkload(fs, widePreallocated, wideScript);
  const check = (fs: SimFileSystem, outcome: Outcome, label: string) =>
    recoverAndCheck(fs, outcome, label, widePreallocated);

  it('writes batches of several sectors over prepared segments', async () => {
    const fs = new SimFileSystem({ prng: new Prng(1) });
    const outcome = await run(fs);
    expect(outcome.acked).toBe(outcome.issued.length);
    const writes = fs.operations.filter((o) => o.op === 'write');
    expect(writes.length).toBeGreaterThan(10);
    expect(fs.operations.filter((o) => o.op === 'rename').length).toBeGreaterThan(1);
    await outcome.wal?.close();
  });

  it('recovers every acknowledged entry after a crash at every boundary, whatever sectors it kept', async () => {
    const reference = new SimFileSystem({ prng: new Prng(1) });
    await (await run(reference)).wal?.close();
    const { runs } = await crashAtEveryOperation({
      reference: reference.operations,
      tears: sectorTears,
      seed: (k) => k,
      run,
      check,
    });
    expect(runs).toBeGreaterThan(reference.mutationCount);
  });

  it('recovers after crashes at random boundaries keeping PRNG-chosen sectors', async () => {
    const reference = new SimFileSystem({ prng: new Prng(1) });
    await (await run(reference)).wal?.close();
    const pick = new Prng(4242);
    for (let seed = 1; seed <= 60; seed++) {
      const k = pick.int(reference.mutationCount + 1);
      const fs = new SimFileSystem({ prng: new Prng(seed) });
      fs.haltAfter(k);
      const outcome = await run(fs);
      fs.crash({ sectors: 'prng' });
      await check(fs, outcome, `seed ${seed}, boundary ${k}`);
    }
  });
});

describe('WAL faults over SimFileSystem', () => {
  it('refuses to start on sticky corruption in the middle of an early segment', async () => {
    const { fs, outcome } = await fullRun(3);
    await outcome.wal?.close();
    const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.wal'));
    expect(names.length).toBeGreaterThan(1);
    const early = join(dir, names[0] ?? '');
    const sizeBytes = fs.contentOf(early).length;
    const corruptAt = Math.floor(sizeBytes / 2);
    fs.corrupt(early, corruptAt, 1);
    fs.crash('none');
    const error = await Wal.open(fs, dir, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WalCorruptionError);
    const corruption = error as WalCorruptionError;
    expect(corruption.file).toBe(early);
    expect(corruption.offsetBytes).toBeGreaterThan(0);
    expect(corruption.offsetBytes).toBeLessThanOrEqual(corruptAt);
    expect(corruption.message).toContain(early);
    expect(corruption.message).toContain(`offset ${corruption.offsetBytes}`);
    // Sticky: it does not go away on a second attempt.
    await expect(Wal.open(fs, dir, options)).rejects.toBeInstanceOf(WalCorruptionError);
  });

  it('refuses to start on corruption in the middle of the last segment', async () => {
    const { fs, outcome } = await fullRun(4);
    await outcome.wal?.close();
    const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.wal'));
    const last = join(dir, names[names.length - 1] ?? '');
    // The second record (after the header) is followed by valid ones.
    const content = fs.contentOf(last);
    fs.corrupt(last, Math.min(content.length - 1, 40), 1);
    fs.crash('none');
    const error = await Wal.open(fs, dir, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WalCorruptionError);
    expect((error as WalCorruptionError).file).toBe(last);
  });

  it('fails the Wal when a datasync fails with EIO, and recovers what was acknowledged', async () => {
    const fs = new SimFileSystem({ prng: new Prng(5) });
    const fatal: WalFailedError[] = [];
    const { wal } = await Wal.open(fs, dir, { ...options, onFatal: (e) => fatal.push(e) });
    await wal.append(entries(1, 2, 1), hardState(1, 0));
    fs.failNext('datasync', 'EIO');
    const error = await wal.append(entries(3, 4, 1), hardState(1, 2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WalFailedError);
    expect((error as WalFailedError).cause).toMatchObject({ code: 'EIO', operation: 'datasync' });
    expect(wal.failed).toBe(error);
    expect(fatal).toEqual([error]);
    // Never retried: everything after fails at once, and nothing more is written.
    const written = fs.mutationCount;
    await expect(wal.append(entries(3, 3, 1), null)).rejects.toBe(error);
    await expect(wal.compact(logIndex(1))).rejects.toBe(error);
    expect(fs.mutationCount).toBe(written);
    await wal.close();
    fs.crash('all');
    const recovered = await Wal.open(fs, dir, options);
    expect(recovered.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(recovered.hardState).toEqual(hardState(1, 0));
    await recovered.wal.close();
  });

  it('fails the Wal when a write fails with ENOSPC, without damaging the log', async () => {
    const fs = new SimFileSystem({ prng: new Prng(6) });
    const { wal } = await Wal.open(fs, dir, options);
    await wal.append(entries(1, 3, 1), hardState(1, 1));
    fs.failNext('write', 'ENOSPC');
    const error = await wal.append(entries(4, 4, 1), null).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WalFailedError);
    expect((error as WalFailedError).cause).toMatchObject({ code: 'ENOSPC', operation: 'write' });
    expect(wal.failed).toBe(error);
    await wal.close();
    fs.crash('prng');
    const recovered = await Wal.open(fs, dir, options);
    expect(recovered.entries.map((e) => e.index)).toEqual([1, 2, 3]);
    await recovered.wal.close();
  });

  it('fails the Wal when the directory sync of a new segment fails', async () => {
    const fs = new SimFileSystem({ prng: new Prng(7) });
    const { wal } = await Wal.open(fs, dir, options);
    await wal.append(entries(1, 8, 1), null); // fills the first segment
    fs.failNext('syncDir', 'EIO');
    await expect(wal.append(entries(9, 9, 1), null)).rejects.toBeInstanceOf(WalFailedError);
    await wal.close();
    fs.crash('all');
    const recovered = await Wal.open(fs, dir, options);
    expect(recovered.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await recovered.wal.close();
  });
});
