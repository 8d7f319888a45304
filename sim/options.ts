/**
 * Per-seed options ("swarm testing"): every seed draws its own cluster size,
 * timeouts, network quality, fault mix and limits, so thousands of seeds
 * cover combinations no one would think to write down.
 */

import type { ReadMode } from '../src/raft/config.js';
import type { Prng } from '../src/raft/prng.js';

export type FaultKind =
  | 'partition'
  | 'crash'
  | 'crashLeader'
  | 'crashMajority'
  | 'pause'
  | 'clog'
  | 'drift'
  | 'membership'
  | 'transfer'
  | 'diskSlow'
  | 'diskFail'
  | 'diskCorrupt';

/** Faults of a node's disk (drawn separately, after every other option of a seed). */
export const diskFaultKinds: readonly FaultKind[] = ['diskSlow', 'diskFail', 'diskCorrupt'];

export const faultKinds: readonly FaultKind[] = [
  'partition',
  'crash',
  'crashLeader',
  'crashMajority',
  'pause',
  'clog',
  'drift',
  'membership',
  'transfer',
  ...diskFaultKinds,
];

/**
 * Failover on degradation (issue 5): the limits of each node's real
 * `DegradationDetector` (src/node/degradation.ts), fed with its persists'
 * fsync latencies on the simulated clock. The simulation has no event loop
 * to be late, so only the fsync signal is used.
 */
export interface SimDegradation {
  /** fsync p99 above this is slow (ms). */
  readonly fsyncP99Ms: number;
  /** The sliding window the p99 is computed over (ms). */
  readonly windowMs: number;
  /** How long the p99 must stay above the threshold before the leader hands over (ms). */
  readonly sustainMs: number;
  /** The least time between two handovers of one node (ms). */
  readonly minIntervalMs: number;
}

export interface SimOptions {
  readonly clusterSize: number;
  readonly tickMs: number;
  /** Each node's tick interval is tickMs × (1 + d), |d| <= driftMax. */
  readonly driftMax: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readMode: ReadMode;
  readonly leaseMarginTicks: number;
  readonly appendEntriesMax: number;
  readonly inflightMessagesMax: number;
  /** A node snapshots once it applied this many entries past its last snapshot. */
  readonly snapshotThresholdEntries: number;
  readonly delayMsMin: number;
  readonly delayMsMax: number;
  /** Loss and duplication during the fault phase (the liveness phase has none). */
  readonly lossRate: number;
  readonly dupRate: number;
  /** Most an fsync (datasync, sync, directory sync) takes; other disk operations take no time. */
  readonly diskLatencyMsMax: number;
  /** RaftStorage's WAL segment size limit (small ones exercise rotation and compaction). */
  readonly walSegmentBytesMax: number;
  /** The WAL prepares each next segment, zero-filled (`WalOptions.preallocate`). */
  readonly walPreallocate: boolean;
  /**
   * A crash keeps some whole sectors of each file's last write, any of them,
   * instead of a prefix (`SectorTear`): what a disk may leave of a write
   * over space the file already has.
   */
  readonly sectorTears: boolean;
  readonly clients: number;
  readonly keys: number;
  readonly followerReads: boolean;
  readonly clientTimeoutMs: number;
  readonly thinkMsMax: number;
  /** Clients stop starting ordinary operations past this many (the history stays checkable). */
  readonly opsMax: number;
  readonly faultPhaseMs: number;
  readonly faultIntervalMsMean: number;
  /**
   * Probability that a node becoming leader is crashed soon after, or a node
   * becoming candidate is paused at once: faults aimed at the moments
   * consensus bugs hide in (half-replicated leaders, stale vote responses).
   */
  readonly reactiveFaultRate: number;
  readonly faults: readonly FaultKind[];
  /** Most server processes ever created (initial plus joined). */
  readonly nodesMax: number;
  /** After healing, the cluster must converge within this much simulated time. */
  readonly livenessBudgetMs: number;
  /** A degraded leader hands leadership to a healthy, up-to-date follower; null: off. */
  readonly degradation: SimDegradation | null;
}

export const faultPhaseMsDefault: readonly [number, number] = [10_000, 60_000];

/**
 * The lease must end before any follower's election timeout can elapse: the
 * leader's clock may run slow by driftMax and a follower's fast by driftMax,
 * and each side may lose up to one tick of phase.
 */
export function leaseMarginTicksFor(electionTimeoutTicks: number, driftMax: number): number {
  return 2 + Math.ceil((electionTimeoutTicks * 2 * driftMax) / (1 - driftMax));
}

