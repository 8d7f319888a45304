import { assert } from './assert.js';
import type { LogIndex, NodeId } from './types.js';

/** A read waiting for a quorum round that started after it arrived (thesis §6.4). */
export interface PendingRead {
  readonly requester: NodeId;
  readonly context: string;
  readonly index: LogIndex;
  /** The first heartbeat round sent after the read arrived; its confirmation makes the read safe. */
  readonly round: number;
}

/**
 * The leader's ReadIndex bookkeeping. Reads that arrive between two rounds
 * share the next round, so one heartbeat round confirms a whole batch.
 * Rounds are numbered; heartbeats carry the number and responses echo it.
 */
export class ReadIndexTracker {
  /** The number of the last round sent. */
  private round = 0;
  private roundWanted = false;
  private readonly acked = new Map<NodeId, number>();
  private readonly pending: PendingRead[] = [];
  private pendingHead = 0;
  /** The tick each recent round was sent at, for leases; bounded. */
  private readonly sentTicks = new Map<number, number>();
  private static readonly sentTicksMax = 1024;

  constructor(private readonly pendingMax: number) {}

  pendingCount(): number {
    return this.pending.length - this.pendingHead;
  }

  isFull(): boolean {
    return this.pendingCount() >= this.pendingMax;
  }

  /** Queues a read at `index`; it waits for the next round. */
  add(requester: NodeId, context: string, index: LogIndex): void {
    assert(!this.isFull(), 'read queue over its limit');
    this.pending.push({ requester, context, index, round: this.round + 1 });
    this.roundWanted = true;
  }

  wantsRound(): boolean {
    return this.roundWanted;
  }

  /** Starts a new round at `tick`; returns its number for the heartbeats. */
  startRound(tick: number): number {
    this.round++;
    this.roundWanted = false;
    this.sentTicks.set(this.round, tick);
    if (this.sentTicks.size > ReadIndexTracker.sentTicksMax) {
      const oldest = this.sentTicks.keys().next().value;
      if (oldest !== undefined) this.sentTicks.delete(oldest);
    }
    return this.round;
  }

  currentRound(): number {
    return this.round;
  }

  ack(from: NodeId, round: number): void {
    if (round > this.round || round <= 0) return;
    if (round > (this.acked.get(from) ?? 0)) this.acked.set(from, round);
  }

  ackedRound(id: NodeId): number {
    return this.acked.get(id) ?? 0;
  }

  /** The tick at which `round` was sent, if still remembered. */
  sentTick(round: number): number | undefined {
    return this.sentTicks.get(round);
  }

  /** Removes and returns the reads whose round is at or below `confirmedRound`. */
  release(confirmedRound: number): PendingRead[] {
    const out: PendingRead[] = [];
    while (this.pendingHead < this.pending.length) {
      const r = this.pending[this.pendingHead];
      if (r === undefined || r.round > confirmedRound) break;
      out.push(r);
      this.pendingHead++;
    }
    if (this.pendingHead === this.pending.length) {
      this.pending.length = 0;
      this.pendingHead = 0;
    } else if (this.pendingHead > 1024) {
      this.pending.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
    return out;
  }
}
