import { describe, expect, it } from 'vitest';
import type { ConnectionCounters } from './connection.js';
import { retireCounters } from './peer-stats.js';

const counters = (n: number): ConnectionCounters => ({
  bytesSent: n,
  bytesReceived: 2 * n,
  framesSent: 3 * n,
  framesReceived: 4 * n,
  framesDropped: 5 * n,
});

describe('retireCounters', () => {
  it('moves a connection counters into the totals once, never twice', () => {
    const totals = counters(1);
    const conn = counters(10);
    retireCounters(totals, conn);
    expect(totals).toEqual(counters(11));
    expect(conn).toEqual(counters(0));
    retireCounters(totals, conn);
    expect(totals).toEqual(counters(11));
  });
});
