import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Entry, HardState } from '../raft/types.js';
import { logIndex, nodeId, term } from '../raft/types.js';
import { DelegatingFileSystem, overrideFile } from './delegating-fs.js';
import { FsError, type FsFile, type OpenMode, type OpenOptions } from './fs.js';
import { NodeFileSystem } from './node-fs.js';
import { encodeRecords, recordBytes } from './record.js';
import {
  preparedSegmentName,
  Wal,
  WalCorruptionError,
  WalFailedError,
  type WalOptions,
} from './wal.js';

const nodeFs = new NodeFileSystem();
let dir = '';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tandem-wal-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function entry(index: number, entryTerm: number, payloadBytes = 20): Entry {
  const data = Buffer.alloc(payloadBytes, `${index}/${entryTerm};`);
  return { kind: 'normal', index: logIndex(index), term: term(entryTerm), data };
}

function entries(from: number, to: number, entryTerm: number, payloadBytes = 20): Entry[] {
  const list: Entry[] = [];
  for (let i = from; i <= to; i++) list.push(entry(i, entryTerm, payloadBytes));
  return list;
}

function hardState(hsTerm: number, commit: number): HardState {
  return { term: term(hsTerm), vote: nodeId('n1'), commit: logIndex(commit) };
}

/** Entries as plain values, so a Buffer and a Uint8Array with equal bytes compare equal. */
function plain(list: readonly Entry[]): unknown[] {
  return list.map((e) =>
    e.kind === 'normal' ? { ...e, data: Buffer.from(e.data).toString('hex') } : e,
  );
}

async function segmentFiles(): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.wal')).sort();
}

async function lastSegmentPath(): Promise<string> {
  const names = await segmentFiles();
  return join(dir, names[names.length - 1] ?? '');
}

async function reopen(options: WalOptions = {}) {
  const result = await Wal.open(nodeFs, dir, options);
  await result.wal.close();
  return result;
}

async function corruptionOf(promise: Promise<unknown>): Promise<WalCorruptionError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof WalCorruptionError) return error;
    throw error;
  }
  throw new Error('expected a WalCorruptionError');
}

/** Delegates to another FileSystem, letting a test watch or break writes and syncs. */
class WrappingFs extends DelegatingFileSystem {
  datasyncCount = 0;
  /** Directory operations in call order. */
  readonly events: ('unlink' | 'syncDir')[] = [];
  failDatasync = false;
  failWrite = false;

  override unlink(path: string): Promise<void> {
    this.events.push('unlink');
    return super.unlink(path);
  }
  override syncDir(path: string): Promise<void> {
    this.events.push('syncDir');
    return super.syncDir(path);
  }
  protected override wrapFile(file: FsFile): FsFile {
    return overrideFile(file, {
      write: (positionBytes, data) => {
        if (this.failWrite) {
          const message = `write of ${file.path} failed: ENOSPC`;
          return Promise.reject(new FsError('ENOSPC', 'write', file.path, message));
        }
        return file.write(positionBytes, data);
      },
      datasync: async () => {
        this.datasyncCount++;
        if (this.failDatasync) {
          throw new FsError('EIO', 'datasync', file.path, `datasync of ${file.path} failed: EIO`);
        }
        await file.datasync();
      },
    });
  }
}

/** Records the size of every durable write (one per WAL batch). */
class WriteSizesFs extends DelegatingFileSystem {
  readonly sizes: number[] = [];
  protected override wrapFile(file: FsFile): FsFile {
    return overrideFile(file, {
      writeDurable: (positionBytes, data) => {
        this.sizes.push(data.length);
        return file.writeDurable(positionBytes, data);
      },
    });
  }
}

