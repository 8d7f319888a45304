import { describe, expect, it } from 'vitest';
import { backoffMs, RateLimiter } from './backoff.js';

describe('backoffMs', () => {
  const range = { msMin: 50, msMax: 2_000 };

  it('grows exponentially from msMin and stays within [msMin, msMax]', () => {
    expect(backoffMs(range, 0, () => 0)).toBe(50);
    expect(backoffMs(range, 3, () => 1)).toBe(400);
    for (let attempt = 0; attempt < 100; attempt++) {
      for (const r of [0, 0.5, 0.999]) {
        const ms = backoffMs(range, attempt, () => r);
        expect(ms).toBeGreaterThanOrEqual(range.msMin);
        expect(ms).toBeLessThanOrEqual(range.msMax);
      }
    }
    expect(backoffMs(range, 1_000, () => 1)).toBe(2_000);
  });

  it('keeps half the delay fixed and jitters the other half', () => {
    expect(backoffMs(range, 10, () => 0)).toBe(1_000);
    expect(backoffMs(range, 10, () => 1)).toBe(2_000);
  });
});

describe('RateLimiter', () => {
  it('allows one event per key per interval and counts the suppressed ones', () => {
    const limiter = new RateLimiter(1_000, 4);
    expect(limiter.allow('a', 0)).toBe(0);
    expect(limiter.allow('a', 10)).toBeNull();
    expect(limiter.allow('a', 20)).toBeNull();
    expect(limiter.allow('b', 20)).toBe(0);
    expect(limiter.allow('a', 1_000)).toBe(2);
  });

  it('bounds the number of keys it remembers', () => {
    const limiter = new RateLimiter(1_000, 4);
    for (let i = 0; i < 100; i++) expect(limiter.allow(`k${i}`, 0)).toBe(0);
  });
});
