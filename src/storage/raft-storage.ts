/**
 * The node's stable storage (issue 3, DESIGN.md §2): the one object the node
 * runtime uses to recover its `PersistedState` at start and to persist each
 * `Ready` in the order the core requires. It ties together the data
 * directory (lock, format), the snapshot store and the write-ahead log.
 *
 * Persisting a Ready: the snapshot (if any) is written and made durable
 * first, then the entries and the hard state go to the WAL in one append,
 * which resolves once fdatasynced.
 *
 * Choices:
 * - A Ready with no entries whose `mustSync` is false carries at most a
 *   commit change. Commit is recoverable (the leader tells it again), so such
 *   a Ready is not written at all; its hard state is kept and written with
 *   the next append that carries none of its own. Recovery thus may find an
 *   older commit, never a newer one.
 * - A follower that installs a snapshot from the leader replaces its whole
 *   log (the core only does so when its log does not hold the snapshot's
 *   last entry): once the snapshot is durable, `Wal.reset` restarts the WAL
 *   empty after the snapshot's index, and the Ready's entries follow. A crash
 *   between the two leaves the snapshot and the old log; recovery recognizes
 *   that state (the WAL ends before the snapshot, or holds another term at
 *   its index: a diverged suffix) and the first `persist` resets the WAL.
 * - A snapshot (the leader's or the application's) is written only once
 *   every WAL append issued before it is durable, so a crash never leaves a
 *   snapshot ahead of a gap in the log.
 * - Installing a snapshot or saving one deletes the WAL segments it covers
 *   and retires all but the newest `snapshotsKept` snapshots.
 */

import type { PersistedState } from '../raft/config.js';
import type { Ready } from '../raft/ready.js';
import type { Entry, HardState, LogIndex, Membership, SnapshotMeta } from '../raft/types.js';
import { logIndex, noNode, term } from '../raft/types.js';
import { DataDir, type DataDirOptions } from './data-dir.js';
import type { FileSystem } from './fs.js';
import {
  type SnapshotInfo,
  type SnapshotReader,
  type SnapshotSourceInfo,
  SnapshotStore,
  type SnapshotStoreOptions,
  type SnapshotWriter,
} from './snapshot-store.js';
import { Wal, type WalOpenResult, type WalOptions } from './wal.js';

export interface RaftStorageOptions {
  readonly dataDir?: DataDirOptions;
  readonly wal?: WalOptions;
  readonly snapshots?: SnapshotStoreOptions;
  /** How many snapshots to keep when retiring old ones; default 2. */
  readonly snapshotsKept?: number;
}

/** What `RaftStorage.open` returns. */
export interface RaftStorageOpenResult {
  readonly storage: RaftStorage;
  readonly persisted: PersistedState;
}

/**
 * The stored state is inconsistent, or an operation cannot be done; the
 * message says what and what to do.
 */
export class RaftStorageError extends Error {
  override readonly name = 'RaftStorageError';
}

/** Snapshot data: a stream of chunks or one buffer. */
export type SnapshotData = AsyncIterable<Uint8Array> | Uint8Array;

/**
 * A received snapshot stream that can resume (the transport's incoming
 * stream): `sender` announces the data's size and checksum, and `startAt`
 * tells the sender, before iterating, how many bytes to skip.
 */
export interface ResumableSnapshotData extends AsyncIterable<Uint8Array> {
  readonly sender: SnapshotSourceInfo | null;
  startAt(offsetBytes: number): void;
}

function asResumable(data: SnapshotData): ResumableSnapshotData | null {
  if (data instanceof Uint8Array) return null;
  const d = data as Partial<ResumableSnapshotData>;
  return typeof d.startAt === 'function' && d.sender !== undefined
    ? (data as ResumableSnapshotData)
    : null;
}

const emptyMembership: Membership = { voters: [], learners: [] };
const emptySnapshot: SnapshotMeta = {
  index: logIndex(0),
  term: term(0),
  membership: emptyMembership,
};
const emptyHardState: HardState = { term: term(0), vote: noNode, commit: logIndex(0) };

export class RaftStorage {
  /** Settles once the previous `persist` has issued its WAL append (or failed). */
  private issued: Promise<void> = Promise.resolve();
  /** A commit-only hard state not yet written; goes with the next append. */
  private pendingHardState: HardState | null = null;
  private failure: unknown = null;
  /** The last WAL append issued; a snapshot is written only once it is durable. */
  private lastAppend: Promise<void> = Promise.resolve();
  /**
   * A snapshot the WAL has not been restarted after (recovery found the
   * diverged log after it, or the WAL ending before it): the next `persist`
   * resets the WAL first.
   */
  private pendingReset: SnapshotMeta | null;
  private closed = false;
  private readonly snapshotsKept: number;
  /**
   * Calls of `persist`, `saveSnapshot` and `receiveSnapshot` not yet settled,
   * and what `close` waits on for them to be none. A count, not a Set of the
   * promises: a Set churned once per persist reallocates its table in the
   * old generation, whose stale slots keep young promises alive.
   */
  private running = 0;
  private onIdle: (() => void) | null = null;

