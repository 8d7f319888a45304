/**
 * The latency histograms of one load run (HDR, node:perf_hooks): every
 * request, and reads and writes apart. Under a mix the overall figures hide
 * which kind is slow: in (e), 90% reads, Tandem's reads took about as long
 * as its writes.
 */

import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import type { LatencySummary, LoadResult } from './spec.js';

/** Latencies above this are recorded as this (the histograms' range). */
const latencyUsMax = 60_000_000;

function histogram(): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: latencyUsMax, figures: 3 });
}

export class Latencies {
  private readonly all = histogram();
  private readonly reads = histogram();
  private readonly writes = histogram();

  /** Records one request that took `ms`. */
  record(read: boolean, ms: number): void {
    const us = Math.min(latencyUsMax, Math.max(1, Math.round(ms * 1000)));
    this.all.record(us);
    (read ? this.reads : this.writes).record(us);
  }

  summaries(): Pick<LoadResult, 'latency' | 'readLatency' | 'writeLatency'> {
    return {
      latency: summarize(this.all),
      readLatency: this.reads.count === 0 ? null : summarize(this.reads),
      writeLatency: this.writes.count === 0 ? null : summarize(this.writes),
    };
  }
}

export function summarize(h: RecordableHistogram): LatencySummary {
  if (h.count === 0) return { p50Us: 0, p90Us: 0, p99Us: 0, p999Us: 0, maxUs: 0, meanUs: 0 };
  return {
    p50Us: h.percentile(50),
    p90Us: h.percentile(90),
    p99Us: h.percentile(99),
    p999Us: h.percentile(99.9),
    maxUs: h.max,
    meanUs: Math.round(h.mean),
  };
}
