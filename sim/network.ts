/**
 * The simulated network: per-message random delay (so messages reorder),
 * loss, duplication, partitions (blocked one-way links) and clogged links
 * (a large extra delay for a while). It only decides fates; the simulation
 * schedules the deliveries.
 */
import type { Random } from '../src/raft/prng.js';
import type { NodeId } from '../src/raft/types.js';
import type { Partition } from './partitions.js';

export interface NetworkOptions {
  readonly delayMsMin: number;
  readonly delayMsMax: number;
  /** Probability that a message is lost. */
  readonly lossRate: number;
  /** Probability that a message is delivered twice. */
  readonly dupRate: number;
}

export type DropReason = 'loss' | 'partition' | 'down';

export type Route =
  | { readonly delivered: false; readonly reason: DropReason }
  | { readonly delivered: true; readonly delaysMs: readonly number[] };

interface Clog {
  readonly untilMs: number;
  readonly extraMsMax: number;
}

export class Network {
  lossRate: number;
  dupRate: number;
  private readonly delayMsMin: number;
  private readonly delayMsMax: number;
  private readonly blocked = new Map<NodeId, Set<NodeId>>();
  private readonly clogs = new Map<NodeId, Map<NodeId, Clog>>();
  private partitionCurrent: Partition | null = null;

  constructor(
    private readonly random: Random,
    options: NetworkOptions,
  ) {
    if (!(options.delayMsMin >= 0 && options.delayMsMax >= options.delayMsMin)) {
      throw new RangeError('network: need 0 <= delayMsMin <= delayMsMax');
    }
    this.delayMsMin = options.delayMsMin;
    this.delayMsMax = options.delayMsMax;
    this.lossRate = options.lossRate;
    this.dupRate = options.dupRate;
  }

  get partition(): Partition | null {
    return this.partitionCurrent;
  }

  /** Replaces any current partition. */
  setPartition(partition: Partition): void {
    this.blocked.clear();
    for (const [from, to] of partition.blocked) {
      let set = this.blocked.get(from);
      if (set === undefined) {
        set = new Set();
        this.blocked.set(from, set);
      }
      set.add(to);
    }
    this.partitionCurrent = partition;
  }

  clearPartition(): void {
    this.blocked.clear();
    this.partitionCurrent = null;
  }

  /** Delays messages from `from` to `to` by up to `extraMsMax` more until `untilMs`. */
  clog(from: NodeId, to: NodeId, untilMs: number, extraMsMax: number): void {
    let row = this.clogs.get(from);
    if (row === undefined) {
      row = new Map();
      this.clogs.set(from, row);
    }
    row.set(to, { untilMs, extraMsMax });
  }

  /** Ends partitions, clogs, loss and duplication: a healthy network again. */
  heal(): void {
    this.clearPartition();
    this.clogs.clear();
    this.lossRate = 0;
    this.dupRate = 0;
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.get(from)?.has(to) ?? false;
  }

  /** Decides the fate of one message sent now. */
  route(from: NodeId, to: NodeId, nowMs: number): Route {
    if (this.isBlocked(from, to)) return { delivered: false, reason: 'partition' };
    if (this.lossRate > 0 && this.random.float() < this.lossRate) {
      return { delivered: false, reason: 'loss' };
    }
    const first = this.delayMs(from, to, nowMs);
    if (this.dupRate > 0 && this.random.float() < this.dupRate) {
      return { delivered: true, delaysMs: [first, this.delayMs(from, to, nowMs)] };
    }
    return { delivered: true, delaysMs: [first] };
  }

  private delayMs(from: NodeId, to: NodeId, nowMs: number): number {
    let delay = this.delayMsMin + this.random.float() * (this.delayMsMax - this.delayMsMin);
    const clog = this.clogs.get(from)?.get(to);
    if (clog !== undefined) {
      if (clog.untilMs > nowMs) delay += this.random.float() * clog.extraMsMax;
      else this.clogs.get(from)?.delete(to);
    }
    return delay;
  }
}