export function swarmOptions(
  random: Prng,
  faultPhaseMsRange: readonly [number, number] = faultPhaseMsDefault,
): SimOptions {
  const pick = <T>(items: readonly T[]): T => items[random.int(items.length)] as T;
  const chance = (p: number): boolean => random.float() < p;
  const between = (lo: number, hi: number): number => lo + random.float() * (hi - lo);

  const tickMs = 10;
  const clusterSize = pick([1, 2, 3, 3, 3, 4, 5, 5, 5, 6, 7, 7]);
  const electionTimeoutTicks = 5 + random.int(16);
  const heartbeatTicks = 1 + random.int(Math.max(1, Math.floor(electionTimeoutTicks / 5)));
  const driftMax = pick([0, 0.005, 0.01, 0.02, 0.05]);
  const checkQuorum = chance(0.7);
  const leaseMargin = leaseMarginTicksFor(electionTimeoutTicks, driftMax);
  const lease = checkQuorum && chance(0.5) && leaseMargin < electionTimeoutTicks;
  const delayMsMin = between(0.1, 1);
  const delayMsMax = delayMsMin + between(1, Math.min(30, (electionTimeoutTicks * tickMs) / 4));
  const clientTimeoutMs = 500 + random.int(2500);
  const [phaseMin, phaseMax] = faultPhaseMsRange;
  const faults = faultKinds.filter((kind) => !diskFaultKinds.includes(kind) && chance(0.6));
  const appendEntriesMax = chance(0.3) ? 1 + random.int(64) : 4096;
  const inflightMessagesMax = chance(0.3) ? 1 + random.int(8) : 256;
  const snapshotThresholdEntries = chance(0.8) ? 5 + random.int(96) : 1000;
  const keys = 1 + random.int(10);
  const options = {
    clusterSize,
    tickMs,
    driftMax,
    electionTimeoutTicks,
    heartbeatTicks,
    preVote: chance(0.5),
    checkQuorum,
    readMode: (lease ? 'lease' : 'readIndex') as ReadMode,
    leaseMarginTicks: lease ? leaseMargin : 2,
    appendEntriesMax,
    inflightMessagesMax,
    snapshotThresholdEntries,
    delayMsMin,
    delayMsMax,
    lossRate: chance(0.3) ? 0 : between(0, 0.3),
    dupRate: chance(0.5) ? 0 : between(0, 0.1),
    diskLatencyMsMax: chance(0.8) ? between(0.1, 5) : between(5, 30),
    clients: 1 + random.int(10),
    keys,
    followerReads: chance(0.5),
    clientTimeoutMs,
    thinkMsMax: pick([5, 20, 50, 200]),
    // About a thousand operations per key keeps each key's search tractable.
    opsMax: 1000 * keys,
    faultPhaseMs: Math.round(between(phaseMin, phaseMax)),
    faultIntervalMsMean: between(100, 2000),
    faults,
    nodesMax: clusterSize + 4,
    livenessBudgetMs: livenessBudgetMsFor({
      clientTimeoutMs,
      electionTimeoutTicks,
      tickMs,
      delayMsMax,
      snapshotThresholdEntries,
      entriesPerRoundTrip: Math.min(appendEntriesMax * inflightMessagesMax, 1000),
    }),
  };
  // Drawn last, so adding them left every earlier draw of a seed unchanged.
  const reactiveFaultRate = pick([0, 0.1, 0.3, 0.6]);
  const diskFaults = diskFaultKinds.filter(() => chance(0.5));
  const walSegmentBytesMax = pick([2048, 16 * 1024, 256 * 1024, 64 * 1024 * 1024]);
  const degradation = swarmDegradation(random);
  // Prepared (zero-filled) segments, as `tandem node` runs, where a segment
  // is small enough to fill cheaply on the simulated disk.
  const walPreallocate = walSegmentBytesMax <= 256 * 1024 && chance(0.5);
  const sectorTears = chance(0.5);
  return {
    ...options,
    faults: [...faults, ...diskFaults],
    reactiveFaultRate,
    walSegmentBytesMax,
    walPreallocate,
    sectorTears,
    degradation,
  };
}

/**
 * Off in half the seeds; otherwise limits scaled down from the server's
 * defaults (500 ms over 10 s, a minute between handovers) so that a
 * `diskSlow` spell (0.2–4 s of up to +10–310 ms per operation) can trigger
 * it within a run. The threshold stays above the healthy disk's worst fsync
 * (`diskLatencyMsMax` is at most 30 ms), so only a slow disk is degraded.
 */
function swarmDegradation(random: Prng): SimDegradation | null {
  const pick = <T>(items: readonly T[]): T => items[random.int(items.length)] as T;
  if (random.float() < 0.5) return null;
  return {
    fsyncP99Ms: pick([40, 80, 150]),
    windowMs: pick([500, 1_000, 2_000, 5_000]),
    sustainMs: pick([0, 500, 1_000, 3_000]),
    minIntervalMs: pick([1_000, 5_000, 20_000]),
  };
}

/**
 * How long a healed cluster may take to converge: a client's pending
 * operation timing out, a few dozen election timeouts for elections (split
 * votes, restarted nodes with higher terms), and a lagging follower catching
 * up on up to two snapshot intervals of entries at the flow-control limit.
 */
export function livenessBudgetMsFor(p: {
  readonly clientTimeoutMs: number;
  readonly electionTimeoutTicks: number;
  readonly tickMs: number;
  readonly delayMsMax: number;
  readonly snapshotThresholdEntries: number;
  readonly entriesPerRoundTrip: number;
}): number {
  const electionsMs = 50 * p.electionTimeoutTicks * p.tickMs;
  const roundTrips = Math.ceil((2 * p.snapshotThresholdEntries) / p.entriesPerRoundTrip);
  const catchUpMs = roundTrips * 2 * p.delayMsMax;
  return Math.round(p.clientTimeoutMs + electionsMs + catchUpMs);
}
