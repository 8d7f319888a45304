/**
 * Tandem as benchmarked: a cluster of `tandem node` processes on loopback
 * with the production defaults (fsync on: a write is acknowledged once a
 * majority made it durable). Clients talk to the leader.
 */

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ProcessCluster } from '../process-cluster.js';
import type { BenchSystem } from './system.js';

export async function startTandem(
  root: string,
  nodes = 3,
  extraArgs: readonly string[] = [],
): Promise<BenchSystem & { readonly cluster: ProcessCluster }> {
  const cluster = await ProcessCluster.plan(join(root, 'tandem'), nodes, [
    '--log-level',
    'warn',
    ...extraArgs,
  ]);
  await mkdir(cluster.root, { recursive: true });
  try {
    await cluster.start();
    const leader = await cluster.leader();
    return {
      name: 'tandem',
      protocol: 'resp',
      ports: [leader.respPort],
      cluster,
      pids: () =>
        new Map(
          cluster.nodes.flatMap((n) =>
            n.child?.pid === undefined ? [] : [[n.id, n.child.pid] as [string, number]],
          ),
        ),
      stop: () => cluster.stop(),
    };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}
