import { assert, fail } from './assert.js';
import type { LogIndex } from './types.js';
import { logIndex } from './types.js';

/**
 * Append messages sent to one follower and not yet acknowledged, bounded in
 * count and bytes (flow control, as etcd-raft's Inflights). FIFO: entries are
 * acknowledged in log order.
 */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    private readonly messagesMax: number,
    private readonly bytesMax: number,
  ) {}

  count(): number {
    return this.lastIndexes.length - this.head;
  }

  full(): boolean {
    return this.count() >= this.messagesMax || this.bytes >= this.bytesMax;
  }

  add(lastIndex: LogIndex, sizeBytes: number): void {
    assert(!this.full(), 'adding to full inflights');
    const tail = this.lastIndexes.at(-1);
    assert(tail === undefined || this.count() === 0 || lastIndex >= tail, 'inflights out of order');
    this.lastIndexes.push(lastIndex);
    this.sizes.push(sizeBytes);
    this.bytes += sizeBytes;
  }

  /** Frees every message whose last entry is at or below `index`. */
  freeLE(index: LogIndex): void {
    while (this.head < this.lastIndexes.length && (this.lastIndexes[this.head] ?? 0) <= index) {
      this.bytes -= this.sizes[this.head] ?? 0;
      this.head++;
    }
    this.compactIfSparse();
  }

  /** Frees the oldest message: a heartbeat response proves the link works (etcd-raft). */
  freeFirst(): void {
    if (this.count() === 0) return;
    this.bytes -= this.sizes[this.head] ?? 0;
    this.head++;
    this.compactIfSparse();
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.head = 0;
    this.bytes = 0;
  }

  private compactIfSparse(): void {
    if (this.head === this.lastIndexes.length) {
      this.reset();
    } else if (this.head > 64 && this.head * 2 > this.lastIndexes.length) {
      this.lastIndexes.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
  }
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * The leader's view of one follower (etcd-raft's Progress).
 * - probe: one append at a time until the follower's match is found;
 * - replicate: appends are pipelined, `next` advances optimistically;
 * - snapshot: waiting for a snapshot transfer to finish.
 * Invariant: match < next.
 */
export class Progress {
  match: LogIndex = logIndex(0);
  next: LogIndex;
  state: ProgressState = 'probe';
  /** Probe state: an append is outstanding; wait for a response or a heartbeat response. */
  probeSent = false;
  pendingSnapshot: LogIndex = logIndex(0);
  /** Heard from since the last CheckQuorum round (thesis §6.2). */
  recentActive = false;
  /**
   * The highest commit index sent to this follower that it can act on (by an
   * append up to the entries it carried, or a heartbeat). A lost message only
   * delays the follower's apply until the next heartbeat, never safety.
   */
  commitSent: LogIndex = logIndex(0);
  /**
   * The leader's tick count when `match` last moved (`maybeUpdate`);
   * -1 before it ever did. Tells a pipeline that is draining from one that
   * may have lost an append.
   */
  matchMovedTick = -1;
  readonly inflights: Inflights;

  constructor(next: LogIndex, inflightMessagesMax: number, inflightBytesMax: number) {
    this.next = next;
    this.inflights = new Inflights(inflightMessagesMax, inflightBytesMax);
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      this.next = logIndex(Math.max(this.match + 1, this.pendingSnapshot + 1));
    } else {
      this.next = logIndex(this.match + 1);
    }
    this.reset('probe');
  }

  becomeReplicate(): void {
    this.next = logIndex(this.match + 1);
    this.reset('replicate');
  }

  becomeSnapshot(snapshotIndex: LogIndex): void {
    this.reset('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = logIndex(0);
    this.inflights.reset();
  }

  /**
   * The follower acknowledged entries up to `index` at the leader's tick
   * `tick`. Returns whether match moved.
   */
  maybeUpdate(index: LogIndex, tick: number): boolean {
    if (index <= this.match) return false;
    this.match = index;
    this.matchMovedTick = tick;
    this.next = logIndex(Math.max(this.next, index + 1));
    this.probeSent = false;
    return true;
  }

  /**
   * Whether match has not moved during the leader's tick `tick` (the
   * current one): appends in flight may have been lost, or the follower is
   * slow. While it moves, the pipeline is draining.
   */
  stalledIn(tick: number): boolean {
    return this.matchMovedTick < tick;
  }

  /**
   * The follower rejected an append at `rejected`; `candidateNext` is where
   * the back-off hint says to retry. Returns false for stale rejections.
   */
  maybeDecrTo(rejected: LogIndex, candidateNext: LogIndex): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      // The pipeline broke (lost or reordered appends): fall back to probing,
      // which also empties the in-flight window.
      this.reset('probe');
      this.next = logIndex(Math.max(this.match + 1, Math.min(candidateNext, rejected)));
      return true;
    }
    if (this.state === 'snapshot') return false;
    if (this.next - 1 !== rejected) return false;
    this.next = logIndex(Math.max(this.match + 1, Math.min(candidateNext, rejected)));
    this.probeSent = false;
    return true;
  }

  /** Records that a message told this follower the commit index up to `index`; true if that is news. */
  toldCommit(index: LogIndex): boolean {
    if (index <= this.commitSent) return false;
    this.commitSent = index;
    return true;
  }

  /** Records an append carrying entries up to `lastIndex`. */
  sentAppend(lastIndex: LogIndex, sizeBytes: number, entryCount: number): void {
    if (this.state === 'replicate') {
      // An empty append (sent when asked to though nothing is new) takes no window: nothing to acknowledge.
      if (entryCount > 0) {
        this.next = logIndex(lastIndex + 1);
        this.inflights.add(lastIndex, sizeBytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    } else {
      assert(false, 'append sent in snapshot state');
    }
    if (this.match >= this.next) fail(`progress match ${this.match} >= next ${this.next}`);
  }
}
