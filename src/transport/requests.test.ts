import { afterEach, describe, expect, it, vi } from 'vitest';
import { nodeId } from '../raft/types.js';
import { TransportError } from './errors.js';
import { frameHeaderBytes } from './frame.js';
import { encodeResponse } from './protocol.js';
import { PendingRequests, payloadFits, requestRefusal } from './requests.js';

const n2 = nodeId('n2');
const frameBytesMax = 1_024;

/** A response frame's body, as the peer's onFrame would see it. */
function responseBody(res: Parameters<typeof encodeResponse>[0]): Uint8Array {
  return encodeResponse(res, frameBytesMax).subarray(frameHeaderBytes);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('requestRefusal', () => {
  const limits = { requestsInFlightMax: 2, frameBytesMax };

  it('refuses with busy at requestsInFlightMax, not below', () => {
    expect(requestRefusal(n2, 1, 10, limits)).toBeNull();
    expect(requestRefusal(n2, 2, 10, limits)?.code).toBe('busy');
  });

  it('refuses with tooLarge exactly when the payload does not fit in a frame', () => {
    const largest = frameBytesMax - frameHeaderBytes - 16;
    expect(payloadFits(largest, frameBytesMax)).toBe(true);
    expect(payloadFits(largest + 1, frameBytesMax)).toBe(false);
    expect(requestRefusal(n2, 0, largest, limits)).toBeNull();
    const refusal = requestRefusal(n2, 0, largest + 1, limits);
    expect(refusal).toBeInstanceOf(TransportError);
    expect(refusal?.code).toBe('tooLarge');
  });
});

describe('PendingRequests', () => {
  const timeout = () => new TransportError('timeout', n2, 'timed out');

  it('settles each request with the response that carries its id', async () => {
    const requests = new PendingRequests();
    const sent: number[] = [];
    const a = requests.add(7, 1_000, timeout, () => sent.push(7));
    const b = requests.add(8, 1_000, timeout, () => sent.push(8));
    expect(sent).toEqual([7, 8]);
    expect(requests.size).toBe(2);
    requests.onResponse(n2, responseBody({ id: 8, ok: false, error: 'no' }));
    requests.onResponse(n2, responseBody({ id: 7, ok: true, payload: new Uint8Array([1, 2]) }));
    expect(await a).toEqual(new Uint8Array([1, 2]));
    await expect(b).rejects.toMatchObject({ code: 'remote', message: 'n2 failed the request: no' });
    expect(requests.size).toBe(0);
  });

  it('times out, and drops a response that arrives after the timeout', async () => {
    vi.useFakeTimers();
    const requests = new PendingRequests();
    const pending = requests.add(1, 100, timeout, () => {});
    const settled = expect(pending).rejects.toMatchObject({ code: 'timeout' });
    vi.advanceTimersByTime(100);
    await settled;
    expect(requests.size).toBe(0);
    requests.onResponse(n2, responseBody({ id: 1, ok: true, payload: new Uint8Array() }));
    expect(requests.size).toBe(0);
  });

  it('failAll rejects every request with its own error and clears their timers', async () => {
    vi.useFakeTimers();
    const requests = new PendingRequests();
    const all = [1, 2, 3].map((id) => requests.add(id, 100, timeout, () => {}));
    const errors: TransportError[] = [];
    requests.failAll(() => {
      const e = new TransportError('disconnected', n2, 'lost');
      errors.push(e);
      return e;
    });
    const results = await Promise.allSettled(all);
    expect(results.map((r) => (r.status === 'rejected' ? r.reason : null))).toEqual(errors);
    expect(new Set(errors).size).toBe(3);
    expect(vi.getTimerCount()).toBe(0);
    expect(requests.size).toBe(0);
  });
});
