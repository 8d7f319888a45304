/**
 * `npm run chaos -- --duration 60 [--nodes 3|5] [--nemesis kill,pause,...] [--seed N]`
 * Exits 1 when the run found a violation (the results folder is printed).
 */

import { Command, InvalidArgumentError } from 'commander';
import { type NemesisGroup, nemesisGroups } from './nemesis.js';
import { defaultResultsDir, runChaos } from './run.js';
import { type WorkloadName, workloadNames } from './workloads.js';

function integer(min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    }
    return value;
  };
}

function list<T extends string>(known: readonly T[]) {
  return (text: string): T[] => {
    if (text === 'all') return [...known];
    if (text === 'none') return [];
    const items = text.split(',').map((s) => s.trim());
    for (const item of items) {
      if (!(known as readonly string[]).includes(item)) {
        throw new InvalidArgumentError(
          `'${item}' is not one of ${known.join(', ')} (or all, none)`,
        );
      }
    }
    return items as T[];
  };
}

const program = new Command('chaos')
  .description('fault injection against a real Tandem cluster on loopback, Jepsen-style')
  .option('--duration <s>', 'seconds of faults and load', integer(1, 86_400), 60)
  .option('--nodes <n>', 'cluster size', integer(1, 9), 3)
  .option(
    '--nemesis <list>',
    `fault groups: ${nemesisGroups.join(',')} (all, none)`,
    list(nemesisGroups),
    [...nemesisGroups],
  )
  .option('--workload <list>', `workloads: ${workloadNames.join(',')}`, list(workloadNames), [
    ...workloadNames,
  ])
  .option(
    '--seed <n>',
    'seed of the fault schedule and the clients (default: random)',
    integer(0, 2 ** 32 - 1),
  )
  .option('--clients <n>', 'concurrent clients', integer(1, 100), 9)
  .option('--tick-ms <ms>', "the nodes' Raft tick", integer(5, 1_000), 50)
  .option('--runner <kind>', 'dist (built CLI) or tsx (sources)', 'dist')
  .option('--results <dir>', 'where results folders go', defaultResultsDir)
  .option('--keep', 'save the results folder even when the run passed', false)
  .option('--quiet-ms <lo,hi>', 'quiet time between faults', '1000,3000')
  .option('--fault-ms <lo,hi>', 'how long each fault lasts', '2000,6000')
  .option('--overlap', 'process and network faults on two schedules at once', false)
  .option(
    '--node-args <flags>',
    "extra flags for every node, e.g. --node-args='--read-mode lease'",
    '',
  )
  .option(
    '--planted-bug <name>',
    'start the nodes with a planted bug (skip-watch or stale-reads), to see it caught',
  );

program.parse();
const o = program.opts<{
  duration: number;
  nodes: number;
  nemesis: NemesisGroup[];
  workload: WorkloadName[];
  seed?: number;
  clients: number;
  tickMs: number;
  runner: string;
  results: string;
  keep: boolean;
  quietMs: string;
  faultMs: string;
  plantedBug?: string;
  nodeArgs: string;
  overlap: boolean;
}>();

const range = (text: string): [number, number] => {
  const [lo, hi] = text.split(',').map(Number);
  if (lo === undefined || hi === undefined || !(lo >= 0 && hi >= lo)) {
    throw new Error(`expected LO,HI milliseconds, got '${text}'`);
  }
  return [lo, hi];
};

if (o.runner !== 'dist' && o.runner !== 'tsx') throw new Error('--runner must be dist or tsx');
const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
const summary = await runChaos({
  durationS: o.duration,
  nodes: o.nodes,
  nemeses: o.nemesis,
  workloads: o.workload,
  seed,
  clients: o.clients,
  runner: o.runner,
  tickMs: o.tickMs,
  resultsDir: o.results,
  keep: o.keep,
  recoveryMsMax: 30_000,
  quietMs: range(o.quietMs),
  faultMs: range(o.faultMs),
  nodeArgs: o.nodeArgs.split(' ').filter((a) => a !== ''),
  overlap: o.overlap,
  ...(o.plantedBug === undefined ? {} : { env: { TANDEM_PLANTED_BUG: o.plantedBug } }),
});
process.exit(summary.ok ? 0 : 1);
