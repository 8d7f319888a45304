import { describe, expect, it } from 'vitest';
import { Prng } from '../src/raft/prng.js';
import type { NodeId } from '../src/raft/types.js';
import { nodeId } from '../src/raft/types.js';
import { Network } from './network.js';
import {
  bridge,
  halves,
  isolate,
  majoritiesRing,
  makePartition,
  oneWayLinks,
  type Partition,
  partitionKinds,
} from './partitions.js';

const ids = (n: number): NodeId[] => Array.from({ length: n }, (_, i) => nodeId(`n${i + 1}`));

function network(partition: Partition | null, options = {}): Network {
  const net = new Network(new Prng(1), {
    delayMsMin: 1,
    delayMsMax: 5,
    lossRate: 0,
    dupRate: 0,
    ...options,
  });
  if (partition !== null) net.setPartition(partition);
  return net;
}

/** Who `from` can send to (itself included). */
function reach(net: Network, nodes: readonly NodeId[], from: NodeId): Set<NodeId> {
  return new Set(nodes.filter((to) => to === from || !net.isBlocked(from, to)));
}

describe('partitions', () => {
  it('isolate cuts one node off both ways; inbound and outbound only one way', () => {
    const nodes = ids(5);
    const [n1, n2] = nodes as [NodeId, NodeId];
    const both = network(isolate(nodes, n1, 'both'));
    expect(both.isBlocked(n1, n2)).toBe(true);
    expect(both.isBlocked(n2, n1)).toBe(true);
    expect(both.isBlocked(nodeId('n2'), nodeId('n3'))).toBe(false);
    const inbound = network(isolate(nodes, n1, 'inbound'));
    expect(inbound.isBlocked(n2, n1)).toBe(true);
    expect(inbound.isBlocked(n1, n2)).toBe(false);
    const outbound = network(isolate(nodes, n1, 'outbound'));
    expect(outbound.isBlocked(n1, n2)).toBe(true);
    expect(outbound.isBlocked(n2, n1)).toBe(false);
  });

  it('halves: two groups, connected inside, cut between, sizes differ by at most one', () => {
    for (const n of [2, 3, 4, 5, 6, 7]) {
      const nodes = ids(n);
      const net = network(halves(nodes, new Prng(n)));
      const groups = new Set(nodes.map((id) => [...reach(net, nodes, id)].sort().join(',')));
      expect(groups.size).toBe(2);
      const sizes = [...groups].map((g) => g.split(',').length).sort();
      expect(sizes[0]).toBe(Math.floor(n / 2));
      expect((sizes[0] ?? 0) + (sizes[1] ?? 0)).toBe(n);
      for (const a of nodes)
        for (const b of nodes) expect(net.isBlocked(a, b)).toBe(net.isBlocked(b, a));
    }
  });

  it('majorities ring: each node sees a majority, and from 5 nodes on no two see the same one', () => {
    for (const n of [3, 4, 5, 6, 7]) {
      const nodes = ids(n);
      const net = network(majoritiesRing(nodes, new Prng(n)));
      const views = nodes.map((id) => reach(net, nodes, id));
      for (const v of views) expect(v.size).toBeGreaterThan(n / 2);
      if (n >= 5) {
        const distinct = new Set(views.map((v) => [...v].sort().join(',')));
        expect(distinct.size).toBe(n);
        // No node sees everyone: the partition really cuts something.
        for (const v of views) expect(v.size).toBeLessThan(n);
      }
      for (const a of nodes)
        for (const b of nodes) expect(net.isBlocked(a, b)).toBe(net.isBlocked(b, a));
    }
  });

  it('bridge: one node talks to both halves, which cannot talk to each other', () => {
    const nodes = ids(5);
    const net = network(bridge(nodes, new Prng(9)));
    const views = nodes.map((id) => reach(net, nodes, id));
    const bridges = nodes.filter((_, i) => views[i]?.size === nodes.length);
    expect(bridges).toHaveLength(1);
    for (const v of views) if (v.size < nodes.length) expect(v.size).toBe(3);
  });

  it('one-way links are asymmetric', () => {
    const nodes = ids(7);
    const net = network(oneWayLinks(nodes, new Prng(4)));
    let asymmetric = 0;
    for (const a of nodes)
      for (const b of nodes) if (net.isBlocked(a, b) && !net.isBlocked(b, a)) asymmetric++;
    expect(asymmetric).toBeGreaterThan(0);
  });

  it('every kind can be built for every cluster size, and healing clears it', () => {
    for (const kind of partitionKinds) {
      for (const n of [2, 3, 5, 7]) {
        const nodes = ids(n);
        const net = network(makePartition(kind, nodes, new Prng(n)));
        net.clearPartition();
        for (const a of nodes) for (const b of nodes) expect(net.isBlocked(a, b)).toBe(false);
      }
    }
  });
});

describe('network', () => {
  it('drops blocked messages, delays others within bounds', () => {
    const nodes = ids(3);
    const net = network(isolate(nodes, nodeId('n1'), 'inbound'));
    expect(net.route(nodeId('n2'), nodeId('n1'), 0)).toEqual({
      delivered: false,
      reason: 'partition',
    });
    for (let i = 0; i < 100; i++) {
      const r = net.route(nodeId('n1'), nodeId('n2'), 0);
      expect(r.delivered).toBe(true);
      if (r.delivered) for (const d of r.delaysMs) expect(d >= 1 && d <= 5).toBe(true);
    }
  });

  it('loses and duplicates at about the configured rates', () => {
    const net = network(null, { lossRate: 0.2, dupRate: 0.1 });
    let lost = 0;
    let doubled = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const r = net.route(nodeId('n1'), nodeId('n2'), 0);
      if (!r.delivered) lost++;
      else if (r.delaysMs.length === 2) doubled++;
    }
    expect(lost / n).toBeCloseTo(0.2, 1);
    expect(doubled / (n - lost)).toBeCloseTo(0.1, 1);
    net.heal();
    for (let i = 0; i < 1000; i++) {
      const r = net.route(nodeId('n1'), nodeId('n2'), 0);
      expect(r.delivered && r.delaysMs.length === 1).toBe(true);
    }
  });

  it('clogs a link for a while, one way', () => {
    const net = network(null);
    net.clog(nodeId('n1'), nodeId('n2'), 100, 1000);
    let slow = 0;
    for (let i = 0; i < 200; i++) {
      const r = net.route(nodeId('n1'), nodeId('n2'), 50);
      if (r.delivered && (r.delaysMs[0] ?? 0) > 5) slow++;
      const back = net.route(nodeId('n2'), nodeId('n1'), 50);
      expect(back.delivered && (back.delaysMs[0] ?? 0) <= 5).toBe(true);
    }
    expect(slow).toBeGreaterThan(150);
    const after = net.route(nodeId('n1'), nodeId('n2'), 100);
    expect(after.delivered && (after.delaysMs[0] ?? 0) <= 5).toBe(true);
  });
});