  private constructor(
    private readonly dataDir: DataDir,
    private readonly snapshots: SnapshotStore,
    private readonly wal: Wal,
    options: RaftStorageOptions,
    pendingReset: SnapshotMeta | null,
  ) {
    this.pendingReset = pendingReset;
    this.snapshotsKept = options.snapshotsKept ?? 2;
  }

  /**
   * Opens (creating if needed) the data directory at `dataDirPath`, recovers
   * the snapshot store and the WAL, and returns the state the node starts
   * from. Throws `RaftStorageError` if the recovered pieces do not fit.
   */
  static async open(
    fs: FileSystem,
    dataDirPath: string,
    options: RaftStorageOptions = {},
  ): Promise<RaftStorageOpenResult> {
    const dataDir = await DataDir.open(fs, dataDirPath, options.dataDir);
    let wal: Wal | null = null;
    try {
      const snapshots = await SnapshotStore.open(fs, dataDir.snapDir, options.snapshots);
      const recovered = await Wal.open(fs, dataDir.walDir, options.wal);
      wal = recovered.wal;
      const snapshot = snapshots.latest() ?? emptySnapshot;
      const { persisted, needsReset } = buildPersistedState(dataDirPath, snapshot, recovered);
      const reset = needsReset ? snapshot : null;
      return { storage: new RaftStorage(dataDir, snapshots, wal, options, reset), persisted };
    } catch (error) {
      await wal?.close().catch(() => undefined);
      await dataDir.close().catch(() => undefined);
      throw error;
    }
  }

  /** WAL batches (one fdatasync each) and bytes written since opening. */
  get walCounters(): Readonly<Wal['counters']> {
    return this.wal.counters;
  }

  /** The data directory's random identity (see data-dir.ts). */
  get incarnation(): string {
    return this.dataDir.incarnation;
  }

  /** The newest durable snapshot, or null. */
  latestSnapshot(): SnapshotMeta | null {
    return this.snapshots.latest();
  }

  /**
   * Persists `rd` (snapshot, then entries and hard state); resolves once
   * durable. `snapshotData` is required when `rd.snapshot` is set. Calls may
   * overlap: they are written, and resolve, in call order. After a failure,
   * every later call rejects (the runtime should stop and recover).
   */
  persist(rd: Ready, snapshotData?: SnapshotData): Promise<void> {
    const previous = this.issued;
    let markIssued = (): void => undefined;
    this.issued = new Promise<void>((resolve) => {
      markIssued = resolve;
    });
    const run = async (): Promise<void> => {
      let appended: Promise<void> | null = null;
      try {
        await previous;
        if (this.failure !== null) throw this.failure;
        if (this.closed) throw new RaftStorageError('persist after close');
        if (rd.snapshot !== null) {
          await this.appendsDurable();
          checkSnapshotFits(rd.snapshot, rd.entries);
          if (snapshotData !== undefined) await this.writeSnapshot(rd.snapshot, snapshotData);
          else if (!this.hasSnapshot(rd.snapshot)) {
            throw new RaftStorageError(
              `Ready carries snapshot ${rd.snapshot.index}/${rd.snapshot.term} but no data was ` +
                'given and none was received',
            );
          }
          this.pendingReset = rd.snapshot;
        }
        if (this.pendingReset !== null) {
          await this.appendsDurable();
          await this.wal.reset(this.pendingReset.index);
          this.pendingReset = null;
        }
        appended = this.appendReady(rd);
      } catch (error) {
        this.failure ??= error;
        throw error;
      } finally {
        markIssued();
      }
      try {
        await appended;
      } catch (error) {
        this.failure ??= error;
        throw error;
      }
      if (rd.snapshot !== null) await this.compactTo(rd.snapshot.index);
    };
    return this.track(run());
  }

  /**
   * Saves a snapshot the application took at `meta.index` (at or below the
   * commit index), then deletes the WAL segments it covers and retires old
   * snapshots. Resolves with the snapshot's info once durable. It pulls a
   * chunk of `data` only once the one before is written, so the producer
   * may write the next chunk into the same buffer.
   */
  saveSnapshot(meta: SnapshotMeta, data: SnapshotData): Promise<SnapshotInfo> {
    return this.track(this.saveSnapshotNow(meta, data));
  }

