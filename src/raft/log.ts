import { assert, fail } from './assert.js';
import { NumberColumn, RefColumn } from './columns.js';
import { applyConfChange } from './membership.js';
import type { ConfChange, Entry, LogIndex, Membership, SnapshotMeta, Term } from './types.js';
import { confEntryBytes, entryOverheadBytes, logIndex } from './types.js';

/** How many of the last appended entries `RaftLog.recent` keeps (a power of 2). */
const recentEntriesMax = 2048;
const recentMask = recentEntriesMax - 1;

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
 *
 * The entries are kept column by column, not as the Entry objects they
 * arrive in. A node holds every entry since its last snapshot (100,000 and
 * more under load), so each entry and its payload's view outlive the young
 * generation: the collector copied them twice and then marked them until
 * they were compacted away, 150 heap bytes per entry. Here an entry is a
 * term, its payload's buffer, offset and length: a slot in each of four
 * columns, and no object of its own.
 *
 * The Entry objects handed out (`entry`, `slice`, `takeUnpersisted`,
 * `takeCommitted`) are the ones appended while an entry is among the last
 * `recentEntriesMax` appended: those are what persisting, replicating and
 * applying ask for, each a few times, within milliseconds of the append,
 * and they die young. An older entry is made anew, a normal entry's data
 * a new view of the bytes it was appended with (the same buffer, offset
 * and length; not a copy).
 */
