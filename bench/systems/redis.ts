/**
 * Redis as the reference: a primary and 2 replicas on loopback with
 * `appendonly yes` and `appendfsync always` (the primary fsyncs each write
 * before answering; replication to the replicas is asynchronous, so a
 * failover can lose acknowledged writes — Tandem's guarantee is stronger).
 * Debian's redis-server.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from '../../src/node/test-cluster.test-util.js';
import { type BenchSystem, has } from './system.js';

const replicasTimeoutMs = 30_000;
const stopTimeoutMs = 10_000;

export const redisMissing =
  'redis-server is not installed: skipping Redis (apt-get install -y redis-server)';

/** Starts the primary and its replicas under `root`; null if redis-server is missing. */
export async function startRedis(root: string, replicas = 2): Promise<BenchSystem | null> {
  if (!(await has('redis-server'))) return null;
  const ports: number[] = [];
  for (let i = 0; i <= replicas; i++) ports.push(await freePort());
  const children: ChildProcess[] = [];
  const system: BenchSystem = {
    name: 'redis',
    protocol: 'resp',
    ports: [ports[0] as number],
    pids: () =>
      new Map(children.map((c, i) => [i === 0 ? 'primary' : `replica${i}`, c.pid as number])),
    stop: () => stopAll(children),
  };
  try {
    for (const [i, port] of ports.entries()) {
      const dir = join(root, `redis-${port}`);
      await mkdir(dir, { recursive: true });
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir];
      args.push('--appendonly', 'yes', '--appendfsync', 'always', '--save', '');
      if (i > 0) args.push('--replicaof', '127.0.0.1', String(ports[0]));
      children.push(spawn('redis-server', args, { stdio: 'ignore' }));
    }
    await waitForReplicas(ports[0] as number, replicas);
    return system;
  } catch (err) {
    await system.stop();
    throw err;
  }
}

async function waitForReplicas(port: number, replicas: number): Promise<void> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
  client.on('error', () => undefined);
  const deadline = performance.now() + replicasTimeoutMs;
  try {
    while (performance.now() < deadline) {
      try {
        if (client.status !== 'ready') await client.connect();
        const info = await client.info('replication');
        if ((info.match(/state=online/g) ?? []).length === replicas) return;
      } catch {
        // Not up yet.
      }
      await sleep(100);
    }
    throw new Error(`Redis replicas did not come online within ${replicasTimeoutMs} ms`);
  } finally {
    client.disconnect();
  }
}

/** SIGTERM, then SIGKILL for processes still running after the stop timeout (by pid). */
export async function stopAll(children: readonly ChildProcess[]): Promise<void> {
  const live = children.filter((c) => c.exitCode === null && c.signalCode === null);
  const exited = live.map((c) => new Promise<void>((done) => c.once('exit', () => done())));
  for (const child of live) child.kill('SIGTERM');
  await Promise.race([Promise.all(exited), sleep(stopTimeoutMs)]);
  for (const child of live)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
