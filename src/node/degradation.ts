/**
 * Failover on degradation (issue 5): a leader whose disk (fsync latency) or
 * event loop (delay) stays slow hands leadership to a healthy, up-to-date
 * follower, rather than slowing every write of the cluster.
 *
 * The detector is pure and driven by the caller's clock: samples go into a
 * sliding window; a check computes the window's p99 for each signal, and the
 * leader is degraded once some p99 has stayed above its threshold for
 * `sustainMs` without interruption (one healthy check resets it: hysteresis).
 * After a handover, none is advised again before `minIntervalMs`.
 */

export interface DegradationLimits {
  /** fsync p99 above this is slow (ms). */
  readonly fsyncP99Ms: number;
  /** Event-loop delay p99 above this is slow (ms). */
  readonly loopDelayP99Ms: number;
  /** The sliding window the p99s are computed over (ms). */
  readonly windowMs: number;
  /** How long a p99 must stay above its threshold (ms). */
  readonly sustainMs: number;
  /** The least time between two handovers (ms). */
  readonly minIntervalMs: number;
}

export const degradationDefaults: DegradationLimits = {
  fsyncP99Ms: 500,
  loopDelayP99Ms: 500,
  windowMs: 10_000,
  sustainMs: 10_000,
  minIntervalMs: 60_000,
};

/** Samples kept per signal, at most (a limit on everything). */
const samplesMax = 10_000;

export type Signal = 'fsync' | 'loopDelay';

/** One node's p99s now; `slow` names the signals above their thresholds ('' if none). */
export interface HealthState {
  readonly fsyncP99Ms: number;
  readonly loopDelayP99Ms: number;
  readonly slow: string;
}

export interface Verdict {
  /** Hand leadership over now. */
  readonly degraded: boolean;
  /** Why, for the log line: which p99 is above which threshold, and for how long. */
  readonly reason: string;
  readonly fsyncP99Ms: number;
  readonly loopDelayP99Ms: number;
}

/**
 * Samples of one signal, oldest first, at most `samplesMax`: fixed rings,
 * so recording stays O(1) and allocation-free on the persist path. The p99
 * sorts a typed copy: an Array sorted with a comparator boxed both numbers
 * of every comparison, 4-5 MB of garbage per check with a full window.
 */
class Window {
  /** A ring of samples: the oldest live one at `start`, `count` of them. */
  private readonly times = new Float64Array(samplesMax);
  private readonly values = new Float64Array(samplesMax);
  private start = 0;
  private count = 0;
  /** Where p99 sorts a copy of the live values (a typed array sorts numbers unboxed). */
  private readonly scratch = new Float64Array(samplesMax);

  add(atMs: number, value: number): void {
    if (this.count === samplesMax) this.drop();
    const at = (this.start + this.count) % samplesMax;
    this.times[at] = atMs;
    this.values[at] = value;
    this.count++;
  }

  /** p99 of the samples newer than `sinceMs` (0 with none). */
  p99(sinceMs: number): number {
    while (this.count > 0 && (this.times[this.start] as number) < sinceMs) this.drop();
    if (this.count === 0) return 0;
    for (let i = 0; i < this.count; i++) {
      this.scratch[i] = this.values[(this.start + i) % samplesMax] as number;
    }
    const live = this.scratch.subarray(0, this.count).sort();
    return live[Math.min(this.count - 1, Math.floor(this.count * 0.99))] as number;
  }

  private drop(): void {
    this.start = (this.start + 1) % samplesMax;
    this.count--;
  }
}

/**
 * Why a follower reporting `theirs` should not take over from a degraded
 * leader, or null if it should. It must be clearly healthy, each p99 at most
 * half its threshold, not merely just below it: a disk shared by every node
 * (or equally loaded ones) would otherwise pass leadership round the cluster
 * whenever the p99s wander about the threshold.
 */
export function takeoverRefusal(limits: DegradationLimits, theirs: HealthState): string | null {
  if (theirs.slow !== '') return `is slow too: ${theirs.slow}`;
  const near: string[] = [];
  if (theirs.fsyncP99Ms > limits.fsyncP99Ms / 2) {
    near.push(`fsync p99 ${Math.round(theirs.fsyncP99Ms)} ms > ${limits.fsyncP99Ms / 2} ms`);
  }
  if (theirs.loopDelayP99Ms > limits.loopDelayP99Ms / 2) {
    near.push(
      `event-loop delay p99 ${Math.round(theirs.loopDelayP99Ms)} ms > ${limits.loopDelayP99Ms / 2} ms`,
    );
  }
  return near.length === 0 ? null : `is not clearly healthy: ${near.join(', ')}`;
}

export class DegradationDetector {
  private readonly windows: Record<Signal, Window> = {
    fsync: new Window(),
    loopDelay: new Window(),
  };
  /** Since when some p99 has been above its threshold, or null. */
  private slowSinceMs: number | null = null;
  private lastHandoverMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly limits: DegradationLimits = degradationDefaults) {}

  record(signal: Signal, atMs: number, valueMs: number): void {
    this.windows[signal].add(atMs, valueMs);
  }

  /**
   * The window's p99s at `nowMs` and which signals are above their
   * thresholds, without hysteresis: what a follower answers when the leader
   * asks whether it is healthy enough to take over.
   */
  state(nowMs: number): HealthState {
    const since = nowMs - this.limits.windowMs;
    const fsyncP99Ms = this.windows.fsync.p99(since);
    const loopDelayP99Ms = this.windows.loopDelay.p99(since);
    const slow: string[] = [];
    if (fsyncP99Ms > this.limits.fsyncP99Ms) {
      slow.push(`fsync p99 ${Math.round(fsyncP99Ms)} ms > ${this.limits.fsyncP99Ms} ms`);
    }
    if (loopDelayP99Ms > this.limits.loopDelayP99Ms) {
      slow.push(
        `event-loop delay p99 ${Math.round(loopDelayP99Ms)} ms > ${this.limits.loopDelayP99Ms} ms`,
      );
    }
    return { fsyncP99Ms, loopDelayP99Ms, slow: slow.join(', ') };
  }

  /** Evaluates the window at `nowMs`; call it periodically (e.g. every second). */
  check(nowMs: number): Verdict {
    const { fsyncP99Ms, loopDelayP99Ms, slow } = this.state(nowMs);
    if (slow === '') {
      this.slowSinceMs = null;
      return { degraded: false, reason: 'healthy', fsyncP99Ms, loopDelayP99Ms };
    }
    this.slowSinceMs ??= nowMs;
    const forMs = nowMs - this.slowSinceMs;
    const reason = `${slow} for ${Math.round(forMs / 1000)} s`;
    const sustained = forMs >= this.limits.sustainMs;
    const allowed = nowMs - this.lastHandoverMs >= this.limits.minIntervalMs;
    return { degraded: sustained && allowed, reason, fsyncP99Ms, loopDelayP99Ms };
  }

  /** A handover happened at `nowMs`: restart the clocks. */
  handedOver(nowMs: number): void {
    this.lastHandoverMs = nowMs;
    this.slowSinceMs = null;
  }
}
