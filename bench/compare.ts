/**
 * `npm run bench:compare`: the workloads of issue 8 against Tandem, Redis
 * (primary + 2 replicas, appendfsync always) and etcd (3 members), one
 * system after the other in the same run, with the same load generator for
 * the two RESP systems. A measurement, not a test:
 *
 *   npm run bench:compare -- [--systems tandem,redis,etcd] [--workloads a,b,c,c16,d,e,f1k,f16k]
 *                            [--duration-ms 10000] [--warmup-ms 2000] [--keys 100000]
 *                            [--rounds 1] [--out DIR]
 *
 * A system that is not installed is skipped with a message. With --rounds N
 * the whole sequence of systems runs N times, so a slow spell of the machine
 * falls on all of them, and each figure is the median round (summary.ts).
 * Prints a table with the ratios Tandem/Redis and Tandem/etcd, and writes
 * results.json and throughput.svg to the results folder (default
 * bench/results/<time>/).
 */

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { barChartSvg } from './chart.js';
import { int, list } from './cli-args.js';
import { ratioTable, summarize } from './summary.js';
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
  .option('--rounds <n>', 'times to run every system; figures are the median round', int(1, 99), 1)
  .option('--out <dir>', 'results folder')
  .parse()
  .opts<{
    systems: string[];
    workloads: string[];
    durationMs: number;
    warmupMs: number;
    keys: number;
    rounds: number;
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
const rows: (Row & { readonly round: number })[] = [];
const skipped = new Set<string>();
try {
  console.log(
    `bench:compare: ${chosen.length} workloads x ${o.systems.join(', ')} x ${o.rounds} round(s); ` +
      `${o.durationMs} ms each after ${o.warmupMs} ms warm-up; ${o.keys} keys; results in ${out}`,
  );
  for (let round = 1; round <= o.rounds; round++) {
    if (o.rounds > 1) console.log(`round ${round} of ${o.rounds}`);
    // A fresh folder each round: no round starts from another's data, its
    // keys and snapshots (and each system's first round is like the others).
    const dir = join(root, `round-${round}`);
    for (const name of o.systems) {
      const system = await start(name, dir);
      if (system === null) continue;
      try {
        const populated = new Set<number>();
        for (const w of chosen) {
          const row = await runWorkload(system, w, settings, populated);
          rows.push({ ...row, round });
          console.log(`  ${describeRow(row)}`);
        }
      } finally {
        await system.stop();
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
  const summaries = summarize(rows);
  const table = ratioTable(
    summaries,
    chosen.map((w) => w.id),
    titleOf,
  );
  console.log(`\n${table}`);
  await mkdir(out, { recursive: true });
  const results = {
    bench: 'compare',
    settings: { ...settings, rounds: o.rounds },
    workloads: chosen,
    skipped: [...skipped],
    summaries: summaries.map(({ median, ...spread }) => ({ ...spread, medianRound: median })),
    rows,
  };
  await writeFile(join(out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(out, 'table.txt'), `${table}\n`);
  await writeFile(
    join(out, 'throughput.svg'),
    barChartSvg(
      'Tandem vs Redis (appendfsync always, async replicas) vs etcd, 3 nodes each, one 2-core machine',
      'operations per second',
      summaries.map((s) => ({
        group: titleOf(s.workload),
        series: s.system,
        value: s.median.load.opsPerSecond,
      })),
    ),
  );
  console.log(`\nwrote ${join(out, 'results.json')}, table.txt and throughput.svg`);
} finally {
  await rm(root, { recursive: true, force: true });
}

async function start(name: string, dir: string): Promise<BenchSystem | null> {
  await mkdir(dir, { recursive: true });
  const system =
    name === 'tandem'
      ? await startTandem(dir)
      : name === 'redis'
        ? await startRedis(dir)
        : name === 'etcd'
          ? await startEtcd(dir)
          : (() => {
              throw new Error(`unknown system '${name}': tandem, redis or etcd`);
            })();
  if (system === null) {
    const why = name === 'redis' ? redisMissing : etcdMissing;
    if (!skipped.has(why)) console.log(why);
    skipped.add(why);
  }
  return system;
}

function titleOf(id: string): string {
  return `${id}: ${workloads.find((w) => w.id === id)?.title ?? id}`;
}
