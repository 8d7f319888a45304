/**
 * The write-ahead log: entries and hard states appended to segment files,
 * acknowledged only once fdatasync'ed, with group commit.
 *
 * Segments are `<segmentId>-<firstIndex>.wal` (segment-name.ts), each opening
 * with a segment header record and, after the first, the latest durable hard
 * state, so deleting old segments never loses the vote (Raft Figure 2).
 * Records are framed by record.ts; recovery is wal-recovery.ts.
 *
 * With `preallocate`, the next segment is prepared in the background: a
 * file of `segmentBytesMax` zeros, made durable, that rotation gives its
 * header and renames into place. Appends then overwrite blocks the file
 * already has, and an fdatasync that changes neither the file's size nor
 * its block map needs no file-system journal commit. Measured on this
 * project's ext4 disk, 2,000-byte writes each followed by fdatasync: 157 to
 * 173 µs and 78 µs of CPU (the kernel's included) each when appending,
 * 102 to 104 µs and 48 to 53 µs over zero-filled blocks.
 *
 * The zeros are paid per byte, the journal commit they save per sync, so a
 * segment is prepared only while batches average at most
 * `prepareBatchBytesMax` (64 KiB by default). Measured in the 3-node bench
 * (interleaved pairs, zero-filling against none): at 3.5 KiB per sync (50
 * clients, 100 B SETs) zero-filling was about 10% faster, at 22-25 KiB
 * (1 KiB values) faster in 3 of 3 pairs, at 55-62 KiB (pipelined SETs)
 * 3% slower in 2 pairs (within the noise), and at 415 KiB (16 KiB values)
 * 13% slower, with each follower spending 14-28% more CPU per SET.
 *
 * A write or sync failure is fatal (DESIGN.md §2, the "fsyncgate" lesson):
 * the Wal enters a failed state, rejects everything pending and to come, and
 * never retries. The runtime must exit and recover from the log at restart.
 */

import { join } from 'node:path';
import { assert, fail } from '../raft/assert.js';
import type { Entry, HardState, LogIndex } from '../raft/types.js';
import type { FileSystem, FsFile } from './fs.js';
import { encodeRecords, recordBytes, type WalRecord } from './record.js';
import { formatSegmentName } from './segment-name.js';
import { type AppendRequest, appendBytes, WalBatch } from './wal-batch.js';
import { WalFailedError } from './wal-errors.js';
import { recoverWal, type TornTail } from './wal-recovery.js';

export { WalCorruptionError, WalFailedError } from './wal-errors.js';
export type { TornTail } from './wal-recovery.js';

export interface WalOptions {
  /** A segment that has reached this size is closed and a new one started. */
  readonly segmentBytesMax?: number;
  /** Limit of one group-commit batch; an append that would exceed it waits for the next. */
  readonly batchBytesMax?: number;
  /**
   * Prepare each next segment ahead of time, zero-filled to
   * `segmentBytesMax` (see above). Costs a second file of that size on disk
   * and writing each segment's bytes twice, zeros first, off the commit
   * path. Default false; `tandem node` turns it on.
   */
  readonly preallocate?: boolean;
  /**
   * With `preallocate`, the first preparation waits until this many bytes
   * were written since the Wal opened (default 1 MiB), so a node that
   * writes little never spends the disk space.
   */
  readonly prepareAfterBytes?: number;
  /**
   * With `preallocate`, the next segment is prepared only while the recent
   * batches (a moving average over about 32) are at most this many bytes
   * each; bigger batches go to plain segments (see above). Default 64 KiB.
   */
  readonly prepareBatchBytesMax?: number;
  /**
   * Asked before each preparation; false skips it until the next rotation
   * (the runtime says no while the disk is short of space). Default: yes.
   */
  readonly mayPrepare?: () => Promise<boolean>;
  /** Called once when the Wal fails, so the runtime can log and exit. */
  readonly onFatal?: (error: WalFailedError) => void;
}

