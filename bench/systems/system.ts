/**
 * A benchmarked system: started on loopback with durable writes, it tells
 * where clients send writes and linearizable reads and which processes to
 * measure, and stops its processes by pid.
 */

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Protocol } from '../load/run-load.js';

export interface BenchSystem {
  readonly name: string;
  readonly protocol: Protocol;
  /** Where clients connect: the leader or primary. */
  readonly ports: readonly number[];
  /** Server processes by name. */
  pids(): ReadonlyMap<string, number>;
  stop(): Promise<void>;
}

const run = promisify(execFile);

/** Whether `command` is on the PATH. */
export async function has(command: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${command}`]);
    return true;
  } catch {
    return false;
  }
}