describe('Wal append and recovery', () => {
  it('writes an append bigger than a batch in parts of at most a batch, one big entry alone', async () => {
    const fs = new WriteSizesFs(nodeFs);
    const batchBytesMax = 1024;
    const { wal } = await Wal.open(fs, dir, { batchBytesMax });
    fs.sizes.length = 0;
    const list = [...entries(1, 20, 1, 100), entry(21, 1, 3000), ...entries(22, 30, 1, 100)];
    await wal.append(list, hardState(1, 25));
    const big = recordBytes({ type: 'entry', entry: entry(21, 1, 3000) });
    expect(fs.sizes.length).toBeGreaterThan(3);
    expect(fs.sizes.filter((size) => size > batchBytesMax)).toEqual([big]);
    await wal.close();
    const recovered = await reopen({ batchBytesMax });
    expect(plain(recovered.entries)).toEqual(plain(list));
    expect(recovered.hardState).toEqual(hardState(1, 25));
  });

  it('round-trips entries and the last hard state through a reopen', async () => {
    const { wal, entries: none, hardState: noState } = await Wal.open(nodeFs, dir);
    expect(none).toEqual([]);
    expect(noState).toBeNull();
    await wal.append(entries(1, 3, 1), hardState(1, 0));
    await wal.append(entries(4, 6, 2), hardState(2, 3));
    await wal.append([], hardState(2, 6));
    await wal.close();
    const recovered = await reopen();
    expect(plain(recovered.entries)).toEqual(plain(entries(1, 3, 1).concat(entries(4, 6, 2))));
    expect(recovered.hardState).toEqual(hardState(2, 6));
    expect(recovered.tornTails).toEqual([]);
    expect(recovered.wal.lastIndex).toBe(6);
  });

  it('group-commits concurrent appends: fewer datasyncs, resolved in call order', async () => {
    const fs = new WrappingFs(nodeFs);
    const { wal } = await Wal.open(fs, dir);
    const syncsBefore = fs.datasyncCount;
    const appendCount = 200;
    const resolved: number[] = [];
    const appends: Promise<void>[] = [];
    for (let i = 1; i <= appendCount; i++) {
      appends.push(wal.append([entry(i, 1)], null).then(() => void resolved.push(i)));
      // Spread the calls over several turns so batches form behind a sync in flight.
      if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(appends);
    const syncs = fs.datasyncCount - syncsBefore;
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThan(appendCount);
    expect(resolved).toEqual(entries(1, appendCount, 1).map((e) => e.index));
    await wal.close();
    expect((await reopen()).entries).toHaveLength(appendCount);
  });

  it('bounds a batch: appends beyond batchBytesMax wait for the next one', async () => {
    const fs = new WrappingFs(nodeFs);
    const perAppendBytes = recordBytes({ type: 'entry', entry: entry(1, 1, 100) });
    const { wal } = await Wal.open(fs, dir, { batchBytesMax: perAppendBytes * 2 });
    const syncsBefore = fs.datasyncCount;
    await Promise.all(entries(1, 10, 1, 100).map((e) => wal.append([e], null)));
    // Two appends per batch at most: at least five batches.
    expect(fs.datasyncCount - syncsBefore).toBeGreaterThanOrEqual(5);
    await wal.close();
    expect((await reopen()).entries).toHaveLength(10);
  });

  it('lets a later append overwrite a suffix, and recovery shows the new suffix', async () => {
    const { wal } = await Wal.open(nodeFs, dir);
    await wal.append(entries(1, 10, 1), null);
    const overwrite = wal.append(entries(6, 8, 2), hardState(2, 5));
    expect(wal.lastIndex).toBe(8);
    await overwrite;
    await wal.close();
    const recovered = await reopen();
    expect(plain(recovered.entries)).toEqual(plain(entries(1, 5, 1).concat(entries(6, 8, 2))));
    expect(recovered.wal.lastIndex).toBe(8);
  });

  it('rotates across segments and recovers them all', async () => {
    const { wal } = await Wal.open(nodeFs, dir, { segmentBytesMax: 1024 });
    await wal.append([], hardState(1, 0));
    for (let i = 1; i <= 60; i++) await wal.append([entry(i, 1, 100)], null);
    expect(wal.segmentCount).toBeGreaterThan(4);
    await wal.append(entries(50, 52, 2, 100), hardState(2, 49)); // an overwrite after rotation
    await wal.close();
    expect((await segmentFiles()).length).toBeGreaterThan(4);
    const recovered = await reopen({ segmentBytesMax: 1024 });
    expect(plain(recovered.entries)).toEqual(
      plain(entries(1, 49, 1, 100).concat(entries(50, 52, 2, 100))),
    );
    expect(recovered.hardState).toEqual(hardState(2, 49));
  });
});

describe('Wal recovery of damage', () => {
  async function writeThreeBatches(): Promise<{ lastRecordAt: number; sizeBytes: number }> {
    const { wal } = await Wal.open(nodeFs, dir);
    await wal.append(entries(1, 3, 1), hardState(1, 0));
    await wal.append(entries(4, 5, 1), null);
    await wal.append([entry(6, 1)], null);
    await wal.close();
    const sizeBytes = (await stat(await lastSegmentPath())).size;
    const lastRecordAt = sizeBytes - recordBytes({ type: 'entry', entry: entry(6, 1) });
    return { lastRecordAt, sizeBytes };
  }

  it('cuts a torn last record at every byte offset, keeping everything before it', async () => {
    const { lastRecordAt, sizeBytes } = await writeThreeBatches();
    const path = await lastSegmentPath();
    const original = await readFile(path);
    expect(original.length).toBe(sizeBytes);
    for (let cut = lastRecordAt + 1; cut < sizeBytes; cut++) {
      await writeFile(path, original.subarray(0, cut));
      const recovered = await reopen();
      expect(recovered.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5]);
      expect(recovered.tornTails).toHaveLength(1);
      expect(recovered.tornTails[0]?.offsetBytes).toBe(lastRecordAt);
      expect(recovered.tornTails[0]?.cutBytes).toBe(cut - lastRecordAt);
      expect((await stat(path)).size).toBe(lastRecordAt);
    }
  });

  it('cuts a damaged last record followed only by zeros', async () => {
    const { lastRecordAt } = await writeThreeBatches();
    const path = await lastSegmentPath();
    const damaged = Buffer.concat([await readFile(path), Buffer.alloc(4096)]);
    damaged[lastRecordAt + 40] = (damaged[lastRecordAt + 40] ?? 0) ^ 0x01;
    await writeFile(path, damaged);
    const recovered = await reopen();
    expect(recovered.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5]);
    expect(recovered.tornTails[0]?.reason).toMatch(/checksum/);
    expect((await stat(path)).size).toBe(lastRecordAt);
  });

  it('refuses to start on a flipped bit in an early record, naming file and offset', async () => {
    const { wal } = await Wal.open(nodeFs, dir);
    for (let i = 1; i <= 10; i++) await wal.append([entry(i, 1)], null);
    await wal.close();
    const path = await lastSegmentPath();
    const bytes = await readFile(path);
    const headerBytes = recordBytes({
      type: 'segmentHeader',
      segment: { segmentId: 1, firstIndex: logIndex(1), restart: false },
    });
    const recordAt = headerBytes + recordBytes({ type: 'entry', entry: entry(1, 1) });
    bytes[recordAt + 35] = (bytes[recordAt + 35] ?? 0) ^ 0x10; // entry 2's payload
    await writeFile(path, bytes);
    const error = await corruptionOf(Wal.open(nodeFs, dir));
    expect(error.file).toBe(path);
    expect(error.offsetBytes).toBe(recordAt);
    expect(error.message).toContain(path);
    expect(error.message).toContain(`byte offset ${recordAt}`);
    expect(error.message).toContain('rejoin the cluster as a new member');
    expect((await stat(path)).size).toBe(bytes.length); // nothing cut
  });

  it('refuses to start when the damaged last record is followed by a valid one', async () => {
    const { lastRecordAt } = await writeThreeBatches();
    const path = await lastSegmentPath();
    const bytes = await readFile(path);
    const previousAt = lastRecordAt - recordBytes({ type: 'entry', entry: entry(5, 1) });
    bytes[previousAt + 3] = (bytes[previousAt + 3] ?? 0) ^ 0x80; // entry 5's header checksum
    await writeFile(path, bytes);
    const error = await corruptionOf(Wal.open(nodeFs, dir));
    expect(error.offsetBytes).toBe(previousAt);
    expect(error.reason).toMatch(/a valid record follows/);
    expect((await stat(path)).size).toBe(bytes.length);
  });

  it('refuses to start on damage in a segment that is not the last', async () => {
    const { wal } = await Wal.open(nodeFs, dir, { segmentBytesMax: 512 });
    for (let i = 1; i <= 20; i++) await wal.append([entry(i, 1, 100)], null);
    await wal.close();
    const first = join(dir, (await segmentFiles())[0] ?? '');
    const bytes = await readFile(first);
    await writeFile(first, bytes.subarray(0, bytes.length - 10)); // a "torn" record mid-log
    const error = await corruptionOf(Wal.open(nodeFs, dir));
    expect(error.file).toBe(first);
    expect(error.reason).toMatch(/not the last segment/);
  });

  it('removes a last segment whose creation was torn', async () => {
    const { wal } = await Wal.open(nodeFs, dir);
    await wal.append(entries(1, 2, 1), null);
    await wal.close();
    const torn = join(dir, '0000000000000002-0000000000000003.wal');
    await writeFile(torn, Buffer.alloc(10));
    const recovered = await reopen();
    expect(recovered.entries).toHaveLength(2);
    expect(recovered.tornTails[0]?.removedFile).toBe(true);
    expect(await segmentFiles()).toHaveLength(1);
  });

  it('refuses a segment whose name disagrees with its header', async () => {
    const { wal } = await Wal.open(nodeFs, dir);
    await wal.append(entries(1, 2, 1), null);
    await wal.close();
    const [name] = await segmentFiles();
    const renamed = join(dir, '0000000000000001-0000000000000005.wal');
    await nodeFs.rename(join(dir, name ?? ''), renamed);
    const error = await corruptionOf(Wal.open(nodeFs, dir));
    expect(error.reason).toMatch(/file name disagrees/);
  });
});

