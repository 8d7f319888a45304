/**
 * Runs a load generator in its own process (so its CPU is not the servers')
 * and returns its result. The generator is resp-load.ts for RESP servers
 * (Tandem, Redis) and etcd-load.ts for etcd.
 */

import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { checkSpec, type LoadResult, type LoadSpec } from './spec.js';

const run = promisify(execFile);
const here = import.meta.dirname;
/** Beyond the spec's own time: connecting, warming up, draining the last batch. */
const slackMs = 60_000;

export type Protocol = 'resp' | 'etcd';

export async function runLoad(protocol: Protocol, spec: LoadSpec): Promise<LoadResult> {
  checkSpec(spec);
  const script = resolve(here, protocol === 'resp' ? 'resp-load.ts' : 'etcd-load.ts');
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', script, JSON.stringify(spec)],
    {
      timeout: spec.warmupMs + spec.durationMs + slackMs,
      maxBuffer: 1 << 20,
      killSignal: 'SIGKILL',
    },
  ).catch((err: { stderr?: string; message: string }) => {
    throw new Error(`the ${protocol} load generator failed: ${err.stderr?.trim() || err.message}`);
  });
  const line = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as LoadResult;
}
