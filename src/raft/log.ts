import { assert, fail } from './assert.js';
import { applyConfChange } from './membership.js';
import type { Entry, LogIndex, Membership, SnapshotMeta, Term } from './types.js';
import { entryBytes, logIndex } from './types.js';

/**
 * The in-memory log of one node: a snapshot followed by the entries after it.
 * The runtime persists what `ready()` hands out; this class tracks how far
 * each stage got:
 *
 *   applied <= applying <= committed <= lastIndex, snapshot.index <= applying
 *   stable <= persisting <= lastIndex
 *
 * `persisting` and `applying` are what has been handed out to the runtime;
 * `stable` and `applied` what it acknowledged through `advance()`.
 *
 * Two snapshots are tracked: `snapshot`, the point the in-memory log starts
 * after (entries up to it are discarded), and `latestSnapshot`, the newest
 * one the runtime holds durably (the one a leader sends). The runtime may
 * keep entries before the latest snapshot in memory so that followers a
 * little behind catch up by appends (etcd's SnapshotCatchUpEntries):
 *
 *   snapshot.index <= latestSnapshot.index <= applying
 */
export class RaftLog {
  private snap: SnapshotMeta;
  /** The newest snapshot stored durably; at or after `snap`. */
  private latest: SnapshotMeta;
  /** Invariant: entries[k].index === snap.index + 1 + k, terms non-decreasing. */
  private entries: Entry[];
  /** Indexes of the conf entries in `entries`, ascending. */
  private confIndexes: LogIndex[] = [];
  private membershipCache: Membership;

  /** Invariant: never decreases (a committed entry stays committed, §5.4). */
  committed: LogIndex;
  /** Invariant: applied <= applying <= committed (applied trails a snapshot being installed). */
  applied: LogIndex;
  applying: LogIndex;
  /** Entries up to here have been handed out for persistence. */
  persisting: LogIndex;
  /** Entries up to here are durable on this node. */
  stable: LogIndex;
  /** A snapshot received from the leader, not yet handed out. */
  private snapshotToInstall: SnapshotMeta | null = null;

  constructor(snapshot: SnapshotMeta, entries: readonly Entry[], committed: LogIndex) {
    this.snap = snapshot;
    this.latest = snapshot;
    this.entries = [];
    this.membershipCache = snapshot.membership;
    this.appendUnchecked(entries, snapshot.index, snapshot.term);
    const last = this.lastIndex();
    assert(
      committed >= snapshot.index && committed <= last,
      `recovered commit ${committed} outside [${snapshot.index}, ${last}]: the log on disk lost entries it had acknowledged`,
    );
    this.committed = committed;
    this.applied = snapshot.index;
    this.applying = snapshot.index;
    this.persisting = last;
    this.stable = last;
  }

  /** Where the in-memory log starts: entries up to it are discarded. */
  get snapshot(): SnapshotMeta {
    return this.snap;
  }

  /** The newest snapshot stored durably, the one a leader sends (at or after `snapshot`). */
  get latestSnapshot(): SnapshotMeta {
    return this.latest;
  }

  firstIndex(): LogIndex {
    return logIndex(this.snap.index + 1);
  }

  lastIndex(): LogIndex {
    return logIndex(this.snap.index + this.entries.length);
  }

  lastTerm(): Term {
    const last = this.entries.at(-1);
    return last === undefined ? this.snap.term : last.term;
  }

  /** The term at `index`, or undefined when compacted away or beyond the end. */
  term(index: LogIndex): Term | undefined {
    if (index === this.snap.index) return this.snap.term;
    return this.entries[index - this.snap.index - 1]?.term;
  }

  entry(index: LogIndex): Entry | undefined {
    return this.entries[index - this.snap.index - 1];
  }

  matchTerm(index: LogIndex, t: Term): boolean {
    return this.term(index) === t;
  }

  /** Membership per the latest conf entry in the log, committed or not (thesis §4.1). */
  membership(): Membership {
    return this.membershipCache;
  }

  /** The index of the latest conf entry, or the snapshot index when there is none. */
  lastConfIndex(): LogIndex {
    return this.confIndexes.at(-1) ?? this.snap.index;
  }

  /** Thesis §5.4.1: is a log ending at (index, term) at least as up-to-date as ours? */
  isUpToDate(lastIdx: LogIndex, lastT: Term): boolean {
    const ourTerm = this.lastTerm();
    return lastT > ourTerm || (lastT === ourTerm && lastIdx >= this.lastIndex());
  }

