/**
 * A model of a node's stable storage, kept beside the real `RaftStorage` as
 * the oracle of what it acknowledged: each Ready is applied here when its
 * `persist` resolves, each snapshot when `saveSnapshot` resolves. A restart
 * must recover at least this (sim-node.ts `recoveryProblem`), and the log
 * matching checker reads the durable term before each entry from it.
 */
import { assert } from '../src/raft/assert.js';
import type { PersistedState } from '../src/raft/config.js';
import type { Ready } from '../src/raft/ready.js';
import type { Entry, HardState, SnapshotMeta } from '../src/raft/types.js';
import { logIndex } from '../src/raft/types.js';

export class DurableStore {
  hardState: HardState;
  snapshot: SnapshotMeta;
  snapshotBytes: Uint8Array;
  /** Invariant: contiguous, the first at snapshot.index + 1. */
  private entries: Entry[];

  constructor(initial: PersistedState, snapshotBytes: Uint8Array) {
    this.hardState = initial.hardState;
    this.snapshot = initial.snapshot;
    this.snapshotBytes = snapshotBytes;
    this.entries = [...initial.entries];
  }

  get lastIndex(): number {
    return this.snapshot.index + this.entries.length;
  }

  /** What a restarting node recovers (copies: the core may keep what it is given). */
  recover(): PersistedState {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] };
  }

  entryAt(index: number): Entry | undefined {
    return this.entries[index - this.snapshot.index - 1];
  }

  /**
   * Makes one Ready's writes durable, in the order ready.ts prescribes:
   * snapshot, then entries (truncating a conflicting suffix), then hard state.
   * Returns a problem description if the Ready breaks the storage contract.
   */
  persist(rd: Ready, snapshotBytes: Uint8Array | null): string | null {
    if (rd.snapshot !== null) {
      if (snapshotBytes === null) return `snapshot ${rd.snapshot.index} arrived without its bytes`;
      this.installSnapshot(rd.snapshot, snapshotBytes);
    }
    const problem = this.appendEntries(rd.entries);
    if (rd.hardState !== null) {
      // A commit below the snapshot is never useful and would confuse recovery.
      const commit = Math.max(rd.hardState.commit, this.snapshot.index);
      this.hardState = { ...rd.hardState, commit: logIndex(commit) };
    }
    return problem;
  }

  /**
   * A snapshot from the leader replaces the whole log, as the core does when
   * it restores one (it only does so when its log lacks the snapshot's last
   * entry, so nothing after it could be kept anyway).
   */
  installSnapshot(meta: SnapshotMeta, bytes: Uint8Array): void {
    this.entries = [];
    this.snapshot = meta;
    this.snapshotBytes = bytes;
    if (this.hardState.commit < meta.index)
      this.hardState = { ...this.hardState, commit: meta.index };
  }

  /** The app saved its own snapshot at `meta.index` (at or below what it applied). */
  compact(meta: SnapshotMeta, bytes: Uint8Array): void {
    assert(meta.index >= this.snapshot.index, 'snapshots only move forward');
    assert(
      meta.index <= this.lastIndex,
      `snapshot ${meta.index} beyond the log (${this.lastIndex})`,
    );
    this.entries = this.entries.slice(meta.index - this.snapshot.index);
    this.snapshot = meta;
    this.snapshotBytes = bytes;
    if (this.hardState.commit < meta.index)
      this.hardState = { ...this.hardState, commit: meta.index };
  }

  private appendEntries(entries: readonly Entry[]): string | null {
    const first = entries[0];
    if (first === undefined) return null;
    let skip = 0;
    // Entries already covered by a newer snapshot are dropped, not re-stored.
    while (skip < entries.length && (entries[skip]?.index ?? 0) <= this.snapshot.index) skip++;
    const start = entries[skip];
    if (start === undefined) return null;
    if (start.index > this.lastIndex + 1) {
      return `entries start at ${start.index} but the stored log ends at ${this.lastIndex} (a gap)`;
    }
    this.entries.length = start.index - this.snapshot.index - 1;
    for (let i = skip; i < entries.length; i++) {
      const e = entries[i] as Entry;
      if (e.index !== this.lastIndex + 1) {
        return `entries not contiguous: ${e.index} after ${this.lastIndex}`;
      }
      this.entries.push(e);
    }
    return null;
  }
}