  private async saveSnapshotNow(meta: SnapshotMeta, data: SnapshotData): Promise<SnapshotInfo> {
    if (this.closed) throw new RaftStorageError('saveSnapshot after close');
    // After the appends of every `persist` called before, once durable.
    await this.issued;
    if (this.failure !== null) throw this.failure;
    await this.appendsDurable();
    if (meta.index > this.wal.lastIndex) {
      throw new RaftStorageError(
        `application snapshot at index ${meta.index} is beyond the log's last index ` +
          `${this.wal.lastIndex}: a snapshot may only cover committed, persisted entries`,
      );
    }
    const info = await this.writeSnapshot(meta, data);
    await this.compactTo(meta.index);
    return info;
  }

  /**
   * Stores a snapshot streamed from the leader, durably, before its message
   * is stepped into the core; the Ready that installs it is then persisted
   * without data. Safe to keep even if the core declines it: a snapshot
   * holds only committed state, and recovery handles one ahead of the WAL
   * (see the class comment).
   *
   * If `data` is a ResumableSnapshotData and the stream breaks, the bytes
   * written are kept; receiving the same snapshot (same size and checksum)
   * again continues after them, and the whole is checked against the
   * sender's checksum before it is installed (see snapshot-store.ts).
   */
  receiveSnapshot(meta: SnapshotMeta, data: SnapshotData): Promise<SnapshotInfo> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new RaftStorageError('receiveSnapshot after close'));
    const resumable = asResumable(data);
    return this.track(
      resumable === null ? this.writeSnapshot(meta, data) : this.resumeSnapshot(meta, resumable),
    );
  }

  /** Whether a durable snapshot with `meta`'s index and term is stored. */
  hasSnapshot(meta: Pick<SnapshotMeta, 'index' | 'term'>): boolean {
    return this.snapshots
      .list()
      .some((s) => s.meta.index === meta.index && s.meta.term === meta.term);
  }

  /** Opens a stored snapshot for streaming (to a follower, or to install). */
  openSnapshot(meta: Pick<SnapshotMeta, 'index' | 'term'>): Promise<SnapshotReader> {
    return this.snapshots.openRead(meta);
  }

  /** Waits for pending writes, then closes the WAL and releases the directory's lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.running > 0) {
      await new Promise<void>((resolve) => {
        this.onIdle = resolve;
      });
    }
    try {
      await this.wal.close();
    } finally {
      await this.dataDir.close();
    }
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.running++;
    work.then(this.untrack, this.untrack);
    return work;
  }

  private readonly untrack = (): void => {
    this.running--;
    if (this.running === 0 && this.onIdle !== null) {
      this.onIdle();
      this.onIdle = null;
    }
  };

  /**
   * Waits until every append issued so far is durable, so that a snapshot
   * never becomes durable ahead of the log it follows (else a crash could
   * leave a gap between the WAL's end and the snapshot).
   */
  private async appendsDurable(): Promise<void> {
    await this.lastAppend.catch(() => undefined);
    if (this.wal.failed !== null) throw this.wal.failed;
  }

  private async writeSnapshot(meta: SnapshotMeta, data: SnapshotData): Promise<SnapshotInfo> {
    const writer = await this.snapshots.beginWrite(meta);
    try {
      if (data instanceof Uint8Array) {
        await writer.write(data);
      } else {
        for await (const chunk of data) await writer.write(chunk);
      }
      return await writer.finish();
    } catch (error) {
      await writer.abort().catch(() => undefined);
      throw error;
    }
  }

  private async resumeSnapshot(
    meta: SnapshotMeta,
    data: ResumableSnapshotData,
  ): Promise<SnapshotInfo> {
    const writer = await this.snapshots.beginReceive(meta, data.sender);
    try {
      data.startAt(writer.dataBytes);
    } catch (error) {
      await writer.abort().catch(() => undefined);
      throw error;
    }
    const chunks = data[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await nextOrKeep(chunks, writer);
        if (next.done === true) break;
        await writer.write(next.value);
      }
      return await writer.finish();
    } catch (error) {
      // Tell the source we stop (it may still be streaming), then drop our bytes
      // unless they were kept.
      await chunks.return?.().catch(() => undefined);
      await writer.abort().catch(() => undefined);
      throw error;
    }
  }

  /** Issues the Ready's WAL append at once (keeping call order); null if nothing to write. */
  private appendReady(rd: Ready): Promise<void> | null {
    if (rd.entries.length === 0 && !rd.mustSync && rd.snapshot === null) {
      // Commit only: recoverable, so not worth an fsync; written with the next append.
      if (rd.hardState !== null) this.pendingHardState = rd.hardState;
      return null;
    }
    const hardState = rd.hardState ?? this.pendingHardState;
    if (rd.entries.length === 0 && hardState === null) return null;
    this.pendingHardState = null;
    const appended = this.wal.append(rd.entries, hardState);
    this.lastAppend = appended;
    return appended;
  }

  private async compactTo(index: LogIndex): Promise<void> {
    await this.wal.compact(index);
    await this.snapshots.retire(this.snapshotsKept);
  }
}

