import { describe, expect, it } from 'vitest';
import type { LoadResult } from './load/spec.js';
import { ratioTable, summarize } from './summary.js';
import type { Row } from './workloads.js';

function row(system: string, workload: string, opsPerSecond: number, p50Ms = 1): Row {
  const latency = {
    p50Us: p50Ms * 1000,
    p90Us: 0,
    p99Us: p50Ms * 2000,
    p999Us: 0,
    maxUs: 0,
    meanUs: 0,
  };
  const load: LoadResult = {
    ops: opsPerSecond,
    reads: 0,
    writes: opsPerSecond,
    errors: 0,
    firstError: null,
    seconds: 1,
    opsPerSecond,
    latency,
    readLatency: null,
    writeLatency: latency,
    generatorCpuSeconds: 0,
  };
  return { system, workload, load, costs: [] };
}

describe('summarize', () => {
  it('takes the median round, with its own latencies, and the spread of throughput', () => {
    const rows = [
      row('tandem', 'a', 300, 3),
      row('redis', 'a', 50),
      row('tandem', 'a', 100, 1),
      row('tandem', 'a', 200, 2),
    ];
    const [tandem, redis] = summarize(rows);
    expect(tandem).toMatchObject({
      system: 'tandem',
      workload: 'a',
      minOpsPerSecond: 100,
      maxOpsPerSecond: 300,
      rounds: 3,
    });
    expect(tandem?.median.load.latency.p50Us).toBe(2000);
    expect(redis).toMatchObject({ system: 'redis', rounds: 1, minOpsPerSecond: 50 });
  });

  it('takes the lower middle round of an even count, so the median is a run that happened', () => {
    const [s] = summarize([
      row('etcd', 'b', 40),
      row('etcd', 'b', 10),
      row('etcd', 'b', 30),
      row('etcd', 'b', 20),
    ]);
    expect(s?.median.load.opsPerSecond).toBe(20);
  });
});

describe('ratioTable', () => {
  it('shows the spread only for several rounds, and divides medians', () => {
    const rows = [
      row('tandem', 'a', 90),
      row('tandem', 'a', 100),
      row('tandem', 'a', 120),
      row('redis', 'a', 200),
      row('redis', 'a', 180),
      row('redis', 'a', 250),
    ];
    const table = ratioTable(summarize(rows), ['a'], (id) => `${id}: title`);
    const [header, line] = table.split('\n');
    expect(header?.split(/ {2,}/)).toEqual([
      'workload',
      'tandem ops/s',
      'min-max',
      'p50 ms',
      'p99 ms',
      'redis ops/s',
      'min-max',
      'p50 ms',
      'p99 ms',
      'tandem/redis',
    ]);
    expect(line?.trim().split(/ {2,}/)).toEqual([
      'a: title',
      '100',
      '90-120',
      '1.00',
      '2.00',
      '200',
      '180-250',
      '1.00',
      '2.00',
      '0.50',
    ]);
    const single = ratioTable(summarize([row('tandem', 'a', 90)]), ['a', 'b'], (id) => id);
    expect(single.split('\n')).toEqual([
      'workload  tandem ops/s  p50 ms  p99 ms',
      'a                   90    1.00    2.00',
      'b                    -       -       -',
    ]);
  });
});