export const segmentBytesMaxDefault = 64 * 1024 * 1024;
export const batchBytesMaxDefault = 8 * 1024 * 1024;
/** The next segment while it is prepared: not a segment name, so recovery ignores it. */
export const preparedSegmentName = 'next-segment.prealloc';
const zeroFillChunkBytes = 1024 * 1024;
const prepareAfterBytesDefault = 1024 * 1024;
const prepareBatchBytesMaxDefault = 64 * 1024;
/** Weight of the latest batch in `batchBytesAverage`: about the last 32 batches count. */
const batchAverageWeight = 1 / 32;

/** What `Wal.open` recovered, with the Wal ready for appends. */
export interface WalOpenResult {
  readonly wal: Wal;
  /** The last hard state written, or null if none ever was. */
  readonly hardState: HardState | null;
  /** The effective log, index-ordered and contiguous. The Wal keeps no reference to it. */
  readonly entries: Entry[];
  /** Torn writes cut off the end of the log; worth a log line each. */
  readonly tornTails: TornTail[];
  /** No entry lies below this: 1, or the first index after the last `reset`. */
  readonly floorIndex: LogIndex;
  /** The effective last index (`floorIndex - 1` for an empty log). */
  readonly lastIndex: LogIndex;
}

/**
 * A background preparation of the next segment. `ready`: its file is
 * complete and durable; `stopped`: it failed, was refused or was cut short,
 * and the next rotation starts another.
 */
interface Preparation {
  readonly done: Promise<void>;
  state: 'running' | 'ready' | 'stopped';
}

interface Segment {
  readonly segmentId: number;
  readonly firstIndex: LogIndex;
  readonly path: string;
  /** Highest index of an entry record in the file; 0 if none. */
  maxEntryIndex: number;
}

