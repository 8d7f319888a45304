/**
 * Real `tandem node` processes for tests: a cluster on loopback ports, each
 * node's output kept for failure messages, and cleanup by pid after each
 * test (kill -9 of what is still running, then the data removed).
 * `useProcesses()` registers the hooks in the calling test file.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { freePort, waitFor as waitUntil } from '../src/node/test-cluster.test-util.js';

export const repo = resolve(import.meta.dirname, '..');

export interface Child {
  readonly id: string;
  readonly args: readonly string[];
  readonly process: ChildProcess;
  readonly http: string;
  readonly respPort: number;
  readonly output: string[];
  readonly exited: Promise<number | null>;
}

let root = '';
let children: Child[] = [];

/** The current test's scratch directory. */
export function rootDir(): string {
  return root;
}

/** Every process the current test started. */
export function started(): readonly Child[] {
  return children;
}

export interface ClusterOptions {
  /** Where node `id` keeps its data (default: under the test's root). */
  readonly dataDir?: (id: string) => string;
  readonly extraArgs?: readonly string[];
  /** Flags for one node only, after the shared ones. */
  readonly argsFor?: (id: string) => readonly string[];
}

export async function startCluster(size: number, options: ClusterOptions = {}): Promise<Child[]> {
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const ports = new Map<string, { resp: number; http: number; peer: number }>();
  for (const id of ids)
    ports.set(id, { resp: await freePort(), http: await freePort(), peer: await freePort() });
  const initialCluster = ids.map((id) => `${id}=127.0.0.1:${ports.get(id)?.peer}`).join(',');
  return ids.map((id) => {
    const p = ports.get(id);
    if (p === undefined) throw new Error('no ports');
    const args = [
      ...['--import', 'tsx', 'src/cli/main.ts', 'node', '--id', id],
      ...['--data', options.dataDir?.(id) ?? join(root, id)],
      ...['--resp', `127.0.0.1:${p.resp}`, '--http', `127.0.0.1:${p.http}`],
      ...['--initial-cluster', initialCluster, '--tick-ms', '20', '--log-level', 'warn'],
      ...(options.extraArgs ?? []),
      ...(options.argsFor?.(id) ?? []),
    ];
    return spawnChild(id, args, `http://127.0.0.1:${p.http}`, p.resp);
  });
}

export function spawnChild(
  id: string,
  args: readonly string[],
  http: string,
  respPort: number,
): Child {
  const child = spawn(process.execPath, args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  const started: Child = { id, args, process: child, http, respPort, output, exited };
  children.push(started);
  return started;
}

/** Starts a node again with the same flags and data directory. */
export function restart(node: Child): Child {
  return spawnChild(node.id, node.args, node.http, node.respPort);
}

export interface Status {
  id: string;
  role: string;
  leader: string;
  term: number;
  commit: number;
  applied: number;
}

export async function getJson<T>(url: string): Promise<{ status: number; body: T } | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    return { status: response.status, body: (await response.json()) as T };
  } catch {
    return null;
  }
}

/** Polls with the nodes' recent output in the timeout error. */
export function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const context = (): string =>
    children.map((c) => `--- ${c.id}\n${c.output.join('').slice(-2_000)}`).join('\n');
  return waitUntil(what, probe, { timeoutMs, intervalMs: 50, context });
}

export async function leaderAmong(
  nodes: readonly Child[],
): Promise<{ child: Child; status: Status } | undefined> {
  for (const child of nodes) {
    const answer = await getJson<Status>(`${child.http}/status`);
    if (answer?.body.role === 'leader') return { child, status: answer.body };
  }
  return undefined;
}

/** Waits until every node answers 200 on /ready. */
export async function allReady(nodes: readonly Child[]): Promise<void> {
  for (const child of nodes) {
    await waitFor(
      `${child.id} ready`,
      async () => ((await getJson(`${child.http}/ready`))?.status === 200 ? true : undefined),
      30_000,
    );
  }
}

/** Retries while the cluster is electing (TRYAGAIN or a dropped connection). */
export async function setWithRetry(port: number, key: string, value: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await waitFor(
      `SET ${key} on port ${port}`,
      async () => {
        try {
          if (client.status !== 'ready') await client.connect().catch(() => undefined);
          return (await client.set(key, value)) === 'OK' ? true : undefined;
        } catch {
          return undefined;
        }
      },
      15_000,
    );
  } finally {
    client.disconnect();
  }
}

export async function get(port: number, key: string): Promise<string | null> {
  const { Redis } = await import('ioredis');
  const client = new Redis({ port, host: '127.0.0.1' });
  try {
    return await client.get(key);
  } finally {
    client.disconnect();
  }
}

/** Registers the scratch directory and process cleanup hooks for the calling test file. */
export function useProcesses(): void {
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'tandem-cli-'));
  });

  afterEach(async () => {
    for (const child of children) {
      if (
        child.process.exitCode === null &&
        child.process.signalCode === null &&
        child.process.pid !== undefined
      ) {
        try {
          process.kill(child.process.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    await Promise.all(children.map((c) => c.exited));
    children = [];
    await rm(root, { recursive: true, force: true });
  });
}

/** Mounts a tmpfs of `sizeMb` at `dir`; false (with the reason) when this machine does not allow it. */
export function mountTmpfs(dir: string, sizeMb: number): { ok: boolean; why: string } {
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { ok: result.status === 0, why: (result.stderr || result.error?.message) ?? '' };
}

/** Runs the tandem CLI to completion (bounded), capturing its output. */
export function runCli(
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}