describe('Wal with preallocated segments', () => {
  const options: WalOptions = { preallocate: true, prepareAfterBytes: 0, segmentBytesMax: 4096 };
  const prepared = (): string => join(dir, preparedSegmentName);

  /** Waits (bounded) until `wal` has its next segment, of `bytes`, prepared. */
  async function waitPrepared(wal: Wal, bytes = options.segmentBytesMax): Promise<void> {
    for (let i = 0; i < 500 && !wal.nextSegmentPrepared; i++) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(wal.nextSegmentPrepared).toBe(true);
    expect((await stat(prepared())).size).toBe(bytes);
  }

  it('moves to a prepared segment, writes over its zeros, and recovers it without a torn tail', async () => {
    const { wal } = await Wal.open(nodeFs, dir, options);
    await wal.append(entries(1, 2, 1), hardState(1, 0));
    await waitPrepared(wal);
    // The first segment was not prepared: the next batch moves to the prepared one.
    await wal.append(entries(3, 4, 1), hardState(1, 2));
    expect(wal.counters).toMatchObject({ preparedRotations: 1, plainRotations: 0 });
    await wal.close();
    const names = await segmentFiles();
    expect(names).toHaveLength(2);
    const last = join(dir, names[1] ?? '');
    expect((await stat(last)).size).toBe(4096);
    const recovered = await reopen(options);
    expect(plain(recovered.entries)).toEqual(plain(entries(1, 4, 1)));
    expect(recovered.hardState).toEqual(hardState(1, 2));
    expect(recovered.tornTails).toEqual([]);
    expect((await stat(last)).size).toBe(4096); // the zeros stay for the next appends
  });

  it('keeps appending over the zeros after a reopen, across rotations', async () => {
    let expected: Entry[] = [];
    let next = 1;
    for (let round = 0; round < 3; round++) {
      const { wal } = await Wal.open(nodeFs, dir, options);
      for (let batch = 0; batch < 12; batch++) {
        const list = entries(next, next + 2, 1, 100);
        await wal.append(list, hardState(1, next));
        expected = [...expected, ...list];
        next += 3;
        if (batch === 0) await waitPrepared(wal);
      }
      await wal.close();
      const recovered = await reopen(options);
      expect(plain(recovered.entries)).toEqual(plain(expected));
      expect(recovered.tornTails).toEqual([]);
    }
    const sizes = await Promise.all(
      (await segmentFiles()).map(async (n) => (await stat(join(dir, n))).size),
    );
    expect(sizes.filter((size) => size >= 4096).length).toBeGreaterThan(3);
  });

  it('removes a segment left half prepared by a stop, and prepares it again', async () => {
    await writeFile(prepared(), Buffer.alloc(100, 7));
    const { wal } = await Wal.open(nodeFs, dir, options);
    expect(await nodeFs.exists(prepared())).toBe(false);
    await wal.append(entries(1, 1, 1), null);
    await waitPrepared(wal);
    expect((await readFile(prepared())).every((byte) => byte === 0)).toBe(true);
    await wal.close();
  });

  it('prepares nothing while mayPrepare says no, and rotates the plain way', async () => {
    let asked = 0;
    const mayPrepare = async () => {
      asked++;
      return false;
    };
    const { wal } = await Wal.open(nodeFs, dir, { ...options, mayPrepare });
    for (let i = 1; i <= 20; i++) await wal.append([entry(i, 1, 300)], null);
    await wal.close();
    expect(asked).toBeGreaterThan(1); // once at the start, again at each rotation
    expect(wal.counters.preparedRotations).toBe(0);
    expect(wal.counters.plainRotations).toBeGreaterThan(0);
    expect(await nodeFs.exists(prepared())).toBe(false);
    const recovered = await reopen(options);
    expect(recovered.entries).toHaveLength(20);
    expect(recovered.tornTails).toEqual([]);
  });

  it('keeps a segment that became ready while a rotation created a plain one, and takes it next', async () => {
    let wal: Wal | undefined;
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let held = false;
    /** Lets the preparation run and finish while the first rotation creates its segment. */
    class HoldSegmentCreation extends DelegatingFileSystem {
      override async open(path: string, mode: OpenMode, openOptions?: OpenOptions) {
        if (wal !== undefined && !held && mode === 'create' && path.endsWith('.wal')) {
          held = true;
          release();
          for (let i = 0; i < 500 && !wal.nextSegmentPrepared; i++) {
            await new Promise((resolve) => setTimeout(resolve, 2));
          }
          expect(wal.nextSegmentPrepared).toBe(true);
        }
        return super.open(path, mode, openOptions);
      }
    }
    const mayPrepare = async () => {
      await gate;
      return true;
    };
    ({ wal } = await Wal.open(new HoldSegmentCreation(nodeFs), dir, { ...options, mayPrepare }));
    let index = 1;
    while (wal.counters.plainRotations === 0 && index <= 100) {
      await wal.append([entry(index, 1, 300)], null);
      index++;
    }
    expect(held).toBe(true);
    await wal.append([entry(index, 1, 300)], null);
    expect(wal.counters).toMatchObject({ plainRotations: 1, preparedRotations: 1 });
    await wal.close();
    expect(plain((await reopen(options)).entries)).toEqual(plain(entries(1, index, 1, 300)));
  });

  it('prepares no segment while batches average over prepareBatchBytesMax, and does once they shrink', async () => {
    const { wal } = await Wal.open(nodeFs, dir, { ...options, prepareBatchBytesMax: 200 });
    let index = 1;
    for (; index <= 40; index++) await wal.append([entry(index, 1, 300)], null);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(wal.counters.plainRotations).toBeGreaterThan(2);
    expect(wal.counters.preparedRotations).toBe(0);
    expect(await nodeFs.exists(prepared())).toBe(false);
    // Batches of one 20-byte entry (a 52-byte record) bring the average under 200 within
    // about 20 of them (it moves 1/32 of the way each batch).
    let small = 0;
    while (small < 60 && !wal.nextSegmentPrepared) {
      await wal.append([entry(index, 1)], null);
      index++;
      small++;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(small).toBeGreaterThan(10);
    await waitPrepared(wal);
    await wal.append([entry(index, 1)], null);
    expect(wal.counters.preparedRotations).toBe(1);
    await wal.close();
    const recovered = await reopen(options);
    expect(recovered.entries).toHaveLength(index);
    expect(recovered.tornTails).toEqual([]);
  });

  it('prepares nothing until prepareAfterBytes were written', async () => {
    const { wal } = await Wal.open(nodeFs, dir, { ...options, prepareAfterBytes: 1000 });
    await wal.append(entries(1, 5, 1), null); // 260 bytes
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await nodeFs.exists(prepared())).toBe(false);
    await wal.append(entries(6, 20, 1, 100), null);
    await waitPrepared(wal);
    await wal.close();
  });

  it('accepts zeros after the last record of a segment that is not the last', async () => {
    const { wal } = await Wal.open(nodeFs, dir, { segmentBytesMax: 512 });
    for (let i = 1; i <= 20; i++) await wal.append([entry(i, 1, 100)], null);
    await wal.close();
    const first = join(dir, (await segmentFiles())[0] ?? '');
    await writeFile(first, Buffer.concat([await readFile(first), Buffer.alloc(3000)]));
    const recovered = await reopen();
    expect(recovered.entries.map((e) => e.index)).toEqual(entries(1, 20, 1).map((e) => e.index));
  });

  /**
   * Writes entries 1-2, then 3-4 into a prepared 64 KiB segment, then 5-24
   * (300-byte payloads) as one batch; returns the last segment's path and
   * the end of its records.
   */
  async function threeBatchesOverZeros(): Promise<{ path: string; end: number }> {
    const big = { ...options, segmentBytesMax: 64 * 1024 };
    const { wal } = await Wal.open(nodeFs, dir, big);
    await wal.append(entries(1, 2, 1), hardState(1, 0));
    await waitPrepared(wal, big.segmentBytesMax);
    await wal.append(entries(3, 4, 1), hardState(1, 2));
    await wal.append(entries(5, 24, 1, 300), hardState(1, 4));
    await wal.close();
    const path = await lastSegmentPath();
    const bytes = await readFile(path);
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--;
    return { path, end };
  }

  it('cuts a write over zeros that a crash tore in the middle, though records after the hole verify', async () => {
    const { path, end } = await threeBatchesOverZeros();
    // The crash kept the batch's first and last sectors but not one between:
    // that sector still holds the zeros it was prepared with.
    const bytes = await readFile(path);
    const hole = Math.floor((end - 4000) / 512) * 512;
    bytes.fill(0, hole, hole + 512);
    await writeFile(path, bytes);
    const recovered = await reopen(options);
    const kept = recovered.entries.map((e) => e.index);
    expect(kept.slice(0, 4)).toEqual([1, 2, 3, 4]);
    expect(kept.length).toBeGreaterThan(4);
    expect(kept.length).toBeLessThan(24);
    expect(recovered.tornTails).toHaveLength(1);
    expect(recovered.tornTails[0]?.reason).toMatch(/unwritten sector/);
    // Reopened once more, the log is what the first recovery left, and takes appends.
    const again = await Wal.open(nodeFs, dir, options);
    expect(again.entries.map((e) => e.index)).toEqual(kept);
    expect(again.tornTails).toEqual([]);
    const next = (kept.at(-1) ?? 0) + 1;
    await again.wal.append([entry(next, 1)], null);
    await again.wal.close();
  });

  it('still refuses damage without an unwritten sector, or reaching past one write', async () => {
    const { path, end } = await threeBatchesOverZeros();
    const original = await readFile(path);
    // Bits flipped, nothing zeroed: damage, not a torn write.
    const flipped = Buffer.from(original);
    const at = end - 4000;
    for (let i = at; i < at + 512; i++) flipped[i] = (flipped[i] ?? 0) ^ 0x5a;
    await writeFile(path, flipped);
    expect((await corruptionOf(Wal.open(nodeFs, dir, options))).reason).toMatch(
      /a valid record follows/,
    );
    // A hole, but with verified records further on than one batch can reach.
    const holed = Buffer.from(original);
    const hole = Math.floor((end - 4000) / 512) * 512;
    holed.fill(0, hole, hole + 512);
    await writeFile(path, holed);
    const error = await corruptionOf(Wal.open(nodeFs, dir, { ...options, batchBytesMax: 1024 }));
    expect(error.reason).toMatch(/a valid record follows/);
  });

  it('still refuses damage followed by a valid record when zeros follow both', async () => {
    const { wal } = await Wal.open(nodeFs, dir);
    await wal.append(entries(1, 3, 1), null);
    await wal.close();
    const path = await lastSegmentPath();
    const bytes = Buffer.concat([await readFile(path), Buffer.alloc(8192)]);
    const secondAt =
      recordBytes({
        type: 'segmentHeader',
        segment: { segmentId: 1, firstIndex: logIndex(1), restart: false },
      }) + recordBytes({ type: 'entry', entry: entry(1, 1) });
    bytes[secondAt + 3] = (bytes[secondAt + 3] ?? 0) ^ 0x80;
    await writeFile(path, bytes);
    const error = await corruptionOf(Wal.open(nodeFs, dir));
    expect(error.offsetBytes).toBe(secondAt);
    expect(error.reason).toMatch(/a valid record follows/);
  });
});

