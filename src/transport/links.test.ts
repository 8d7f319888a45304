import { describe, expect, it } from 'vitest';
import { nodeId } from '../raft/types.js';
import { backoffMs } from './backoff.js';
import { transportLimitsDefault } from './limits.js';
import { reconnectBackoff } from './links.js';
import { markRefused, newPeer } from './peer.js';

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

describe('markRefused', () => {
  const limits = transportLimitsDefault;

  it('starts the refused backoff from its minimum whatever failed before', () => {
    const peer = newPeer(nodeId('n4'));
    peer.failures = 12; // the address did not answer for a while (the node was not started yet)
    markRefused(peer);
    expect(peer.failures).toBe(0);
    const delay = backoffMs(reconnectBackoff(limits, peer.refused), peer.failures, () => 1);
    expect(delay).toBe(limits.refusedBackoffMsMin);
    // Refused again: the count keeps growing, so repeated refusals back off further.
    peer.failures = 3;
    markRefused(peer);
    expect(peer.failures).toBe(3);
  });
});
