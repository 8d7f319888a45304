/**
 * `npm run bench:compare`: the workloads of issue 8 against Tandem, Redis
 * (primary + 2 replicas, appendfsync always) and etcd (3 members), one
 * system after the other in the same run, with the same load generator for
 * the two RESP systems. A measurement, not a test:
 *
 *   npm run bench:compare -- [--systems tandem,redis,etcd] [--workloads a,b,c,c16,d,e,f1k,f16k]
 *                            [--duration-ms 10000] [--warmup-ms 2000] [--keys 100000] [--out DIR]
 *
 * A system that is not installed is skipped with a message. Prints a table
 * with the ratios Tandem/Redis and Tandem/etcd, and writes results.json and
 * throughput.svg to the results folder (default bench/results/<time>/).
 */

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { barChartSvg } from './chart.js';
import { int, list } from './cli-args.js';
import { etcdMissing, startEtcd } from './systems/etcd.js';
import { redisMissing, startRedis } from './systems/redis.js';
import type { BenchSystem } from './systems/system.js';
import { startTandem } from './systems/tandem.js';
import { describeRow, type Row, type RunSettings, runWorkload, workloads } from './workloads.js';

const o = new Command('bench:compare')
  .option('--systems <list>', 'systems to run', list, ['tandem', 'redis', 'etcd'])
  .option(
    '--workloads <list>',
    'workload ids',
    list,
    workloads.map((w) => w.id),
  )
  .option('--duration-ms <n>', 'measured time per workload', int(1), 10_000)
  .option('--warmup-ms <n>', 'unmeasured load before each', int(0), 2_000)
  .option('--keys <n>', 'distinct keys', int(1), 100_000)
  .option('--out <dir>', 'results folder')
  .parse()
  .opts<{
    systems: string[];
    workloads: string[];
    durationMs: number;
    warmupMs: number;
    keys: number;
    out?: string;
  }>();

for (const id of o.workloads) {
  if (!workloads.some((w) => w.id === id)) {
    throw new Error(`unknown workload '${id}'; known: ${workloads.map((w) => w.id).join(', ')}`);
  }
}
const chosen = workloads.filter((w) => o.workloads.includes(w.id));
const settings: RunSettings = {
  keys: o.keys,
  durationMs: o.durationMs,
  warmupMs: o.warmupMs,
  seed: 1,
};
const out = resolve(
  o.out ?? join('bench', 'results', new Date().toISOString().replaceAll(':', '-')),
);
const root = await mkdtemp(join(tmpdir(), 'tandem-bench-compare-'));
const rows: Row[] = [];
const skipped: string[] = [];
try {
  console.log(
    `bench:compare: ${chosen.length} workloads x ${o.systems.join(', ')}; ${o.durationMs} ms each after ` +
      `${o.warmupMs} ms warm-up; ${o.keys} keys; results in ${out}`,
  );
  for (const name of o.systems) {
    const system = await start(name);
    if (system === null) continue;
    try {
      const populated = new Set<number>();
      for (const w of chosen) {
        const row = await runWorkload(system, w, settings, populated);
        rows.push(row);
        console.log(`  ${describeRow(row)}`);
      }
    } finally {
      await system.stop();
    }
  }
  const table = ratioTable(rows);
  console.log(`\n${table}`);
  await mkdir(out, { recursive: true });
  await writeFile(
    join(out, 'results.json'),
    `${JSON.stringify({ bench: 'compare', settings, workloads: chosen, skipped, rows }, null, 2)}\n`,
  );
  await writeFile(join(out, 'table.txt'), `${table}\n`);
  await writeFile(
    join(out, 'throughput.svg'),
    barChartSvg(
      'Tandem vs Redis (appendfsync always, async replicas) vs etcd, 3 nodes each, one 2-core machine',
      'operations per second',
      rows.map((r) => ({
        group: titleOf(r.workload),
        series: r.system,
        value: r.load.opsPerSecond,
      })),
    ),
  );
  console.log(`\nwrote ${join(out, 'results.json')}, table.txt and throughput.svg`);
} finally {
  await rm(root, { recursive: true, force: true });
}

async function start(name: string): Promise<BenchSystem | null> {
  const system =
    name === 'tandem'
      ? await startTandem(root)
      : name === 'redis'
        ? await startRedis(root)
        : name === 'etcd'
          ? await startEtcd(root)
          : (() => {
              throw new Error(`unknown system '${name}': tandem, redis or etcd`);
            })();
  if (system === null) {
    const why = name === 'redis' ? redisMissing : etcdMissing;
    console.log(why);
    skipped.push(why);
  }
  return system;
}

function titleOf(id: string): string {
  return `${id}: ${workloads.find((w) => w.id === id)?.title ?? id}`;
}

function ratioTable(all: readonly Row[]): string {
  const systems = [...new Set(all.map((r) => r.system))];
  const header = ['workload'];
  for (const s of systems) header.push(`${s} ops/s`, 'p50 ms', 'p99 ms');
  const others = systems.filter((s) => s !== 'tandem');
  if (systems.includes('tandem')) for (const s of others) header.push(`tandem/${s}`);
  const lines = [header];
  for (const w of chosen) {
    const cells = [titleOf(w.id)];
    const of = (s: string): Row | undefined =>
      all.find((r) => r.system === s && r.workload === w.id);
    for (const s of systems) {
      const r = of(s);
      cells.push(
        r === undefined ? '-' : Math.round(r.load.opsPerSecond).toString(),
        r === undefined ? '-' : (r.load.latency.p50Us / 1000).toFixed(2),
        r === undefined ? '-' : (r.load.latency.p99Us / 1000).toFixed(2),
      );
    }
    const t = of('tandem');
    if (t !== undefined) {
      for (const s of others) {
        const r = of(s);
        cells.push(
          r === undefined || r.load.opsPerSecond === 0
            ? '-'
            : (t.load.opsPerSecond / r.load.opsPerSecond).toFixed(2),
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
