/**
 * Network partition shapes, as sets of blocked one-way links. Pure functions
 * of the node list and a generator, so tests can check each shape's promise.
 */
import type { Random } from '../src/raft/prng.js';
import type { NodeId } from '../src/raft/types.js';

export type PartitionKind =
  | 'isolate'
  | 'isolateInbound'
  | 'isolateOutbound'
  | 'halves'
  | 'majoritiesRing'
  | 'bridge'
  | 'oneWayLinks';

export const partitionKinds: readonly PartitionKind[] = [
  'isolate',
  'isolateInbound',
  'isolateOutbound',
  'halves',
  'majoritiesRing',
  'bridge',
  'oneWayLinks',
];

export interface Partition {
  readonly kind: PartitionKind;
  /** Human-readable shape, for traces: groups and cut directions. */
  readonly label: string;
  /** Links that drop every message, as [from, to]. */
  readonly blocked: readonly (readonly [NodeId, NodeId])[];
}

export function makePartition(
  kind: PartitionKind,
  nodes: readonly NodeId[],
  random: Random,
): Partition {
  switch (kind) {
    case 'isolate':
      return isolate(nodes, pick(nodes, random), 'both');
    case 'isolateInbound':
      return isolate(nodes, pick(nodes, random), 'inbound');
    case 'isolateOutbound':
      return isolate(nodes, pick(nodes, random), 'outbound');
    case 'halves':
      return halves(nodes, random);
    case 'majoritiesRing':
      return majoritiesRing(nodes, random);
    case 'bridge':
      return bridge(nodes, random);
    case 'oneWayLinks':
      return oneWayLinks(nodes, random);
  }
}

/** Cuts `victim` off: both ways, only what it receives, or only what it sends. */
export function isolate(
  nodes: readonly NodeId[],
  victim: NodeId,
  direction: 'both' | 'inbound' | 'outbound',
): Partition {
  const blocked: [NodeId, NodeId][] = [];
  for (const other of nodes) {
    if (other === victim) continue;
    if (direction !== 'outbound') blocked.push([other, victim]);
    if (direction !== 'inbound') blocked.push([victim, other]);
  }
  const kind: PartitionKind =
    direction === 'both'
      ? 'isolate'
      : direction === 'inbound'
        ? 'isolateInbound'
        : 'isolateOutbound';
  const arrow = direction === 'both' ? '<-/->' : direction === 'inbound' ? '<-/-' : '-/->';
  return { kind, label: `${victim} ${arrow} rest`, blocked };
}

/** Two random groups (sizes as even as possible) that cannot talk to each other. */
export function halves(nodes: readonly NodeId[], random: Random): Partition {
  const shuffled = shuffle(nodes, random);
  const cut = Math.floor(shuffled.length / 2);
  const a = shuffled.slice(0, cut);
  const b = shuffled.slice(cut);
  return { kind: 'halves', label: `${group(a)} | ${group(b)}`, blocked: between(a, b) };
}

/**
 * Nodes on a ring, each connected only to its nearest neighbours on both
 * sides, so each one sees a majority (itself included) and, from five nodes
 * on, no two see the same majority (Jepsen's "majorities ring").
 */
export function majoritiesRing(nodes: readonly NodeId[], random: Random): Partition {
  const ring = shuffle(nodes, random);
  const n = ring.length;
  const reach = Math.ceil(Math.floor(n / 2) / 2);
  const blocked: [NodeId, NodeId][] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const distance = Math.min((i - j + n) % n, (j - i + n) % n);
      if (distance > reach) blocked.push([ring[i] as NodeId, ring[j] as NodeId]);
    }
  }
  return { kind: 'majoritiesRing', label: `ring ${ring.join('~')} reach ${reach}`, blocked };
}

/** Two halves joined only through one bridge node that talks to both. */
export function bridge(nodes: readonly NodeId[], random: Random): Partition {
  const shuffled = shuffle(nodes, random);
  const middle = shuffled[0];
  if (middle === undefined) return { kind: 'bridge', label: 'bridge (no nodes)', blocked: [] };
  const rest = shuffled.slice(1);
  const cut = Math.ceil(rest.length / 2);
  const a = rest.slice(0, cut);
  const b = rest.slice(cut);
  return {
    kind: 'bridge',
    label: `${group(a)} <- ${middle} -> ${group(b)}`,
    blocked: between(a, b),
  };
}

/** Each ordered link is cut with probability 1/3, independently: asymmetric chaos. */
export function oneWayLinks(nodes: readonly NodeId[], random: Random): Partition {
  const blocked: [NodeId, NodeId][] = [];
  for (const from of nodes) {
    for (const to of nodes) {
      if (from !== to && random.int(3) === 0) blocked.push([from, to]);
    }
  }
  const label = blocked.map(([f, t]) => `${f}-/->${t}`).join(' ');
  return { kind: 'oneWayLinks', label: label === '' ? 'no links cut' : label, blocked };
}

function between(a: readonly NodeId[], b: readonly NodeId[]): [NodeId, NodeId][] {
  const blocked: [NodeId, NodeId][] = [];
  for (const x of a) {
    for (const y of b) {
      blocked.push([x, y], [y, x]);
    }
  }
  return blocked;
}

function group(ids: readonly NodeId[]): string {
  return `{${ids.join(',')}}`;
}

function pick(nodes: readonly NodeId[], random: Random): NodeId {
  const node = nodes[random.int(Math.max(1, nodes.length))];
  if (node === undefined) throw new RangeError('partition: no nodes to pick from');
  return node;
}

export function shuffle<T>(items: readonly T[], random: Random): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    const t = out[i] as T;
    out[i] = out[j] as T;
    out[j] = t;
  }
  return out;
}
