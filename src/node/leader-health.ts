/**
 * Failover on degradation, wired to a running node (issue 5): samples this
 * node's fsync latency and event-loop delay into a `DegradationDetector`,
 * answers the leader's question "are you healthy?", and, on the leader,
 * hands leadership over once the detector says this node stayed slow.
 *
 * The transferee must be close behind (recently active, a bounded lag that
 * the transfer itself closes) and must say it is clearly healthy
 * itself healthy when asked: if every node's disk is equally slow, moving
 * leadership gains nothing and would only cost an election's worth of
 * writes, so the leader keeps it and says why.
 */

import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { array, integer, type Reply } from '../kv/reply.js';
import type { NodeId } from '../raft/types.js';
import {
  DegradationDetector,
  type DegradationLimits,
  degradationDefaults,
  type HealthState,
  takeoverRefusal,
} from './degradation.js';

/** What the monitor needs from its node. */
export interface LeaderHealthHost {
  isLeader(): boolean;
  /** The voters that could take over (active, close behind), most caught up first. */
  transferees(): readonly NodeId[];
  /** Asks `to` for its health; null if it did not answer in time. */
  askHealth(to: NodeId): Promise<HealthState | null>;
  /** Starts a leadership transfer to `to`; the refusal's message if refused, else null. */
  transfer(to: NodeId): string | null;
  readonly log: Logger;
}

/** Voters asked per check, at most (each may take up to the ask timeout). */
const candidatesMax = 4;

/** A health answer as a Reply: [fsync p99 µs, loop delay p99 µs, slow text]. */
export function encodeHealth(state: HealthState): Reply {
  return array([
    integer(Math.round(state.fsyncP99Ms * 1000)),
    integer(Math.round(state.loopDelayP99Ms * 1000)),
    { kind: 'bulk', value: state.slow },
  ]);
}

/** The inverse of `encodeHealth`; null for any other reply (an error, an old peer). */
export function decodeHealth(reply: Reply): HealthState | null {
  if (reply.kind !== 'array' || reply.items.length !== 3) return null;
  const [fsync, loop, slow] = reply.items;
  if (fsync?.kind !== 'integer' || loop?.kind !== 'integer' || slow?.kind !== 'bulk') return null;
  return {
    fsyncP99Ms: Number(fsync.value) / 1000,
    loopDelayP99Ms: Number(loop.value) / 1000,
    slow: slow.value,
  };
}

export class LeaderHealth {
  private readonly detector: DegradationDetector;
  private readonly limits: DegradationLimits;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 20 });
  /** Why the last refusal was logged (one line per reason per degraded episode), or null. */
  private refusalLogged: 'noCandidate' | 'candidatesSlow' | null = null;
  private checking = false;
  /** Handovers this node started because it was degraded (a metric). */
  handovers = 0;

  constructor(
    private readonly host: LeaderHealthHost,
    limits: Partial<DegradationLimits> = {},
    /** Milliseconds, monotonic (tests drive their own). */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.limits = { ...degradationDefaults, ...limits };
    this.detector = new DegradationDetector(this.limits);
  }

  start(): void {
    this.loopDelay.enable();
  }

  stop(): void {
    this.loopDelay.disable();
  }

  /** One fsync (or persist) took `ms`. */
  recordFsync(ms: number): void {
    this.detector.record('fsync', this.now(), ms);
  }

  /** This node's health now, as a follower answers it. */
  state(): HealthState {
    return this.detector.state(this.now());
  }

  /**
   * Samples the event-loop delay; on the leader, checks the verdict and
   * hands over when it says so. Call it every second.
   */
  async cycle(): Promise<void> {
    const now = this.now();
    const delayP99Ms = this.loopDelay.percentile(99) / 1e6;
    if (Number.isFinite(delayP99Ms)) this.detector.record('loopDelay', now, delayP99Ms);
    this.loopDelay.reset();
    if (this.checking || !this.host.isLeader()) return;
    const verdict = this.detector.check(now);
    if (!verdict.degraded) {
      if (verdict.reason === 'healthy') this.refusalLogged = null;
      return;
    }
    this.checking = true;
    try {
      await this.handOver(verdict.reason, now);
    } finally {
      this.checking = false;
    }
  }

  private async handOver(why: string, now: number): Promise<void> {
    const log = this.host.log;
    const candidates = this.host.transferees().slice(0, candidatesMax);
    if (candidates.length === 0) {
      this.refuseOnce(
        'noCandidate',
        why,
        'leader degraded, but no follower is active and close behind',
      );
      return;
    }
    const refusals: string[] = [];
    let to: NodeId | undefined;
    for (const candidate of candidates) {
      const theirs = await this.host.askHealth(candidate);
      const refusal = theirs === null ? 'did not answer' : takeoverRefusal(this.limits, theirs);
      if (refusal === null) {
        to = candidate;
        break;
      }
      refusals.push(`${candidate} ${refusal}`);
    }
    if (to === undefined) {
      this.refuseOnce(
        'candidatesSlow',
        why,
        `leader degraded, but keeps leadership: ${refusals.join('; ')}`,
      );
      return;
    }
    if (!this.host.isLeader()) return; // deposed while asking
    this.refusalLogged = null;
    log.warn({ to, why }, 'leader degraded: handing leadership over');
    this.handovers++;
    this.detector.handedOver(now);
    const refused = this.host.transfer(to);
    if (refused !== null) log.warn({ to, refused }, 'leadership transfer refused');
  }

  /**
   * Logs a refusal once per reason: a leader that first found no follower
   * close behind, then found them caught up but as slow, says both.
   */
  private refuseOnce(reason: 'noCandidate' | 'candidatesSlow', why: string, message: string): void {
    if (this.refusalLogged === reason) return;
    this.refusalLogged = reason;
    this.host.log.warn({ why }, message);
  }
}
