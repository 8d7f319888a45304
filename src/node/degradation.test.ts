import { describe, expect, it } from 'vitest';
import { DegradationDetector, type DegradationLimits, takeoverRefusal } from './degradation.js';

const limits: DegradationLimits = {
  fsyncP99Ms: 500,
  loopDelayP99Ms: 200,
  windowMs: 10_000,
  sustainMs: 10_000,
  minIntervalMs: 60_000,
};

/** Feeds one fsync sample every 100 ms from `fromMs` to `toMs`, checking every second. */
function feed(d: DegradationDetector, fromMs: number, toMs: number, latencyMs: number) {
  let last = d.check(fromMs);
  for (let t = fromMs; t <= toMs; t += 100) {
    d.record('fsync', t, latencyMs);
    if (t % 1000 === 0) last = d.check(t);
  }
  return last;
}

describe('DegradationDetector', () => {
  it('computes the p99 over the newest 10,000 samples within the window', () => {
    const d = new DegradationDetector(limits);
    // 25,000 samples in one second: the first 15,000 slow, then 10,000 fast
    // but for 50 of them (0.5%, under the 1% a p99 ignores).
    for (let i = 0; i < 25_000; i++) {
      const slowOne = i < 15_000 || (i - 15_000) % 200 === 0;
      d.record('fsync', i / 25, slowOne ? 900 : 1 + (i % 7));
    }
    expect(d.state(1_000).fsyncP99Ms).toBe(7);
    // A sample more drops the oldest: the window still holds 10,000.
    d.record('fsync', 1_000, 900);
    expect(d.state(1_000).fsyncP99Ms).toBe(7);
    // Past the window only the newest sample is left.
    expect(d.state(10_999).fsyncP99Ms).toBe(900);
    expect(d.state(11_001).fsyncP99Ms).toBe(0);
  });

  it('stays healthy with fast fsyncs', () => {
    const d = new DegradationDetector(limits);
    expect(feed(d, 0, 60_000, 5).degraded).toBe(false);
  });

  it('advises a handover only once the p99 stayed slow for the sustain time', () => {
    const d = new DegradationDetector(limits);
    feed(d, 0, 5_000, 5);
    expect(feed(d, 5_100, 14_000, 900).degraded).toBe(false); // slow for under 10 s
    const verdict = feed(d, 14_100, 20_000, 900);
    expect(verdict.degraded).toBe(true);
    expect(verdict.reason).toMatch(/fsync p99 900 ms > 500 ms for 1\d s/);
  });

  it('resets when one check is healthy (hysteresis), and ignores a few slow samples', () => {
    const d = new DegradationDetector(limits);
    feed(d, 0, 8_000, 900);
    feed(d, 8_100, 19_000, 5); // the window clears; one healthy check resets the clock
    expect(feed(d, 19_100, 25_000, 900).degraded).toBe(false);
    // Under 1% slow samples do not move the p99.
    const sparse = new DegradationDetector(limits);
    for (let t = 0; t < 30_000; t += 10) sparse.record('fsync', t, t % 5_000 === 0 ? 2_000 : 5);
    expect(sparse.check(30_000).degraded).toBe(false);
  });

  it('waits the minimum interval after a handover', () => {
    const d = new DegradationDetector(limits);
    expect(feed(d, 0, 12_000, 900).degraded).toBe(true);
    d.handedOver(12_000);
    expect(feed(d, 12_100, 40_000, 900).degraded).toBe(false);
    expect(feed(d, 40_100, 75_000, 900).degraded).toBe(true);
  });

  it('watches the event-loop delay too', () => {
    const d = new DegradationDetector(limits);
    for (let t = 0; t <= 12_000; t += 100) {
      d.record('loopDelay', t, 300);
      if (t % 1000 === 0) d.check(t);
    }
    const verdict = d.check(12_000);
    expect(verdict.degraded).toBe(true);
    expect(verdict.reason).toMatch(/event-loop delay p99 300 ms > 200 ms/);
  });
});

describe('takeoverRefusal', () => {
  const healthy = { fsyncP99Ms: 20, loopDelayP99Ms: 5, slow: '' };
  it('lets a clearly healthy follower take over', () => {
    expect(takeoverRefusal(limits, healthy)).toBeNull();
  });
  it('refuses a slow follower and one just below the threshold', () => {
    expect(takeoverRefusal(limits, { ...healthy, fsyncP99Ms: 900, slow: 'fsync p99 900 ms' })).toBe(
      'is slow too: fsync p99 900 ms',
    );
    expect(takeoverRefusal(limits, { ...healthy, fsyncP99Ms: 400 })).toBe(
      'is not clearly healthy: fsync p99 400 ms > 250 ms',
    );
    expect(takeoverRefusal(limits, { ...healthy, loopDelayP99Ms: 150 })).toMatch(
      /event-loop delay p99 150 ms > 100 ms/,
    );
  });
});
