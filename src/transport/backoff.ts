/**
 * Reconnect delays and log rate limits: small pure helpers with the clock
 * and the random source passed in, so they are testable.
 */

import { assert } from '../raft/assert.js';

export interface BackoffRange {
  readonly msMin: number;
  readonly msMax: number;
}

/**
 * Exponential backoff with "equal jitter": half the exponential delay fixed,
 * half random. The fixed half keeps a refused or down peer from being
 * hammered; the random half keeps restarted nodes from dialing in lockstep.
 * `attempt` counts failures since the last success, from 0.
 */
export function backoffMs(range: BackoffRange, attempt: number, random: () => number): number {
  assert(range.msMin > 0 && range.msMin <= range.msMax, 'backoff range is positive and ordered');
  // 2^30 is far beyond any msMax / msMin ratio; capping the exponent avoids Infinity.
  const exponential = Math.min(range.msMax, range.msMin * 2 ** Math.min(attempt, 30));
  const delay = exponential / 2 + (exponential / 2) * random();
  return Math.max(range.msMin, Math.min(range.msMax, Math.round(delay)));
}

/**
 * Allows one event per key per interval and counts the suppressed ones, so a
 * peer that keeps failing the same way logs a line every interval with the
 * number of repeats instead of a line per attempt. Keys are bounded: past
 * `keysMax` the table is cleared (a few extra lines beat unbounded memory).
 */
export class RateLimiter {
  private readonly last = new Map<string, { atMs: number; suppressed: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly keysMax = 1_024,
  ) {}

  /** Returns the count suppressed since the last allowed event, or null if this one is suppressed. */
  allow(key: string, nowMs: number): number | null {
    const entry = this.last.get(key);
    if (entry !== undefined && nowMs - entry.atMs < this.intervalMs) {
      entry.suppressed++;
      return null;
    }
    if (this.last.size >= this.keysMax) this.last.clear();
    this.last.set(key, { atMs: nowMs, suppressed: 0 });
    return entry?.suppressed ?? 0;
  }

  forget(key: string): void {
    this.last.delete(key);
  }
}