/** The next chunk; if the source fails (the stream broke), keeps the writer's bytes first. */
async function nextOrKeep(
  chunks: AsyncIterator<Uint8Array>,
  writer: SnapshotWriter,
): Promise<IteratorResult<Uint8Array>> {
  try {
    return await chunks.next();
  } catch (error) {
    await writer.keepPartial().catch(() => false);
    throw error;
  }
}

/** A snapshot from the leader must be followed by entries from its next index on. */
function checkSnapshotFits(snapshot: SnapshotMeta, entries: readonly Entry[]): void {
  const first = entries[0];
  if (first !== undefined && first.index !== snapshot.index + 1) {
    throw new RaftStorageError(
      `Ready carries snapshot ${snapshot.index} and entries from ${first.index}: ` +
        `they must start at ${snapshot.index + 1}`,
    );
  }
}

/** Builds the start state from what was recovered, or throws `RaftStorageError`. */
function buildPersistedState(
  path: string,
  snapshot: SnapshotMeta,
  wal: Pick<WalOpenResult, 'entries' | 'hardState' | 'floorIndex' | 'lastIndex'>,
): { persisted: PersistedState; needsReset: boolean } {
  const atSnapshot = wal.entries.find((e) => e.index === snapshot.index);
  // The WAL holds another term at the snapshot's index: the snapshot came
  // from the leader, and the crash came before the WAL's reset; the log
  // after it is diverged. Likewise when the WAL ends before the snapshot.
  const diverged = atSnapshot !== undefined && atSnapshot.term !== snapshot.term;
  const behind = wal.lastIndex < snapshot.index;
  const needsReset = diverged || behind;
  const entries = needsReset ? [] : wal.entries.filter((e) => e.index > snapshot.index);
  if (wal.floorIndex > snapshot.index + 1) {
    throw new RaftStorageError(
      `data directory ${path} is inconsistent: the write-ahead log was restarted after a ` +
        `snapshot at index ${wal.floorIndex - 1}, but the newest snapshot is at index ` +
        `${snapshot.index} (was a snapshot file removed?). Restore the missing snapshot, or ` +
        'move the data directory aside and let this node rejoin the cluster as a new member',
    );
  }
  const first = entries[0];
  if (first !== undefined && first.index !== snapshot.index + 1) {
    throw new RaftStorageError(
      `data directory ${path} is inconsistent: the newest snapshot ends at index ` +
        `${snapshot.index} but the write-ahead log resumes at index ${first.index}, so entries ` +
        `${snapshot.index + 1}..${first.index - 1} are missing (was a snapshot file removed?). ` +
        'Restore the missing snapshot, or move the data directory aside and let this node ' +
        'rejoin the cluster as a new member',
    );
  }
  const hardState = startHardState(wal.hardState ?? emptyHardState, snapshot, entries);
  const lastIndex = entries[entries.length - 1]?.index ?? snapshot.index;
  if (hardState.commit > lastIndex) {
    throw new RaftStorageError(
      `data directory ${path} is inconsistent: the hard state's commit index ` +
        `${hardState.commit} is beyond the last stored entry ${lastIndex} (snapshot at ` +
        `${snapshot.index}, ${entries.length} log entries after it), so committed entries ` +
        'are lost. Move the data directory aside and let this node rejoin the cluster as a ' +
        'new member (or restore it from a backup)',
    );
  }
  return {
    persisted: { hardState, snapshot, entries },
    needsReset: needsReset && snapshot.index > 0,
  };
}

/**
 * The hard state to start from: the stored one, with the commit index at
 * least the snapshot's, and the term at least the log's last term.
 *
 * The term: a Ready's entries and its hard state go to the WAL in one
 * append, entries first, so a crash can keep the entries and tear the hard
 * state off (and a snapshot from the leader is stored before the Ready that
 * installs it). The log then holds a term above the stored one, which Raft
 * never allows (a node adopts a term before it accepts entries of it).
 * Adopting that term with no vote is safe: had the node voted in it, that
 * vote would have been durable before its message left, hence in the WAL.
 */
function startHardState(
  stored: HardState,
  snapshot: SnapshotMeta,
  entries: readonly Entry[],
): HardState {
  const logTerm = Math.max(entries[entries.length - 1]?.term ?? 0, snapshot.term);
  const raised: HardState =
    logTerm > stored.term ? { term: term(logTerm), vote: noNode, commit: stored.commit } : stored;
  return raised.commit < snapshot.index ? { ...raised, commit: snapshot.index } : raised;
}
