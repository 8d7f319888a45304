/**
 * The workloads of issue 8, and running one against a started system:
 * load from a separate process, CPU and peak RSS of every server process.
 */

import { populate } from './load/populate.js';
import { runLoad } from './load/run-load.js';
import type { LoadResult, LoadSpec } from './load/spec.js';
import { measureCost, type NodeCost } from './proc-stats.js';
import type { BenchSystem } from './systems/system.js';

export interface Workload {
  readonly id: string;
  readonly title: string;
  readonly clients: number;
  readonly pipeline: number;
  readonly valueBytes: number;
  readonly readRatio: number;
}

export const workloads: readonly Workload[] = [
  {
    id: 'a',
    title: 'SET 100 B, 50 clients',
    clients: 50,
    pipeline: 1,
    valueBytes: 100,
    readRatio: 0,
  },
  {
    id: 'b',
    title: 'SET 100 B, 50 clients, pipeline 16',
    clients: 50,
    pipeline: 16,
    valueBytes: 100,
    readRatio: 0,
  },
  {
    id: 'c',
    title: 'GET 100 B, 50 clients',
    clients: 50,
    pipeline: 1,
    valueBytes: 100,
    readRatio: 1,
  },
  {
    id: 'c16',
    title: 'GET 100 B, 50 clients, pipeline 16',
    clients: 50,
    pipeline: 16,
    valueBytes: 100,
    readRatio: 1,
  },
  {
    id: 'd',
    title: 'SET 100 B, 1 client (latency)',
    clients: 1,
    pipeline: 1,
    valueBytes: 100,
    readRatio: 0,
  },
  {
    id: 'e',
    title: '90% GET / 10% SET 100 B, 50 clients',
    clients: 50,
    pipeline: 1,
    valueBytes: 100,
    readRatio: 0.9,
  },
  {
    id: 'f1k',
    title: 'SET 1 KiB, 50 clients',
    clients: 50,
    pipeline: 1,
    valueBytes: 1024,
    readRatio: 0,
  },
  {
    id: 'f16k',
    title: 'SET 16 KiB, 50 clients',
    clients: 50,
    pipeline: 1,
    valueBytes: 16384,
    readRatio: 0,
  },
];

export interface RunSettings {
  readonly keys: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly seed: number;
}

export interface Row {
  readonly system: string;
  readonly workload: string;
  readonly load: LoadResult;
  readonly costs: readonly NodeCost[];
}

/** Value sizes whose keys were already written on a system (populating is done once per size). */
export type Populated = Set<number>;

export async function runWorkload(
  system: BenchSystem,
  workload: Workload,
  settings: RunSettings,
  populated: Populated,
): Promise<Row> {
  const port = system.ports[0] as number;
  if (workload.readRatio > 0 && !populated.has(workload.valueBytes)) {
    await populate(system.protocol, '127.0.0.1', port, settings.keys, workload.valueBytes);
    populated.add(workload.valueBytes);
  }
  const spec: LoadSpec = {
    host: '127.0.0.1',
    ports: system.ports,
    clients: workload.clients,
    pipeline: workload.pipeline,
    valueBytes: workload.valueBytes,
    readRatio: workload.readRatio,
    keys: settings.keys,
    durationMs: settings.durationMs,
    warmupMs: settings.warmupMs,
    seed: settings.seed,
  };
  const { result, costs } = await measureCost(system.pids(), () => runLoad(system.protocol, spec));
  return { system: system.name, workload: workload.id, load: result, costs };
}

/** One line for a row: throughput, latency percentiles, errors, per-process cost. */
export function describeRow(row: Row): string {
  const l = row.load;
  const ms = (us: number): string => (us / 1000).toFixed(us < 10_000 ? 2 : 1);
  const costs = row.costs
    .map((c) => `${c.name} ${c.cpuSeconds}s cpu ${c.peakRssMb} MiB`)
    .join(', ');
  const errors = l.errors > 0 ? `, ${l.errors} errors (first: ${l.firstError})` : '';
  // Under a mix, each kind apart: the overall figures would hide a slow one.
  const kinds =
    l.readLatency !== null && l.writeLatency !== null
      ? ` (reads p50 ${ms(l.readLatency.p50Us)} p99 ${ms(l.readLatency.p99Us)}, ` +
        `writes p50 ${ms(l.writeLatency.p50Us)} p99 ${ms(l.writeLatency.p99Us)})`
      : '';
  return (
    `${row.system} ${row.workload}: ${Math.round(l.opsPerSecond)} ops/s, latency ms p50 ${ms(l.latency.p50Us)} ` +
    `p90 ${ms(l.latency.p90Us)} p99 ${ms(l.latency.p99Us)} p999 ${ms(l.latency.p999Us)} max ${ms(l.latency.maxUs)}` +
    `${kinds}${errors}; ${costs}; load generator ${l.generatorCpuSeconds.toFixed(1)}s cpu`
  );
}