describe('Wal compaction', () => {
  it('makes each deletion durable before the next, so no file system can leave a gap', async () => {
    const fs = new WrappingFs(nodeFs);
    const { wal } = await Wal.open(fs, dir, { segmentBytesMax: 600 });
    for (let i = 1; i <= 40; i++) await wal.append([entry(i, 3, 100)], null);
    fs.events.length = 0;
    const deleted = await wal.compact(logIndex(1000));
    expect(deleted).toBeGreaterThan(2);
    expect(fs.events).toEqual(Array.from({ length: deleted }, () => ['unlink', 'syncDir']).flat());
    await wal.close();
  });

  it('deletes only segments whose entries a snapshot covers, keeping the hard state', async () => {
    const { wal } = await Wal.open(nodeFs, dir, { segmentBytesMax: 600 });
    await wal.append([], hardState(3, 0));
    for (let i = 1; i <= 40; i++) await wal.append([entry(i, 3, 100)], null);
    const before = await segmentFiles();
    expect(before.length).toBeGreaterThan(4);
    // Segment i's last entry is one below the next segment's first index.
    const firstIndexes = before.map((name) => Number.parseInt(name.slice(17, 33), 16));
    const through = (firstIndexes[3] ?? 0) - 1;
    expect(await wal.compact(logIndex(through))).toBe(3);
    expect(await segmentFiles()).toEqual(before.slice(3));
    expect(await wal.compact(logIndex(1000))).toBe(before.length - 4);
    expect(wal.segmentCount).toBe(1); // never the last one
    await wal.close();
    const recovered = await reopen();
    expect(recovered.hardState).toEqual(hardState(3, 0));
    const last = firstIndexes[firstIndexes.length - 1] ?? 0;
    expect(recovered.entries.map((e) => e.index)).toEqual(entries(last, 40, 3).map((e) => e.index));
  });
});