  /**
   * Entries in [lo, hi), at most `entriesMax` of them and about `bytesMax`
   * bytes (at least one entry when any is available). Undefined when `lo` was
   * compacted: the caller must send a snapshot instead.
   */
  slice(lo: LogIndex, hi: LogIndex, entriesMax: number, bytesMax: number): Entry[] | undefined {
    if (lo <= this.snap.index) return undefined;
    if (hi > this.lastIndex() + 1) fail(`slice end ${hi} beyond last index ${this.lastIndex()}`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi && out.length < entriesMax; i++) {
      const e = this.entries[i - this.snap.index - 1];
      if (e === undefined) fail(`entry ${i} missing inside the log`);
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  /**
   * The first index of the run of entries with term `t` that contains
   * `index`, for the follower's back-off hint (§5.3). Bounded by the snapshot.
   */
  firstIndexOfTermAt(index: LogIndex): LogIndex {
    const t = this.term(index);
    assert(t !== undefined, `no term known at ${index}`);
    let i = index;
    while (i > this.snap.index + 1 && this.term(logIndex(i - 1)) === t) i--;
    return logIndex(i);
  }

  /** The last index at or before `atMost` whose term is `t`, or undefined. */
  lastIndexOfTerm(t: Term, atMost: LogIndex): LogIndex | undefined {
    let i = Math.min(atMost, this.lastIndex());
    while (i >= this.snap.index) {
      const it = this.term(logIndex(i));
      if (it === undefined || it < t) return undefined;
      if (it === t) return logIndex(i);
      i--;
    }
    return undefined;
  }

  /**
   * The index of the first entry in `entries` that conflicts with ours (same
   * index, different term) or is new, or undefined when all are present.
   */
  findConflict(entries: readonly Entry[]): LogIndex | undefined {
    for (const e of entries) {
      if (e.index <= this.snap.index) continue;
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return undefined;
  }

  /** The leader appends its own entries (§5.3); it never overwrites (Leader Append-Only). */
  append(entries: readonly Entry[]): void {
    this.appendUnchecked(entries, this.lastIndex(), this.lastTerm());
  }

  /**
   * A follower accepts entries from the leader, truncating a conflicting
   * suffix first (§5.3). Returns the index of the last new entry.
   */
  acceptFromLeader(prevIndex: LogIndex, entries: readonly Entry[]): LogIndex {
    const lastNew = logIndex(prevIndex + entries.length);
    const conflict = this.findConflict(entries);
    if (conflict === undefined) return lastNew;
    assert(
      conflict > this.committed,
      `conflict at ${conflict} would truncate committed ${this.committed}`,
    );
    const from = entries.findIndex((e) => e.index === conflict);
    this.truncateFrom(conflict);
    this.appendUnchecked(entries.slice(from), this.lastIndex(), this.lastTerm());
    return lastNew;
  }

  private truncateFrom(index: LogIndex): void {
    if (index > this.lastIndex()) return;
    this.entries.length = index - this.snap.index - 1;
    this.persisting = logIndex(Math.min(this.persisting, index - 1));
    this.stable = logIndex(Math.min(this.stable, index - 1));
    let dropped = false;
    while ((this.confIndexes.at(-1) ?? 0) >= index) {
      this.confIndexes.pop();
      dropped = true;
    }
    if (dropped) this.recomputeMembership();
  }

  private appendUnchecked(entries: readonly Entry[], prevIndex: LogIndex, prevTerm: Term): void {
    let expectIndex = prevIndex + 1;
    let floorTerm = prevTerm;
    assert(
      prevIndex === this.lastIndex(),
      `append after ${prevIndex} but log ends at ${this.lastIndex()}`,
    );
    for (const e of entries) {
      if (e.index !== expectIndex) fail(`entry index ${e.index}, expected ${expectIndex}`);
      if (e.term < floorTerm) fail(`entry ${e.index} has term ${e.term} below ${floorTerm}`);
      this.entries.push(e);
      if (e.kind === 'conf') {
        this.confIndexes.push(e.index);
        this.membershipCache = applyConfChange(this.membershipCache, e.change);
      }
      expectIndex++;
      floorTerm = e.term;
    }
  }

  private recomputeMembership(): void {
    let m = this.snap.membership;
    for (const i of this.confIndexes) {
      const e = this.entry(i);
      assert(e !== undefined && e.kind === 'conf', `conf entry ${i} missing`);
      m = applyConfChange(m, e.change);
    }
    this.membershipCache = m;
  }

  /** Membership as of `index` (which must not be compacted). */
  membershipAt(index: LogIndex): Membership {
    assert(index >= this.snap.index, `membership at compacted index ${index}`);
    let m = this.snap.membership;
    for (const i of this.confIndexes) {
      if (i > index) break;
      const e = this.entry(i);
      assert(e !== undefined && e.kind === 'conf', `conf entry ${i} missing`);
      m = applyConfChange(m, e.change);
    }
    return m;
  }

  commitTo(index: LogIndex): boolean {
    if (index <= this.committed) return false;
    if (index > this.lastIndex()) fail(`commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
    return true;
  }

  /** Entries to hand out for persistence, and marks them handed out. */
  takeUnpersisted(): Entry[] {
    const from = this.persisting - this.snap.index;
    const out = this.entries.slice(from);
    this.persisting = this.lastIndex();
    return out;
  }

  hasUnpersisted(): boolean {
    return this.persisting < this.lastIndex();
  }

  /** Committed entries to hand out for applying, about `bytesMax` of them. */
  takeCommitted(bytesMax: number): Entry[] {
    const hi = Math.min(this.committed, this.persisting);
    if (this.applying >= hi) return [];
    const out = this.slice(logIndex(this.applying + 1), logIndex(hi + 1), Infinity, bytesMax);
    assert(
      out !== undefined,
      `committed entries after ${this.applying} were compacted before applying`,
    );
    const last = out.at(-1);
    if (last !== undefined) this.applying = last.index;
    return out;
  }

  hasCommittedToApply(): boolean {
    return this.applying < Math.min(this.committed, this.persisting);
  }

  /** The runtime made entries up to (index, term) durable. Ignored if since overwritten. */
  stableTo(index: LogIndex, t: Term): void {
    if (index > this.stable && this.matchTerm(index, t) && index <= this.persisting) {
      this.stable = index;
    }
  }

  appliedTo(index: LogIndex): void {
    if (index > this.committed) fail(`applied ${index} beyond committed ${this.committed}`);
    if (index > this.applied) this.applied = index;
  }

  /** Follower: replace the whole log with a snapshot from the leader (§7). */
  restore(s: SnapshotMeta): void {
    assert(
      s.index > this.committed,
      `restoring snapshot ${s.index} at or below commit ${this.committed}`,
    );
    this.snap = s;
    this.latest = s;
    this.entries = [];
    this.confIndexes = [];
    this.membershipCache = s.membership;
    this.committed = s.index;
    this.applying = s.index;
    this.persisting = s.index;
    this.stable = logIndex(Math.min(this.stable, s.index));
    this.snapshotToInstall = s;
  }

  takeSnapshotToInstall(): SnapshotMeta | null {
    const s = this.snapshotToInstall;
    this.snapshotToInstall = null;
    return s;
  }

  hasSnapshotToInstall(): boolean {
    return this.snapshotToInstall !== null;
  }

  /** The runtime installed the snapshot (state machine and disk). */
  snapshotInstalled(s: SnapshotMeta): void {
    if (this.snap.index === s.index && this.snap.term === s.term) {
      this.stable = logIndex(Math.max(this.stable, s.index));
      this.appliedTo(s.index);
    }
  }

  /**
   * The application durably saved a snapshot at `index` (<= applied): it
   * becomes the latest snapshot, unless a newer one is. Entries up to
   * `compactTo` (at most the latest snapshot's index; default `index`) are
   * discarded (§7); those after it stay for followers to catch up from.
   * Calling again with the same `index` and a higher `compactTo` discards
   * more. Returns the latest snapshot's metadata, or null if nothing changes.
   */
  compact(index: LogIndex, compactTo: LogIndex = index): SnapshotMeta | null {
    let changed = false;
    if (index > this.latest.index) {
      assert(index <= this.applied, `snapshot at ${index} beyond applied ${this.applied}`);
      this.latest = this.metaAt(index);
      changed = true;
    }
    if (compactTo > this.snap.index) {
      assert(
        compactTo <= this.latest.index,
        `compact to ${compactTo} beyond the latest snapshot ${this.latest.index}: no snapshot covers the entries`,
      );
      const snap = this.metaAt(compactTo);
      this.entries.splice(0, compactTo - this.snap.index);
      this.confIndexes = this.confIndexes.filter((i) => i > compactTo);
      this.snap = snap;
      changed = true;
    }
    return changed ? this.latest : null;
  }

  /** Snapshot metadata for `index`, which must be in memory (or the snapshot's own). */
  private metaAt(index: LogIndex): SnapshotMeta {
    const t = this.term(index);
    assert(t !== undefined, `no term at ${index} to compact to`);
    return { index, term: t, membership: this.membershipAt(index) };
  }

  bytesBetween(lo: LogIndex, hi: LogIndex): number {
    let bytes = 0;
    for (let i = Math.max(lo, this.snap.index + 1); i <= hi; i++) {
      const e = this.entries[i - this.snap.index - 1];
      if (e !== undefined) bytes += entryBytes(e);
    }
    return bytes;
  }
}