export class RaftLog {
  private snap: SnapshotMeta;
  /** The newest snapshot stored durably; at or after `snap`. */
  private latest: SnapshotMeta;
  /**
   * Entry snap.index + 1 + k has term terms[k] (non-decreasing) and, when
   * normal, the payload of lengths[k] bytes at offsets[k] in buffers[k]; a
   * conf entry has null there and its change in `confChanges`. Invariant:
   * the four columns have the same length. (Columns, not arrays: see
   * columns.ts.)
   */
  private readonly terms = new NumberColumn();
  private readonly buffers = new RefColumn<ArrayBufferLike | null>();
  private readonly offsets = new NumberColumn();
  private readonly lengths = new NumberColumn();
  /** The four, for what is done to all of them at once. */
  private readonly columns = [this.terms, this.buffers, this.offsets, this.lengths] as const;
  /** Indexes of the conf entries in the log, ascending, and their changes. */
  private confIndexes: LogIndex[] = [];
  private confChanges: ConfChange[] = [];
  /**
   * The entry objects last appended, at index modulo its size. Invariant: a
   * slot holds nothing or the log's entry at an index congruent to the slot
   * (truncation, compaction and restore clear the slots of what they drop).
   * Allocated once, so no dropped table keeps young entries alive.
   */
  private readonly recent: (Entry | undefined)[] = new Array<Entry | undefined>(
    recentEntriesMax,
  ).fill(undefined);
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
    return logIndex(this.snap.index + this.terms.length);
  }

  lastTerm(): Term {
    return (this.terms.last() as Term | undefined) ?? this.snap.term;
  }

  /** The term at `index`, or undefined when compacted away or beyond the end. */
  term(index: LogIndex): Term | undefined {
    if (index === this.snap.index) return this.snap.term;
    return this.terms.get(index - this.snap.index - 1) as Term | undefined;
  }

  /**
   * The entry at `index` (the object appended while it is recent, else a new
   * one), or undefined when compacted away or beyond the end.
   */
  entry(index: LogIndex): Entry | undefined {
    const k = index - this.snap.index - 1;
    return k >= 0 && k < this.terms.length ? this.entryAt(k) : undefined;
  }

  /** What `entryBytes` counts for the entry at `index`, without making it; undefined when not in memory. */
  entryBytesAt(index: LogIndex): number | undefined {
    const k = index - this.snap.index - 1;
    return k >= 0 && k < this.terms.length ? this.bytesAt(k) : undefined;
  }

  /** The entry in column slot `k`, which must be in range. */
  private entryAt(k: number): Entry {
    const term = this.terms.get(k) as Term;
    const index = logIndex(this.snap.index + 1 + k);
    const recent = this.recent[index & recentMask];
    if (recent !== undefined && recent.index === index) {
      if (recent.term !== term)
        fail(`recent entry ${index} has term ${recent.term}, the log ${term}`);
      return recent;
    }
    const buffer = this.buffers.get(k);
    if (buffer === undefined) fail(`entry ${index} missing inside the log`);
    if (buffer === null) return { kind: 'conf', term, index, change: this.confChangeAt(index) };
    const data = new Uint8Array(buffer, this.offsets.get(k), this.lengths.get(k));
    return { kind: 'normal', term, index, data };
  }

  private confChangeAt(index: LogIndex): ConfChange {
    const c = this.confChanges[this.confIndexes.lastIndexOf(index)];
    assert(c !== undefined, `conf entry ${index} missing`);
    return c;
  }

  /** What `entryBytes` counts for the entry in column slot `k`. */
  private bytesAt(k: number): number {
    return (
      entryOverheadBytes +
      (this.buffers.get(k) === null ? confEntryBytes : (this.lengths.get(k) ?? 0))
    );
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
    const first = lo - this.snap.index - 1;
    for (let k = first; k < hi - this.snap.index - 1 && out.length < entriesMax; k++) {
      bytes += this.bytesAt(k);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(this.entryAt(k));
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
    if (conflict <= this.committed) {
      fail(`conflict at ${conflict} would truncate committed ${this.committed}`);
    }
    const from = entries.findIndex((e) => e.index === conflict);
    this.truncateFrom(conflict);
    this.appendUnchecked(entries.slice(from), this.lastIndex(), this.lastTerm());
    return lastNew;
  }

  private truncateFrom(index: LogIndex): void {
    if (index > this.lastIndex()) return;
    this.forgetRecent(index, this.lastIndex());
    const keep = index - this.snap.index - 1;
    for (const c of this.columns) c.truncate(keep);
    this.persisting = logIndex(Math.min(this.persisting, index - 1));
    this.stable = logIndex(Math.min(this.stable, index - 1));
    let dropped = false;
    while ((this.confIndexes.at(-1) ?? 0) >= index) {
      this.confIndexes.pop();
      this.confChanges.pop();
      dropped = true;
    }
    if (dropped) this.recomputeMembership();
  }

  private appendUnchecked(entries: readonly Entry[], prevIndex: LogIndex, prevTerm: Term): void {
    let expectIndex = prevIndex + 1;
    let floorTerm = prevTerm;
    if (prevIndex !== this.lastIndex()) {
      fail(`append after ${prevIndex} but log ends at ${this.lastIndex()}`);
    }
    for (const e of entries) {
      if (e.index !== expectIndex) fail(`entry index ${e.index}, expected ${expectIndex}`);
      if (e.term < floorTerm) fail(`entry ${e.index} has term ${e.term} below ${floorTerm}`);
      this.terms.push(e.term);
      this.recent[e.index & recentMask] = e;
      if (e.kind === 'normal') {
        this.buffers.push(e.data.buffer);
        this.offsets.push(e.data.byteOffset);
        this.lengths.push(e.data.byteLength);
      } else {
        this.buffers.push(null);
        this.offsets.push(0);
        this.lengths.push(0);
        this.confIndexes.push(e.index);
        this.confChanges.push(e.change);
        this.membershipCache = applyConfChange(this.membershipCache, e.change);
      }
      expectIndex++;
      floorTerm = e.term;
    }
  }

  private recomputeMembership(): void {
    let m = this.snap.membership;
    for (const change of this.confChanges) m = applyConfChange(m, change);
    this.membershipCache = m;
  }

  /** Membership as of `index` (which must not be compacted). */
  membershipAt(index: LogIndex): Membership {
    assert(index >= this.snap.index, `membership at compacted index ${index}`);
    let m = this.snap.membership;
    for (
      let c = 0;
      c < this.confIndexes.length && (this.confIndexes[c] as LogIndex) <= index;
      c++
    ) {
      m = applyConfChange(m, this.confChanges[c] as ConfChange);
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
    const out: Entry[] = [];
    for (let k = this.persisting - this.snap.index; k < this.terms.length; k++) {
      out.push(this.entryAt(k));
    }
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
    if (out === undefined) {
      fail(`committed entries after ${this.applying} were compacted before applying`);
    }
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
    this.recent.fill(undefined);
    for (const c of this.columns) c.truncate(0);
    this.confIndexes = [];
    this.confChanges = [];
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
      this.forgetRecent(logIndex(this.snap.index + 1), compactTo);
      const drop = compactTo - this.snap.index;
      for (const c of this.columns) c.dropFront(drop);
      const confKept = this.confIndexes.findIndex((i) => i > compactTo);
      const confDropped = confKept === -1 ? this.confIndexes.length : confKept;
      this.confIndexes.splice(0, confDropped);
      this.confChanges.splice(0, confDropped);
      this.snap = snap;
      changed = true;
    }
    return changed ? this.latest : null;
  }

  /** Clears the recent slots of the entries in [from, to] leaving the log (at most every slot once). */
  private forgetRecent(from: LogIndex, to: LogIndex): void {
    for (let i = Math.max(from, to - recentEntriesMax + 1); i <= to; i++) {
      if (this.recent[i & recentMask]?.index === i) this.recent[i & recentMask] = undefined;
    }
  }

  /** Snapshot metadata for `index`, which must be in memory (or the snapshot's own). */
  private metaAt(index: LogIndex): SnapshotMeta {
    const t = this.term(index);
    assert(t !== undefined, `no term at ${index} to compact to`);
    return { index, term: t, membership: this.membershipAt(index) };
  }

  bytesBetween(lo: LogIndex, hi: LogIndex): number {
    let bytes = 0;
    const end = Math.min(hi - this.snap.index, this.terms.length);
    for (let k = Math.max(lo - this.snap.index - 1, 0); k < end; k++) bytes += this.bytesAt(k);
    return bytes;
  }
}
