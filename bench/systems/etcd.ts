/**
 * etcd as the reference for a consensus store: 3 members on loopback
 * (Debian's etcd-server, 3.4), each fsyncing its WAL before acknowledging,
 * like Tandem. Clients talk to the leader (found with etcdctl), as Tandem's
 * and Redis's clients talk to their leader and primary.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from '../../src/node/test-cluster.test-util.js';
import { stopAll } from './redis.js';
import { type BenchSystem, has } from './system.js';

const run = promisify(execFile);
const leaderTimeoutMs = 30_000;

export const etcdMissing =
  'etcd is not installed: skipping etcd (apt-get install -y etcd-server etcd-client)';

interface EndpointStatus {
  readonly Endpoint: string;
  readonly Status: { readonly header: { readonly member_id: number }; readonly leader: number };
}

/** Starts `members` etcd members under `root`; null if etcd or etcdctl is missing. */
export async function startEtcd(root: string, members = 3): Promise<BenchSystem | null> {
  if (!(await has('etcd')) || !(await has('etcdctl'))) return null;
  const plan: { name: string; client: number; peer: number }[] = [];
  for (let i = 1; i <= members; i++) {
    plan.push({ name: `e${i}`, client: await freePort(), peer: await freePort() });
  }
  const initialCluster = plan.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const system: BenchSystem = {
    name: 'etcd',
    protocol: 'etcd',
    ports,
    pids: () => new Map(children.map((c, i) => [plan[i]?.name ?? `e${i}`, c.pid as number])),
    stop: () => stopAll(children),
  };
  try {
    for (const m of plan) {
      const dir = join(root, `etcd-${m.name}`);
      await mkdir(dir, { recursive: true });
      const client = `http://127.0.0.1:${m.client}`;
      const peer = `http://127.0.0.1:${m.peer}`;
      const args = ['--name', m.name, '--data-dir', join(dir, 'data')];
      args.push('--listen-client-urls', client, '--advertise-client-urls', client);
      args.push('--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer);
      args.push('--initial-cluster', initialCluster, '--initial-cluster-state', 'new');
      args.push(
        '--initial-cluster-token',
        'tandem-bench',
        '--logger',
        'zap',
        '--log-level',
        'warn',
      );
      const child = spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const log = createWriteStream(join(dir, 'etcd.log'));
      child.stdout?.pipe(log);
      child.stderr?.pipe(log);
      children.push(child);
    }
    const endpoints = plan.map((m) => `127.0.0.1:${m.client}`);
    ports.push(await leaderPort(endpoints));
    return system;
  } catch (err) {
    await system.stop();
    throw err;
  }
}

/** The client port of the member that reports itself leader. */
async function leaderPort(endpoints: readonly string[]): Promise<number> {
  const deadline = performance.now() + leaderTimeoutMs;
  while (performance.now() < deadline) {
    try {
      const { stdout } = await run(
        'etcdctl',
        ['--endpoints', endpoints.join(','), 'endpoint', 'status', '--write-out', 'json'],
        { env: { ...process.env, ETCDCTL_API: '3' } },
      );
      const statuses = JSON.parse(stdout) as EndpointStatus[];
      const leader = statuses.find(
        (s) => s.Status.leader !== 0 && s.Status.header.member_id === s.Status.leader,
      );
      if (leader !== undefined) return Number(leader.Endpoint.split(':').at(-1));
    } catch {
      // Not up yet.
    }
    await sleep(200);
  }
  throw new Error(`etcd elected no leader within ${leaderTimeoutMs} ms`);
}
