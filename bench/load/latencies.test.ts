import { describe, expect, it } from 'vitest';
import { Latencies } from './latencies.js';

describe('Latencies', () => {
  it('keeps reads and writes apart as well as together', () => {
    const latencies = new Latencies();
    for (let i = 0; i < 9; i++) latencies.record(true, 1);
    latencies.record(false, 5);
    const { latency, readLatency, writeLatency } = latencies.summaries();
    // HDR with 3 significant figures: within 0.1%.
    expect(latency.p50Us).toBeCloseTo(1000, -1);
    expect(latency.maxUs).toBeCloseTo(5000, -1);
    expect(readLatency?.maxUs).toBeCloseTo(1000, -1);
    expect(writeLatency?.p50Us).toBeCloseTo(5000, -1);
  });

  it('reports no summary for a kind the run sent none of', () => {
    const latencies = new Latencies();
    latencies.record(false, 2);
    expect(latencies.summaries().readLatency).toBeNull();
    expect(latencies.summaries().writeLatency?.p50Us).toBeCloseTo(2000, -1);
  });

  it('clamps to the histogram range instead of throwing', () => {
    const latencies = new Latencies();
    latencies.record(true, 0);
    latencies.record(true, 3_600_000);
    const read = latencies.summaries().readLatency;
    expect(read?.p50Us).toBe(1);
    expect(read?.maxUs).toBeGreaterThanOrEqual(59_000_000);
  });
});
