import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Prng } from '../src/raft/prng.js';
import { ChaosCluster } from './cluster.js';
import { kindsFor, nemesisGroups, startFault } from './nemesis.js';

// Link faults only touch the proxies' link table: a planned (not started)
// cluster is enough to check their shapes.
let root = '';
afterEach(async () => {
  if (root !== '') await rm(root, { recursive: true, force: true });
  root = '';
});

async function planned(size: number): Promise<ChaosCluster> {
  root = await mkdtemp(join(tmpdir(), 'tandem-nemesis-'));
  return ChaosCluster.plan({ size, root, runner: 'dist', tickMs: 50 });
}

/** Which nodes each node can still reach both ways. */
function reach(cluster: ChaosCluster): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const a of cluster.ids) {
    out.set(
      a,
      cluster.ids.filter(
        (b) =>
          b !== a &&
          cluster.links.get(a, b).kind === 'pass' &&
          cluster.links.get(b, a).kind === 'pass',
      ),
    );
  }
  return out;
}

describe('nemeses', () => {
  it('every group has kinds, and every kind is known', () => {
    for (const g of nemesisGroups) expect(kindsFor([g]).length).toBeGreaterThan(0);
  });

  it('majorities ring on 5 nodes: each node reaches exactly two others, no two alike', async () => {
    const cluster = await planned(5);
    const fault = await startFault('partition-ring', cluster, new Prng(1));
    const r = reach(cluster);
    const seen = new Set<string>();
    for (const [id, peers] of r) {
      expect(peers).toHaveLength(2);
      seen.add([id, ...peers].sort().join(','));
    }
    expect(seen.size).toBe(5);
    await fault.heal();
    expect(cluster.links.faulty()).toEqual({});
  });

  it('halves cut a minority off; bridge keeps one node linked to both sides', async () => {
    const cluster = await planned(5);
    const halves = await startFault('partition-halves', cluster, new Prng(2));
    const sizes = [...reach(cluster).values()].map((p) => p.length).sort();
    expect(sizes).toEqual([1, 1, 2, 2, 2]);
    await halves.heal();
    const bridge = await startFault('partition-bridge', cluster, new Prng(3));
    const r = reach(cluster);
    expect([...r.values()].filter((p) => p.length === 4)).toHaveLength(1);
    await bridge.heal();
  });

  it('one-way: nobody reaches the target, the target still reaches everyone', async () => {
    const cluster = await planned(3);
    const fault = await startFault('partition-oneway', cluster, new Prng(4));
    const target = fault.detail.split(' ')[0] ?? '';
    for (const id of cluster.ids.filter((i) => i !== target)) {
      expect(cluster.links.get(id, target).kind).not.toBe('pass');
      expect(cluster.links.get(target, id).kind).toBe('pass');
    }
    await fault.heal();
  });
});