export class Wal {
  private readonly segmentBytesMax: number;
  private readonly batchBytesMax: number;
  private readonly onFatal: ((error: WalFailedError) => void) | undefined;
  private readonly preallocate: boolean;
  private readonly prepareAfterBytes: number;
  private readonly prepareBatchBytesMax: number;
  /** Moving average of the bytes per batch; 0 until the first batch. */
  private batchBytesAverage = 0;
  private readonly mayPrepare: () => Promise<boolean>;
  /** The preparation of the next segment; null if none was started, or its segment was taken. */
  private preparation: Preparation | null = null;
  /** The current segment is zero-filled beyond `fileBytes` (it was prepared). */
  private currentPreallocated: boolean;
  /** In order. Invariant: non-empty, and the last one is `file`. */
  private readonly segments: Segment[];
  /** Size of the current segment, counting written batches. */
  private fileBytes: number;
  /** The effective last index, counting appends not yet durable. */
  private lastIndexAccepted: number;
  /** No append may start below this: 1, or the first index after the last restart. */
  private floorIndex: number;
  /** The effective last index and latest hard state as of the last durable batch. */
  private syncedLastIndex: number;
  private syncedHardState: HardState | null;
  /** Appends are encoded here while the previous batch is in flight. */
  private open: WalBatch;
  private inFlight: WalBatch | null = null;
  /** Appends that did not fit `open`; they keep call order. */
  private readonly waiting: AppendRequest[] = [];
  private spareBuffer: Buffer | null = null;
  /** Set while `flushBatches` runs; cleared by it synchronously as it ends. */
  private flushing = false;
  private flushed: Promise<void> = Promise.resolve();
  private compaction: Promise<unknown> = Promise.resolve();
  private failure: WalFailedError | null = null;
  private closed = false;

  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private file: FsFile,
    segments: Segment[],
    fileBytes: number,
    currentPreallocated: boolean,
    floorIndex: number,
    lastIndex: number,
    hardState: HardState | null,
    options: WalOptions,
  ) {
    this.segmentBytesMax = options.segmentBytesMax ?? segmentBytesMaxDefault;
    this.preallocate = options.preallocate ?? false;
    this.prepareAfterBytes = options.prepareAfterBytes ?? prepareAfterBytesDefault;
    this.prepareBatchBytesMax = options.prepareBatchBytesMax ?? prepareBatchBytesMaxDefault;
    this.mayPrepare = options.mayPrepare ?? (() => Promise.resolve(true));
    this.currentPreallocated = currentPreallocated;
    this.batchBytesMax = options.batchBytesMax ?? batchBytesMaxDefault;
    this.onFatal = options.onFatal;
    assert(this.segmentBytesMax >= 1 && this.batchBytesMax >= 1, 'WAL limits must be positive');
    assert(segments.length > 0, 'a Wal has a current segment');
    this.segments = segments;
    this.fileBytes = fileBytes;
    assert(floorIndex >= 1 && lastIndex >= floorIndex - 1, 'the log starts before it ends');
    this.floorIndex = floorIndex;
    this.lastIndexAccepted = lastIndex;
    this.syncedLastIndex = lastIndex;
    this.syncedHardState = hardState;
    this.open = new WalBatch(null, lastIndex, this.batchBytesMax);
  }

  /**
   * Recovers the WAL in `dir` (created if missing) and opens it for appends.
   * Cuts a torn tail; throws `WalCorruptionError` for damage that may have
   * hit a committed entry. The caller should hold the directory's lock.
   *
   * @example
   * const { wal, hardState, entries } = await Wal.open(fs, '/data/wal', {});
   * await wal.append([entry], hardState);
   */
  static async open(fs: FileSystem, dir: string, options: WalOptions = {}): Promise<WalOpenResult> {
    await fs.mkdir(dir);
    // A segment being prepared when the process stopped; it starts over.
    const leftover = join(dir, preparedSegmentName);
    if (await fs.exists(leftover)) await fs.unlink(leftover);
    const recovery = await recoverWal(fs, dir, options.batchBytesMax ?? batchBytesMaxDefault);
    const last = recovery.segments[recovery.segments.length - 1];
    let segments: Segment[];
    let file: FsFile;
    let fileBytes: number;
    let preallocated = false;
    if (last === undefined) {
      const created = await createSegment(fs, dir, 1, 1 as LogIndex, null, false);
      segments = [created.segment];
      file = created.file;
      fileBytes = created.bytes;
    } else {
      segments = recovery.segments.map((s) => ({ ...s }));
      file = await fs.open(last.path, 'write', { syncWrites: true });
      fileBytes = last.sizeBytes;
      preallocated = last.fileBytes > last.sizeBytes;
    }
    if (recovery.hardState !== null && !recovery.hardStateInLast) {
      // The last segment's creation was torn after its header: copy the hard
      // state into it before a restart's cleanup or a compaction deletes the
      // segment that holds it.
      const record = encodeRecords([{ type: 'hardState', hardState: recovery.hardState }]);
      await file.writeDurable(fileBytes, record);
      fileBytes += record.length;
    }
    // A crash cut a reset short: finish deleting what its restart voided.
    for (const segment of recovery.superseded) {
      await fs.unlink(segment.path);
      await fs.syncDir(dir);
    }
    const floorIndex = last === undefined ? 1 : recovery.floorIndex;
    const lastIndex = last === undefined ? 0 : recovery.lastIndex;
    const wal = new Wal(
      fs,
      dir,
      file,
      segments,
      fileBytes,
      preallocated,
      floorIndex,
      lastIndex,
      recovery.hardState,
      options,
    );
    const { hardState, entries, tornTails } = recovery;
    return {
      wal,
      hardState,
      entries,
      tornTails,
      floorIndex: floorIndex as LogIndex,
      lastIndex: wal.lastIndex,
    };
  }

  /** The error the Wal failed with, or null while it works. */
  get failed(): WalFailedError | null {
    return this.failure;
  }

  /**
   * Group commit at work: batches written, each with one fdatasync, and
   * their bytes; and rotations into a prepared segment or a plain one.
   */
  readonly counters = { batches: 0, bytes: 0, preparedRotations: 0, plainRotations: 0 };

  /** The effective last index, counting appends not yet durable. */
  get lastIndex(): LogIndex {
    return this.lastIndexAccepted as LogIndex;
  }

  /** Whether the next segment is prepared and waiting (`preallocate`); for tests. */
  get nextSegmentPrepared(): boolean {
    return this.preparation?.state === 'ready';
  }

  /** Number of segment files; for tests and metrics. */
  get segmentCount(): number {
    return this.segments.length;
  }

  /**
   * Appends entries (then the hard state, if any) and resolves once they are
   * durable. Appends resolve in call order. `entries` may start at or below
   * the last index: they replace the suffix from their first index on (a
   * follower overwriting a conflicting suffix, Raft §5.3). Rejects with
   * `WalFailedError` if the Wal has failed.
   */
  append(entries: readonly Entry[], hardState: HardState | null): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    assert(!this.closed, 'append after close');
    assert(entries.length > 0 || hardState !== null, 'an append persists something');
    this.checkContiguous(entries);
    const bytes = appendBytes(entries, hardState);
    if (bytes <= this.batchBytesMax || entries.length <= 1) {
      return this.enqueue(entries, hardState, bytes);
    }
    // Split, so that no write but one of a single big entry exceeds a batch:
    // recovery relies on that bound to tell a torn write from damage. The
    // parts resolve in order, so the last resolving means all are durable;
    // a crash between them keeps a prefix, as one torn write may.
    const hardStateBytes = appendBytes([], hardState);
    const parts = splitAppend(entries, this.batchBytesMax - hardStateBytes);
    let last: Promise<void> = Promise.resolve();
    for (const [i, part] of parts.entries()) {
      const isLast = i === parts.length - 1;
      last = isLast
        ? this.enqueue(part.entries, hardState, part.bytes + hardStateBytes)
        : this.enqueue(part.entries, null, part.bytes);
      // A failure rejects every part; the caller sees it through the last.
      if (!isLast) last.catch(() => undefined);
    }
    return last;
  }

  /** Queues one append (already checked) for the next batch it fits. */
  private enqueue(
    entries: readonly Entry[],
    hardState: HardState | null,
    bytes: number,
  ): Promise<void> {
    const lastEntry = entries[entries.length - 1];
    if (lastEntry !== undefined) this.lastIndexAccepted = lastEntry.index;
    const lastIndexAfter = this.lastIndexAccepted;
    return new Promise<void>((resolve, reject) => {
      const request = { entries, hardState, bytes, lastIndexAfter, waiter: { resolve, reject } };
      if (this.waiting.length === 0 && this.open.fits(bytes)) this.open.add(request);
      else this.waiting.push(request);
      this.startFlushing();
    });
  }

  /**
   * Deletes the oldest segments whose entries are all at or below
   * `throughIndex` (covered by a snapshot), never the current one, and syncs
   * the directory. Returns how many were deleted.
   */
  compact(throughIndex: LogIndex): Promise<number> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const run = this.compaction.then(() => this.compactNow(throughIndex));
    this.compaction = run.catch(() => undefined);
    return run;
  }

  /**
   * Restarts the log empty after `snapshotIndex` (a follower installing a
   * snapshot its log does not lead up to, Raft §7): durably starts a segment
   * whose header voids everything before, then deletes the older segments.
   * The next append must start at `snapshotIndex + 1`. The caller must have
   * made the snapshot durable first, and must not call this with appends
   * pending. Resolves once the restart is durable; a crash before that
   * leaves the old log, a crash after it the restarted one.
   */
  async reset(snapshotIndex: LogIndex): Promise<void> {
    if (this.failure !== null) throw this.failure;
    assert(!this.closed, 'reset after close');
    assert(snapshotIndex >= 1, 'a reset follows a snapshot');
    this.assertNoAppendPending();
    // Queued with the compactions: both delete segments.
    const run = this.compaction.then(() => this.resetNow(snapshotIndex));
    this.compaction = run.catch(() => undefined);
    await run;
  }

  private assertNoAppendPending(): void {
    assert(
      !this.flushing &&
        this.inFlight === null &&
        this.open.bytes === 0 &&
        this.waiting.length === 0,
      'reset with appends pending',
    );
  }

  private async resetNow(snapshotIndex: LogIndex): Promise<void> {
    if (this.failure !== null) throw this.failure;
    this.assertNoAppendPending();
    const current = this.segments[this.segments.length - 1] as Segment;
    try {
      await this.file.close();
      const created = await createSegment(
        this.fs,
        this.dir,
        current.segmentId + 1,
        (snapshotIndex + 1) as LogIndex,
        this.syncedHardState,
        true,
      );
      const voided = this.segments.splice(0, this.segments.length, created.segment);
      this.file = created.file;
      this.fileBytes = created.bytes;
      this.currentPreallocated = false;
      this.floorIndex = snapshotIndex + 1;
      this.lastIndexAccepted = snapshotIndex;
      this.syncedLastIndex = snapshotIndex;
      this.open = new WalBatch(this.spareBuffer, snapshotIndex, this.batchBytesMax);
      this.spareBuffer = null;
      for (const segment of voided) {
        await this.fs.unlink(segment.path);
        await this.fs.syncDir(this.dir);
      }
    } catch (error) {
      this.enterFailed(error);
      throw this.failure;
    }
  }

  /**
   * Waits for pending appends and compactions, then closes the current
   * segment. A segment being prepared stops after its current write; the
   * next open starts it over.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing) await this.flushed;
    await this.compaction;
    await this.preparation?.done;
    if (this.failure === null) await this.file.close();
    else await this.file.close().catch(() => undefined);
  }

  private checkContiguous(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    if (!(first.index >= this.floorIndex && first.index <= this.lastIndexAccepted + 1)) {
      fail(
        `append at index ${first.index}: appends may start at ${this.floorIndex}..${this.lastIndexAccepted + 1}`,
      );
    }
    for (let i = 1; i < entries.length; i++) {
      const previous = entries[i - 1] as Entry;
      const entry = entries[i] as Entry;
      if (entry.index !== previous.index + 1 || entry.term < previous.term) {
        fail(`entry ${entry.index}/${entry.term} after ${previous.index}/${previous.term}`);
      }
    }
  }

  private startFlushing(): void {
    if (this.flushing) return;
    this.flushing = true;
    this.flushed = this.flushBatches();
  }

  /** Writes and syncs batches one at a time until none is pending. */
  private async flushBatches(): Promise<void> {
    try {
      // Appends made in the same turn of the event loop join the first batch.
      await Promise.resolve();
      while (this.failure === null && this.open.bytes > 0) {
        const batch = this.takeOpenBatch();
        try {
          await this.writeBatch(batch);
        } catch (error) {
          this.enterFailed(error);
          return;
        }
        this.completeBatch(batch);
      }
    } finally {
      // In the same microtask as the last resolve, not later: an append made
      // by a resumed caller must start a new loop, not join one that ended.
      this.flushing = false;
    }
  }

  private takeOpenBatch(): WalBatch {
    const batch = this.open;
    this.inFlight = batch;
    this.open = new WalBatch(this.spareBuffer, batch.lastIndexAfter, this.batchBytesMax);
    this.spareBuffer = null;
    this.admitWaiting();
    return batch;
  }

  private completeBatch(batch: WalBatch): void {
    this.inFlight = null;
    this.syncedLastIndex = batch.lastIndexAfter;
    if (batch.hardState !== null) this.syncedHardState = batch.hardState;
    this.spareBuffer = batch.recycle();
    for (const waiter of batch.waiters) waiter.resolve();
  }

  /** Moves waiting appends into the open batch, in order, while they fit. */
  private admitWaiting(): void {
    let admitted = 0;
    while (admitted < this.waiting.length) {
      const request = this.waiting[admitted] as AppendRequest;
      if (!this.open.fits(request.bytes)) break;
      this.open.add(request);
      admitted++;
    }
    this.waiting.splice(0, admitted);
  }

  private async writeBatch(batch: WalBatch): Promise<void> {
    // A prepared segment is worth moving to before this one is full when
    // this one was not prepared (the first of a new log, or one recovered).
    const full = this.fileBytes >= this.segmentBytesMax;
    if (full || (this.nextSegmentPrepared && !this.currentPreallocated)) await this.rotate();
    const data = batch.contents();
    // One system call on the real disk (O_DSYNC), not a pwrite and an fdatasync.
    await this.file.writeDurable(this.fileBytes, data);
    this.fileBytes += data.length;
    this.counters.batches++;
    this.counters.bytes += data.length;
    this.batchBytesAverage =
      this.counters.batches === 1
        ? data.length
        : this.batchBytesAverage + (data.length - this.batchBytesAverage) * batchAverageWeight;
    if (this.counters.bytes >= this.prepareAfterBytes) this.startPreparing();
    const current = this.segments[this.segments.length - 1] as Segment;
    current.maxEntryIndex = Math.max(current.maxEntryIndex, batch.maxEntryIndex);
  }

  /** Closes the full segment and starts the next; runs between batches. */
  private async rotate(): Promise<void> {
    const current = this.segments[this.segments.length - 1] as Segment;
    await this.file.datasync();
    await this.file.close();
    const firstIndex = (this.syncedLastIndex + 1) as LogIndex;
    const segmentId = current.segmentId + 1;
    const adopt = this.nextSegmentPrepared;
    const created = adopt
      ? await adoptPrepared(this.fs, this.dir, segmentId, firstIndex, this.syncedHardState)
      : await createSegment(this.fs, this.dir, segmentId, firstIndex, this.syncedHardState, false);
    // Listed only once durable, so compaction cannot leave a log with no
    // complete segment after a crash.
    this.segments.push(created.segment);
    this.file = created.file;
    this.fileBytes = created.bytes;
    this.currentPreallocated = adopt;
    if (adopt) this.counters.preparedRotations++;
    else this.counters.plainRotations++;
    // The next one, or another try after a preparation that stopped. One
    // that became ready while this rotation created a plain segment is kept
    // for the next batch, not started over (its file still has the name).
    if (adopt || this.preparation?.state === 'stopped') {
      this.preparation = null;
      this.startPreparing();
    }
  }

  /**
   * Starts zero-filling the next segment in the background, if asked to,
   * none is under way and recent batches are small enough to gain from it.
   * A failure here costs speed, not data: the next rotation creates its
   * segment the plain way, and the Wal's own writes meet any real disk
   * trouble themselves.
   */
  private startPreparing(): void {
    if (!this.preallocate || this.preparation !== null || this.closed) return;
    if (this.batchBytesAverage > this.prepareBatchBytesMax) return;
    const preparation: Preparation = {
      done: this.prepareSegment().then(
        (complete) => {
          preparation.state = complete ? 'ready' : 'stopped';
        },
        () => {
          preparation.state = 'stopped';
        },
      ),
      state: 'running',
    };
    this.preparation = preparation;
  }

  /**
   * Writes the prepared segment: `segmentBytesMax` zeros, durable. False if
   * `mayPrepare` said no, or the Wal closed or failed meanwhile. A failed
   * one is removed, so a full disk does not keep the space.
   */
  private async prepareSegment(): Promise<boolean> {
    if (!(await this.mayPrepare()) || this.closed || this.failure !== null) return false;
    const path = join(this.dir, preparedSegmentName);
    const file = await this.fs.open(path, 'create', { syncWrites: true });
    let done = false;
    try {
      const zeros = Buffer.alloc(Math.min(zeroFillChunkBytes, this.segmentBytesMax));
      for (let at = 0; at < this.segmentBytesMax; at += zeros.length) {
        if (this.closed || this.failure !== null) return false;
        const bytes = Math.min(zeros.length, this.segmentBytesMax - at);
        await file.writeDurable(at, zeros.subarray(0, bytes));
      }
      done = true;
      return true;
    } finally {
      await file.close().catch(() => undefined);
      if (!done) await this.fs.unlink(path).catch(() => undefined);
    }
  }

  private async compactNow(throughIndex: LogIndex): Promise<number> {
    if (this.failure !== null) throw this.failure;
    let deleted = 0;
    try {
      // Oldest first, each unlink made durable before the next, so a crash
      // midway leaves the remaining ids consecutive on any file system (not
      // only on those that persist directory operations in order).
      while (this.segments.length > 1) {
        const oldest = this.segments[0] as Segment;
        if (oldest.maxEntryIndex > throughIndex) break;
        await this.fs.unlink(oldest.path);
        await this.fs.syncDir(this.dir);
        this.segments.shift();
        deleted++;
      }
    } catch (error) {
      this.enterFailed(error);
      throw this.failure;
    }
    return deleted;
  }

  /** Fails the Wal for good: rejects everything pending, and tells the runtime once. */
  private enterFailed(cause: unknown): void {
    if (this.failure !== null) return;
    const failure = new WalFailedError(cause);
    this.failure = failure;
    const batches = [this.inFlight, this.open];
    this.inFlight = null;
    for (const batch of batches) for (const waiter of batch?.waiters ?? []) waiter.reject(failure);
    for (const request of this.waiting.splice(0)) request.waiter.reject(failure);
    this.onFatal?.(failure);
  }
}

