/**
 * A sweep of consecutive seeds for the test suite: short fault phases, so
 * that thousands of seeds fit in a CI run. Split across test files so the
 * test runner spreads them over the cores.
 */
import { type RunResult, runSeed } from './simulation.js';

/** Fault phases of 5–20 simulated seconds (the CLI default is 10–60). */
export const sweepFaultPhaseMsRange: readonly [number, number] = [5_000, 20_000];

export interface SweepSummary {
  readonly line: string;
  readonly failures: readonly string[];
  readonly inconclusive: readonly number[];
}

export async function sweep(firstSeed: number, count: number): Promise<SweepSummary> {
  const started = performance.now();
  let simMs = 0;
  let operations = 0;
  const failures: string[] = [];
  const inconclusive: number[] = [];
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    const result = await runSeed(seed, { faultPhaseMsRange: sweepFaultPhaseMsRange });
    simMs += result.stats.simMs;
    operations += result.stats.operations;
    if (result.violations.length > 0) failures.push(describeFailure(result));
    if (result.stats.linearizability.startsWith('inconclusive')) inconclusive.push(seed);
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const line = `seeds ${firstSeed}..${firstSeed + count - 1}: runs: ${count}, simulated seconds: ${(simMs / 1000).toFixed(0)}, wall seconds: ${wallSeconds.toFixed(1)}, sim/wall: ${(simMs / 1000 / wallSeconds).toFixed(1)}, client operations: ${operations}, violations: ${failures.length}, inconclusive linearizability checks: ${inconclusive.length}`;
  return { line, failures, inconclusive };
}

function describeFailure(result: RunResult): string {
  return [
    `seed ${result.seed}: ${result.violations.join('; ')}`,
    `  replay: ${replayCommand(result)}`,
    ...result.trace.slice(-20).map((l) => `  ${l}`),
  ].join('\n');
}

/** The CLI command that replays a sweep run exactly (the phase length is the only difference). */
export function replayCommand(result: RunResult): string {
  const options = JSON.stringify({ faultPhaseMs: result.options.faultPhaseMs });
  return `npm run sim -- --seed ${result.seed} --options '${options}' --verbose`;
}