describe('Wal reset', () => {
  it('restarts the log after a snapshot index, voiding and deleting the older segments', async () => {
    const { wal } = await Wal.open(nodeFs, dir, { segmentBytesMax: 200 });
    for (let i = 1; i <= 8; i += 2) await wal.append(entries(i, i + 1, 1), hardState(1, i));
    expect((await segmentFiles()).length).toBeGreaterThan(1);
    await wal.reset(logIndex(30));
    expect(await segmentFiles()).toHaveLength(1);
    expect(() => wal.append(entries(30, 30, 2), null)).toThrow(/may start at 31\.\.31/);
    await wal.append(entries(31, 32, 2), hardState(2, 31));
    await wal.close();
    const recovered = await reopen();
    expect(plain(recovered.entries)).toEqual(plain(entries(31, 32, 2)));
    expect(recovered.hardState).toEqual(hardState(2, 31));
    expect(recovered.floorIndex).toBe(31);
  });

  it('keeps the vote across a reset with no append after it', async () => {
    const { wal } = await Wal.open(nodeFs, dir);
    await wal.append(entries(1, 2, 1), hardState(4, 2));
    await wal.reset(logIndex(10));
    await wal.close();
    const recovered = await reopen();
    expect(recovered.entries).toEqual([]);
    expect(recovered.lastIndex).toBe(10);
    expect(recovered.hardState).toEqual(hardState(4, 2));
  });

  it('finishes deleting voided segments at open when a crash cut the reset short', async () => {
    const { wal } = await Wal.open(nodeFs, dir, { segmentBytesMax: 200 });
    for (let i = 1; i <= 8; i += 2) await wal.append(entries(i, i + 1, 1), hardState(1, i));
    const before = await segmentFiles();
    expect(before.length).toBeGreaterThan(1);
    const contents = await Promise.all(before.map((name) => readFile(join(dir, name))));
    await wal.reset(logIndex(30));
    await wal.append(entries(31, 31, 2), null);
    await wal.close();
    // Put the voided segments back, as if the crash came before their deletion.
    for (const [i, name] of before.entries()) await writeFile(join(dir, name), contents[i] ?? '');
    expect((await segmentFiles()).length).toBe(before.length + 1);
    const recovered = await reopen();
    expect(plain(recovered.entries)).toEqual(plain(entries(31, 31, 2)));
    expect(await segmentFiles()).toHaveLength(1);
  });

  it('keeps the hard state when a crash tore the restart segment after its header', async () => {
    const { wal } = await Wal.open(nodeFs, dir);
    await wal.append(entries(1, 2, 1), hardState(29, 2));
    await wal.close();
    // The reset's segment as a torn creation left it: the header (restart
    // set) whole, its copy of the hard state cut off.
    const segment = { segmentId: 2, firstIndex: logIndex(296), restart: true };
    const header = encodeRecords([{ type: 'segmentHeader', segment }]);
    const name = '0000000000000002-0000000000000128.wal';
    await writeFile(join(dir, name), Buffer.concat([header, Buffer.alloc(10, 7)]));
    const first = await reopen();
    expect(first.hardState).toEqual(hardState(29, 2));
    expect(await segmentFiles()).toEqual([name]); // the voided segment is gone...
    const second = await reopen();
    expect(second.hardState).toEqual(hardState(29, 2)); // ...and the vote is not
    expect(second.lastIndex).toBe(295);
  });

  it('keeps the hard state when a rotated segment was torn after its header and compaction follows', async () => {
    const { wal } = await Wal.open(nodeFs, dir);
    await wal.append(entries(1, 2, 1), hardState(7, 2));
    await wal.close();
    const segment = { segmentId: 2, firstIndex: logIndex(3), restart: false };
    const header = encodeRecords([{ type: 'segmentHeader', segment }]);
    await writeFile(join(dir, '0000000000000002-0000000000000003.wal'), header);
    const opened = await Wal.open(nodeFs, dir);
    expect(await opened.wal.compact(logIndex(2))).toBe(1);
    await opened.wal.close();
    const recovered = await reopen();
    expect(recovered.hardState).toEqual(hardState(7, 2));
    expect(recovered.lastIndex).toBe(2);
  });

  it('runs a reset and an overlapping compaction one after the other', async () => {
    const { wal } = await Wal.open(nodeFs, dir, { segmentBytesMax: 200 });
    for (let i = 1; i <= 8; i += 2) await wal.append(entries(i, i + 1, 1), hardState(1, i));
    expect((await segmentFiles()).length).toBeGreaterThan(2);
    const reset = wal.reset(logIndex(30));
    const compacted = wal.compact(logIndex(8));
    await reset;
    expect(await compacted).toBe(0); // the reset deleted every segment before its own
    expect(wal.failed).toBeNull();
    expect(await segmentFiles()).toHaveLength(1);
    await wal.close();
  });

  it('refuses a reset while appends are pending', async () => {
    const { wal } = await Wal.open(nodeFs, dir);
    const pending = wal.append(entries(1, 1, 1), null);
    await expect(wal.reset(logIndex(5))).rejects.toThrow(/reset with appends pending/);
    await pending;
    await wal.close();
  });
});

