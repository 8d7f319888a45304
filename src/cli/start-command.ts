/**
 * `tandem start`: a local cluster for development. Node i (1-based) is a
 * child process running `tandem node`, with RESP on 7378+i, admin HTTP on
 * 8378+i and the peer link on 9378+i, its data under DATA/n<i> (so the next
 * start resumes from the same data). Runs until Ctrl-C, then stops the
 * children with SIGTERM and waits for them.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { findLeader, probeAll, sleep } from './admin-client.js';

const respBasePort = 7378;
const httpBasePort = 8378;
const peerBasePort = 9378;
const nodesMax = 9;
/** How long the children get to stop before they are killed. */
const childStopTimeoutMs = 20_000;
const pollMs = 500;

export interface StartOptions {
  readonly nodes: number;
  readonly data: string;
  readonly host: string;
  readonly logLevel: string;
}

export interface ChildPlan {
  readonly id: string;
  readonly args: readonly string[];
  readonly resp: string;
  readonly http: string;
}

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('run a local cluster of child processes until Ctrl-C')
    .option('--nodes <n>', `how many nodes (1-${nodesMax})`, '3')
    .option('--data <dir>', 'data directory; node i uses DIR/n<i>', './tandem-data')
    .option('--host <host>', 'address every node listens on', '127.0.0.1')
    .option('--log-level <level>', 'log level of the nodes', 'info')
    .action(async (options: { nodes: string; data: string; host: string; logLevel: string }) => {
      const nodes = Number(options.nodes);
      if (!Number.isInteger(nodes) || nodes < 1 || nodes > nodesMax) {
        process.stderr.write(
          `tandem start: --nodes must be an integer from 1 to ${nodesMax}, got '${options.nodes}'\n`,
        );
        process.exitCode = 2;
        return;
      }
      process.exitCode = await start({ ...options, nodes });
    });
}

/** The `tandem node` arguments of each child. */
export function planCluster(options: StartOptions): ChildPlan[] {
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
  const initialCluster = ids.map((i) => `n${i}=${host}:${peerBasePort + i}`).join(',');
  return ids.map((i) => {
    const resp = `${host}:${respBasePort + i}`;
    const http = `${host}:${httpBasePort + i}`;
    return {
      id: `n${i}`,
      resp,
      http,
      args: [
        'node',
        '--id',
        `n${i}`,
        '--data',
        resolve(options.data, `n${i}`),
        '--resp',
        resp,
        '--http',
        http,
        '--peer',
        `${host}:${peerBasePort + i}`,
        '--initial-cluster',
        initialCluster,
        '--log-level',
        options.logLevel,
      ],
    };
  });
}

function prefixLines(child: ChildProcess, id: string): void {
  for (const [stream, out] of [
    [child.stdout, process.stdout],
    [child.stderr, process.stderr],
  ] as const) {
    if (stream === null) continue;
    createInterface({ input: stream }).on('line', (line) => out.write(`[${id}] ${line}\n`));
  }
}

async function start(options: StartOptions): Promise<number> {
  const plans = planCluster(options);
  // The same entry point and loader flags (tsx in development) as this process.
  const entry = process.argv[1];
  if (entry === undefined) throw new Error('cannot tell which script is running');
  const children = new Map<string, ChildProcess>();
  const exited = new Map<string, Promise<number | null>>();
  for (const plan of plans) {
    const child = spawn(process.execPath, [...process.execArgv, entry, ...plan.args], {
      // Own process group: Ctrl-C reaches only this process, which then stops the children.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.set(plan.id, child);
    exited.set(
      plan.id,
      new Promise((done) =>
        child.on('exit', (code, signal) => {
          process.stdout.write(`[${plan.id}] exited (${signal ?? `code ${code}`})\n`);
          done(code);
        }),
      ),
    );
    prefixLines(child, plan.id);
    process.stdout.write(
      `${plan.id}: RESP ${plan.resp}  HTTP http://${plan.http}  (pid ${child.pid})\n`,
    );
  }
  // Should this process die without the signal handlers, do not leave orphans.
  const killAll = (): void => {
    for (const child of children.values()) if (child.exitCode === null) child.kill('SIGTERM');
  };
  process.on('exit', killAll);

  let stopping = false;
  const stopped = new Promise<void>((done) => {
    const onSignal = (): void => {
      if (stopping) return;
      stopping = true;
      process.stdout.write('stopping the cluster...\n');
      killAll();
      done();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });

  const endpoints = plans.map((p) => `http://${p.http}`);
  void watchLeader(endpoints, () => stopping);
  await stopped;
  const timer = setTimeout(() => {
    process.stderr.write(`children still running after ${childStopTimeoutMs} ms: killing them\n`);
    for (const child of children.values()) if (child.exitCode === null) child.kill('SIGKILL');
  }, childStopTimeoutMs);
  const codes = await Promise.all(exited.values());
  clearTimeout(timer);
  process.off('exit', killAll);
  return codes.every((c) => c === 0) ? 0 : 1;
}

/** Prints who leads whenever that changes. */
async function watchLeader(endpoints: readonly string[], stopping: () => boolean): Promise<void> {
  let last = '';
  while (!stopping()) {
    const leader = findLeader(await probeAll(endpoints));
    const now = leader === undefined ? '' : `${leader.status.id}@${leader.status.term}`;
    if (leader !== undefined && now !== last && !stopping()) {
      process.stdout.write(
        `leader: ${leader.status.id} (term ${leader.status.term}, admin ${leader.endpoint})\n`,
      );
    }
    last = now;
    await sleep(pollMs);
  }
}