/**
 * `entries` in consecutive runs of at most `budgetBytes` bytes of records
 * each, but at least one entry (an entry bigger than that is a run alone),
 * with each run's bytes.
 */
function splitAppend(
  entries: readonly Entry[],
  budgetBytes: number,
): { entries: Entry[]; bytes: number }[] {
  const parts: { entries: Entry[]; bytes: number }[] = [];
  let part = { entries: [] as Entry[], bytes: 0 };
  for (const entry of entries) {
    const bytes = recordBytes({ type: 'entry', entry });
    if (part.entries.length > 0 && part.bytes + bytes > budgetBytes) {
      parts.push(part);
      part = { entries: [], bytes: 0 };
    }
    part.entries.push(entry);
    part.bytes += bytes;
  }
  parts.push(part);
  return parts;
}

interface CreatedSegment {
  readonly segment: Segment;
  readonly file: FsFile;
  /** Bytes of its records so far: where the next append goes. */
  readonly bytes: number;
}

/** A segment's first records: its header, and the hard state if there is one. */
function segmentStart(
  segmentId: number,
  firstIndex: LogIndex,
  hardState: HardState | null,
  restart: boolean,
): Buffer {
  const records: WalRecord[] = [
    { type: 'segmentHeader', segment: { segmentId, firstIndex, restart } },
  ];
  if (hardState !== null) records.push({ type: 'hardState', hardState });
  return encodeRecords(records);
}

