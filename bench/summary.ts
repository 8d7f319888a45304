/**
 * `bench:compare` over several rounds: each system's run of each workload
 * summarized by its median round, with the lowest and highest throughput
 * beside it, and the ratio table built from the medians. One run of this
 * machine varies by 10-30% from the next, so a single round can put a
 * system on either side of a target; the spread shows how far to trust it.
 */

import type { Row } from './workloads.js';

/** One system on one workload over all rounds. */
export interface Summary {
  readonly system: string;
  readonly workload: string;
  /** The median round by throughput (the lower middle one for an even count): a real run, latencies included. */
  readonly median: Row;
  readonly minOpsPerSecond: number;
  readonly maxOpsPerSecond: number;
  readonly rounds: number;
}

/** Groups `rows` by system and workload, in the order each pair first appears. */
export function summarize(rows: readonly Row[]): Summary[] {
  const groups = new Map<string, Row[]>();
  for (const row of rows) {
    const key = `${row.system}\u0000${row.workload}`;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [row]);
    else group.push(row);
  }
  const summaries: Summary[] = [];
  for (const group of groups.values()) {
    const sorted = [...group].sort((x, y) => x.load.opsPerSecond - y.load.opsPerSecond);
    const median = sorted[Math.floor((sorted.length - 1) / 2)];
    const lowest = sorted[0];
    const highest = sorted[sorted.length - 1];
    if (median === undefined || lowest === undefined || highest === undefined) continue;
    summaries.push({
      system: median.system,
      workload: median.workload,
      median,
      minOpsPerSecond: lowest.load.opsPerSecond,
      maxOpsPerSecond: highest.load.opsPerSecond,
      rounds: group.length,
    });
  }
  return summaries;
}

/**
 * The table `bench:compare` prints: per workload, each system's median
 * ops/s (with its lowest and highest when there were several rounds), p50
 * and p99 in ms, then Tandem's ratio to each other system's median.
 */
export function ratioTable(
  summaries: readonly Summary[],
  workloadIds: readonly string[],
  titleOf: (id: string) => string,
): string {
  const systems = [...new Set(summaries.map((s) => s.system))];
  const spread = summaries.some((s) => s.rounds > 1);
  const header = ['workload'];
  for (const s of systems) {
    header.push(`${s} ops/s`);
    if (spread) header.push('min-max');
    header.push('p50 ms', 'p99 ms');
  }
  const others = systems.filter((s) => s !== 'tandem');
  if (systems.includes('tandem')) for (const s of others) header.push(`tandem/${s}`);
  const lines = [header];
  for (const id of workloadIds) {
    const cells = [titleOf(id)];
    const of = (system: string): Summary | undefined =>
      summaries.find((s) => s.system === system && s.workload === id);
    for (const system of systems) {
      const s = of(system);
      const load = s?.median.load;
      cells.push(load === undefined ? '-' : Math.round(load.opsPerSecond).toString());
      if (spread) {
        cells.push(
          s === undefined
            ? '-'
            : `${Math.round(s.minOpsPerSecond)}-${Math.round(s.maxOpsPerSecond)}`,
        );
      }
      cells.push(
        load === undefined ? '-' : (load.latency.p50Us / 1000).toFixed(2),
        load === undefined ? '-' : (load.latency.p99Us / 1000).toFixed(2),
      );
    }
    const tandem = of('tandem');
    if (tandem !== undefined) {
      for (const system of others) {
        const other = of(system)?.median.load.opsPerSecond;
        cells.push(
          other === undefined || other === 0
            ? '-'
            : (tandem.median.load.opsPerSecond / other).toFixed(2),
        );
      }
    }
    lines.push(cells);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  return lines
    .map((l) =>
      l.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}