describe('Wal failure', () => {
  it('fails for good on a datasync error: rejects pending and later appends', async () => {
    const fs = new WrappingFs(nodeFs);
    const fatal: WalFailedError[] = [];
    const { wal } = await Wal.open(fs, dir, { onFatal: (error) => fatal.push(error) });
    await wal.append([entry(1, 1)], null);
    fs.failDatasync = true;
    const pending = [wal.append([entry(2, 1)], null), wal.append([entry(3, 1)], null)];
    for (const append of pending) await expect(append).rejects.toBeInstanceOf(WalFailedError);
    expect(wal.failed).toBeInstanceOf(WalFailedError);
    expect(wal.failed?.message).toMatch(/must stop now and recover from its log at restart/);
    expect(wal.failed?.message).toMatch(/EIO/);
    expect(fatal).toHaveLength(1);
    const syncs = fs.datasyncCount;
    fs.failDatasync = false; // a later success must not matter: no retry
    await expect(wal.append([entry(4, 1)], null)).rejects.toBe(wal.failed);
    await expect(wal.compact(logIndex(1))).rejects.toBe(wal.failed);
    expect(fs.datasyncCount).toBe(syncs);
    await wal.close();
  });
});

describe('Wal failure on write', () => {
  it('fails for good on ENOSPC, and the log written before stays recoverable', async () => {
    const fs = new WrappingFs(nodeFs);
    const { wal } = await Wal.open(fs, dir);
    await wal.append(entries(1, 3, 1), hardState(1, 3));
    fs.failWrite = true;
    await expect(wal.append([entry(4, 1)], null)).rejects.toThrow(/ENOSPC.*must stop now/);
    await expect(wal.append([entry(5, 1)], null)).rejects.toBeInstanceOf(WalFailedError);
    await wal.close();
    const recovered = await reopen();
    expect(recovered.entries.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(recovered.hardState).toEqual(hardState(1, 3));
  });
});

describe('Wal against a model', () => {
  type Step =
    | {
        readonly kind: 'append';
        readonly count: number;
        readonly back: number;
        readonly bump: boolean;
      }
    | { readonly kind: 'reopen' }
    | { readonly kind: 'compact'; readonly fraction: number };

  const stepArb: fc.Arbitrary<Step> = fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        kind: fc.constant('append' as const),
        count: fc.integer({ min: 1, max: 4 }),
        back: fc.integer({ min: 0, max: 6 }),
        bump: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('compact' as const),
        fraction: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
    },
  );

  /** After compaction, recovery may start anywhere up to just past the snapshot. */
  function expectModelSuffix(
    recovered: readonly Entry[],
    model: readonly Entry[],
    through: number,
  ) {
    const first = recovered[0]?.index ?? model.length + 1;
    expect(first).toBeLessThanOrEqual(through + 1);
    expect(plain(recovered)).toEqual(plain(model.slice(first - 1)));
  }

  it('recovers exactly the log a naive model holds', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { maxLength: 25 }),
        fc.integer({ min: 1, max: 4 }),
        async (steps, concurrency) => {
          const runDir = join(dir, `run-${run++}`);
          const options = { segmentBytesMax: 400 };
          let { wal } = await Wal.open(nodeFs, runDir, options);
          let model: Entry[] = [];
          let currentTerm = 1;
          let compactedThrough = 0;
          let pending: Promise<void>[] = [];
          for (const step of steps) {
            if (step.kind === 'reopen') {
              await Promise.all(pending);
              pending = [];
              await wal.close();
              const reopened = await Wal.open(nodeFs, runDir, options);
              expectModelSuffix(reopened.entries, model, compactedThrough);
              wal = reopened.wal;
              continue;
            }
            if (step.kind === 'compact') {
              // A snapshot covers only durable, committed entries.
              await Promise.all(pending);
              pending = [];
              const through = Math.floor(model.length * step.fraction);
              compactedThrough = Math.max(compactedThrough, through);
              await wal.compact(logIndex(through));
              continue;
            }
            // Overwriting needs a new term, as a new leader would bring; never
            // below the snapshot, whose entries are committed.
            const back = Math.min(step.back, model.length - compactedThrough);
            if (back > 0 || step.bump) currentTerm++;
            const from = model.length - back + 1;
            const batch = entries(from, from + step.count - 1, currentTerm, from % 7);
            model = model.slice(0, from - 1).concat(batch);
            pending.push(wal.append(batch, hardState(currentTerm, 0)));
            if (pending.length >= concurrency) {
              await Promise.all(pending);
              pending = [];
            }
          }
          await Promise.all(pending);
          await wal.close();
          const recovered = await Wal.open(nodeFs, runDir, options);
          await recovered.wal.close();
          expectModelSuffix(recovered.entries, model, compactedThrough);
          expect(recovered.hardState?.term ?? 1).toBe(currentTerm);
          await rm(runDir, { recursive: true, force: true });
        },
      ),
      { numRuns: 100 },
    );
  });
});