/**
 * Turns the prepared file into the next segment: its header written
 * durably first, then the rename, so a segment name never shows a file
 * without a header (a crash before the directory sync leaves the prepared
 * file, which the next open discards).
 */
async function adoptPrepared(
  fs: FileSystem,
  dir: string,
  segmentId: number,
  firstIndex: LogIndex,
  hardState: HardState | null,
): Promise<CreatedSegment> {
  const prepared = join(dir, preparedSegmentName);
  const path = join(dir, formatSegmentName(segmentId, firstIndex));
  const data = segmentStart(segmentId, firstIndex, hardState, false);
  const head = await fs.open(prepared, 'write', { syncWrites: true });
  try {
    await head.writeDurable(0, data);
  } finally {
    await head.close();
  }
  await fs.rename(prepared, path);
  await fs.syncDir(dir);
  const file = await fs.open(path, 'write', { syncWrites: true });
  return { segment: { segmentId, firstIndex, path, maxEntryIndex: 0 }, file, bytes: data.length };
}

/** Creates a segment with its header (and hard state), durable file and directory entry. */
async function createSegment(
  fs: FileSystem,
  dir: string,
  segmentId: number,
  firstIndex: LogIndex,
  hardState: HardState | null,
  restart: boolean,
): Promise<CreatedSegment> {
  const path = join(dir, formatSegmentName(segmentId, firstIndex));
  const data = segmentStart(segmentId, firstIndex, hardState, restart);
  const file = await fs.open(path, 'create', { syncWrites: true });
  await file.writeDurable(0, data);
  await fs.syncDir(dir);
  return { segment: { segmentId, firstIndex, path, maxEntryIndex: 0 }, file, bytes: data.length };
}
