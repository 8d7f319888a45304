/**
 * The simulator's command line.
 *
 *   npm run sim -- --seed 123             replay one run exactly (prints its options)
 *   npm run sim -- --seed 123 --verbose   ... and print its whole trace
 *   npm run sim -- --seeds 1000 [--start N]   run many, end with one summary line
 *
 * Options: --fault-seconds S fixes the fault phase length (default: 10–60 s
 * per seed); --options '{"clusterSize":1,"faults":["crashLeader"]}' overrides
 * any per-seed option (names as --seed prints them); --jobs J runs seeds on J
 * threads (default: one per core). Exit code 1 if any run found a violation.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { type RunOverrides, type RunResult, runSeed } from './simulation.js';

interface Cli {
  readonly seed: number | null;
  readonly seeds: number;
  readonly start: number;
  readonly verbose: boolean;
  readonly faultSeconds: number | null;
  readonly jobs: number;
  /** Option overrides as JSON text (e.g. '{"clusterSize":1}'), kept verbatim for replay. */
  readonly optionsJson: string | null;
}

/** What a worker thread is asked to do, and sends back per seed. */
interface WorkerTask {
  readonly seeds: readonly number[];
  readonly overrides: RunOverrides;
}

function parseCli(argv: readonly string[]): Cli {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      seed: { type: 'string' },
      seeds: { type: 'string' },
      start: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      'fault-seconds': { type: 'string' },
      jobs: { type: 'string' },
      options: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      'usage: npm run sim -- [--seed N [--verbose]] | [--seeds COUNT [--start N] [--jobs J]] [--fault-seconds S] [--options JSON]',
    );
    process.exit(0);
  }
  const int = (name: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`--${name} must be a non-negative integer, got '${text}'`);
    }
    return n;
  };
  const faultSecondsText = values['fault-seconds'];
  const faultSeconds = faultSecondsText === undefined ? null : Number(faultSecondsText);
  if (faultSeconds !== null && !(faultSeconds >= 0)) {
    throw new RangeError(
      `--fault-seconds must be a non-negative number, got '${faultSecondsText}'`,
    );
  }
  return {
    seed: values.seed === undefined ? null : int('seed', values.seed, 0),
    seeds: int('seeds', values.seeds, 1),
    start: int('start', values.start, 1),
    verbose: values.verbose ?? false,
    faultSeconds,
    jobs: Math.max(1, int('jobs', values.jobs, availableParallelism())),
    optionsJson: values.options ?? null,
  };
}

/** Overrides of the per-seed options (names as printed by --seed), for aiming runs at one area. */
function parseOptions(json: string | null): RunOverrides {
  if (json === null) return {};
  const parsed: unknown = JSON.parse(json);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new RangeError(
      `--options must be a JSON object such as '{"clusterSize":1}', got ${json}`,
    );
  }
  return parsed as RunOverrides;
}

function replayCommand(seed: number, cli: Cli): string {
  const fault = cli.faultSeconds === null ? '' : ` --fault-seconds ${cli.faultSeconds}`;
  const options = cli.optionsJson === null ? '' : ` --options '${cli.optionsJson}'`;
  return `npm run sim -- --seed ${seed}${fault}${options} --verbose`;
}

function report(result: RunResult, cli: Cli): void {
  console.log(`\nFAILED seed ${result.seed}`);
  for (const v of result.violations) console.log(`  violation: ${v}`);
  console.log(`  options: ${JSON.stringify(result.options)}`);
  console.log(`  last ${result.trace.length} events:`);
  for (const line of result.trace) console.log(`    ${line}`);
  console.log(`  replay: ${replayCommand(result.seed, cli)}`);
}

function describeStats(result: RunResult): string {
  const s = result.stats;
  const converged =
    s.convergedAfterMs === null ? 'no' : `${s.convergedAfterMs.toFixed(0)}ms after healing`;
  return [
    `simulated ${(s.simMs / 1000).toFixed(3)}s, ${s.events} events, ${s.faults} faults, ${s.nodesCreated} nodes`,
    `client operations ${s.operations} (ok ${s.ok}, fail ${s.fail}, unknown ${s.unknown})`,
    `converged: ${converged}; linearizability: ${s.linearizability}`,
    `trace digest ${result.traceDigest.toString(16)}`,
  ].join('\n');
}

