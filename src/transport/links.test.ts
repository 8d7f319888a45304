import { describe, expect, it } from 'vitest';
import { backoffMs } from './backoff.js';
import { transportLimitsDefault } from './limits.js';
import { reconnectBackoff } from './links.js';

describe('reconnectBackoff', () => {
  const limits = { ...transportLimitsDefault, backoffMsMin: 10, refusedBackoffMsMin: 1_000 };

  it('backs off longer after a refusal than after a failure', () => {
    expect(reconnectBackoff(limits, false)).toEqual({ msMin: 10, msMax: limits.backoffMsMax });
    expect(reconnectBackoff(limits, true)).toEqual({
      msMin: 1_000,
      msMax: limits.refusedBackoffMsMax,
    });
    const first = (refused: boolean) => backoffMs(reconnectBackoff(limits, refused), 0, () => 0);
    expect(first(false)).toBe(10);
    expect(first(true)).toBe(1_000);
  });
});