async function main(): Promise<number> {
  const cli = parseCli(process.argv.slice(2));
  const overrides: RunOverrides = {
    ...parseOptions(cli.optionsJson),
    ...(cli.faultSeconds === null ? {} : { faultPhaseMs: Math.round(cli.faultSeconds * 1000) }),
  };
  if (cli.seed !== null) {
    const sink = cli.verbose ? (line: string) => console.log(line) : undefined;
    const result = await runSeed(
      cli.seed,
      sink === undefined ? overrides : { ...overrides, traceSink: sink },
    );
    console.log(`seed ${cli.seed}`);
    console.log(`options: ${JSON.stringify(result.options, null, 2)}`);
    console.log(describeStats(result));
    if (result.violations.length === 0) {
      console.log('no violations');
      return 0;
    }
    report(result, cli);
    return 1;
  }
  const wallStart = performance.now();
  const seeds = Array.from({ length: cli.seeds }, (_, i) => cli.start + i);
  const results = await runMany(seeds, overrides, Math.min(cli.jobs, seeds.length));
  let simMs = 0;
  let operations = 0;
  let failedRuns = 0;
  const inconclusive: number[] = [];
  for (const result of results) {
    simMs += result.stats.simMs;
    operations += result.stats.operations;
    if (result.stats.linearizability.startsWith('inconclusive')) inconclusive.push(result.seed);
    if (result.violations.length > 0) {
      failedRuns++;
      report(result, cli);
    }
  }
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const simSeconds = simMs / 1000;
  if (inconclusive.length > 0) {
    const seeds = inconclusive.slice(0, 20).join(', ');
    const more = inconclusive.length > 20 ? ', ...' : '';
    console.log(
      `(${inconclusive.length} runs with an inconclusive linearizability check, not counted as violations: seeds ${seeds}${more})`,
    );
  }
  console.log(
    `runs: ${cli.seeds}, simulated seconds: ${simSeconds.toFixed(0)}, wall seconds: ${wallSeconds.toFixed(1)}, sim/wall: ${(simSeconds / wallSeconds).toFixed(1)}, client operations: ${operations}, violations: ${failedRuns}`,
  );
  return failedRuns > 0 ? 1 : 0;
}

/** Runs seeds on `jobs` threads; results come back in seed order, so output is deterministic. */
async function runMany(
  seeds: readonly number[],
  overrides: RunOverrides,
  jobs: number,
): Promise<RunResult[]> {
  if (jobs <= 1) return runInOrder(seeds, overrides);
  const shares = Array.from({ length: jobs }, (_, k) => seeds.filter((_, i) => i % jobs === k));
  const parts = await Promise.all(
    shares.map(
      (share) =>
        new Promise<RunResult[]>((resolve, reject) => {
          const task: WorkerTask = { seeds: share, overrides };
          const worker = startWorker(task);
          worker.once('message', (results: RunResult[]) => resolve(results));
          worker.once('error', reject);
          worker.once('exit', (code) => {
            if (code !== 0) reject(new Error(`simulation worker exited with code ${code}`));
          });
        }),
    ),
  );
  return parts.flat().sort((a, b) => a.seed - b.seed);
}

/** Runs seeds one after the other (never overlapping: see `runSeed`). */
async function runInOrder(seeds: readonly number[], overrides: RunOverrides): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for (const seed of seeds) results.push(await runSeed(seed, overrides));
  return results;
}

/**
 * A thread running this file. Under tsx (`npm run sim`) the TypeScript loader
 * is per thread, so the thread registers it before importing this file.
 */
function startWorker(task: WorkerTask): Worker {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return new Worker(new URL(self), { workerData: task });
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(self)}); });`;
  return new Worker(boot, { eval: true, workerData: task });
}

if (isMainThread) {
  process.exitCode = await main();
} else {
  const task = workerData as WorkerTask;
  parentPort?.postMessage(await runInOrder(task.seeds, task.overrides));
}
