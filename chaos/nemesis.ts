/**
 * Faults against a real cluster (cluster.ts), each one started and later
 * healed, chosen by a seeded PRNG. Kinds, grouped as `--nemesis` names them:
 *
 * - kill: kill -9 of the leader, of a random node, of a majority (restarted
 *   at heal);
 * - pause: SIGSTOP of the leader or of a random node (SIGCONT at heal);
 * - partition: isolate the leader; halves (a random minority cut off);
 *   majorities ring (each node sees a majority, no two the same); bridge
 *   (two halves joined by one node); one-way (the leader hears nobody but is
 *   still heard) — by blackholing (drop) or stalling (stall) links in the
 *   proxies, chosen at random per partition;
 * - delay: every link slowed by 50–300 ms;
 * - loss: a third of the links lose chunks (connections cut);
 * - transfer: leadership handed to another node;
 * - member: a member removed from the cluster (its process keeps running),
 *   and added back at heal with the same record (a learner, promoted by the
 *   leader once caught up).
 * - disk: the small tmpfs under the last node's data directory filled to
 *   the last byte (the node raises the NOSPACE alarm, or stops when a log
 *   write fails); at heal the filler goes and a stopped node is restarted.
 */

import { spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Prng } from '../src/raft/prng.js';
import type { ChaosCluster, ChaosNode } from './cluster.js';
import type { LinkMode } from './proxy.js';

export type NemesisGroup =
  | 'kill'
  | 'pause'
  | 'partition'
  | 'delay'
  | 'loss'
  | 'transfer'
  | 'member'
  | 'disk';
export const nemesisGroups: readonly NemesisGroup[] = [
  'kill',
  'pause',
  'partition',
  'delay',
  'loss',
  'transfer',
  'member',
  'disk',
];

const kindsOf: Record<NemesisGroup, readonly string[]> = {
  kill: ['kill-leader', 'kill-random', 'kill-majority'],
  pause: ['pause-leader', 'pause-random'],
  partition: [
    'partition-leader',
    'partition-halves',
    'partition-ring',
    'partition-bridge',
    'partition-oneway',
  ],
  delay: ['delay'],
  loss: ['loss'],
  transfer: ['transfer'],
  member: ['member-readd'],
  disk: ['disk-full'],
};

/** Faults of the links (the proxies), as opposed to the processes. */
export function isNetworkKind(kind: string): boolean {
  return kind.startsWith('partition-') || kind === 'delay' || kind === 'loss';
}

export function kindsFor(groups: readonly NemesisGroup[]): string[] {
  return groups.flatMap((g) => kindsOf[g]);
}

/** A fault in place: what it did, and how to undo it. */
export interface ActiveFault {
  readonly kind: string;
  readonly detail: string;
  heal(): Promise<void>;
}

function shuffled<T>(prng: Prng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = prng.int(i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** The agreed leader, else any running node (a fault still has a target). */
async function leaderOrAny(cluster: ChaosCluster, prng: Prng): Promise<ChaosNode> {
  const leader = await cluster.agreedLeader();
  if (leader !== null) return leader;
  const nodes = cluster.nodes;
  return nodes[prng.int(nodes.length)] as ChaosNode;
}

/** Blackholes every link between the groups (both ways), keeping links inside each. */
function cutBetween(
  cluster: ChaosCluster,
  groups: readonly (readonly string[])[],
  mode: LinkMode,
): void {
  for (const [i, a] of groups.entries()) {
    for (const b of groups.slice(i + 1)) {
      for (const x of a) for (const y of b) cluster.links.setBoth(x, y, mode);
    }
  }
}

/**
 * How a partition cuts: bytes dropped (the connections are cut at heal), or
 * stalled (held, and delivered late at heal on the same connections).
 */
function partitionMode(prng: Prng): LinkMode {
  return prng.int(2) === 0 ? { kind: 'drop' } : { kind: 'stall' };
}

/** How long a disk-full heal waits for an exit already under way (the fatal path takes ~100 ms). */
const diskFullExitGraceMs = 2_000;

const healLinks = (cluster: ChaosCluster) => async (): Promise<void> => cluster.links.healAll();

export async function startFault(
  kind: string,
  cluster: ChaosCluster,
  prng: Prng,
): Promise<ActiveFault> {
  const ids = cluster.ids;
  const majority = Math.floor(ids.length / 2) + 1;
  switch (kind) {
    case 'kill-leader':
    case 'kill-random':
    case 'kill-majority': {
      const targets =
        kind === 'kill-leader'
          ? [await leaderOrAny(cluster, prng)]
          : shuffled(prng, cluster.nodes).slice(0, kind === 'kill-majority' ? majority : 1);
      for (const n of targets) await cluster.kill(n);
      return {
        kind,
        detail: `kill -9 ${targets.map((n) => n.id).join(',')}`,
        heal: async () => {
          for (const n of targets) cluster.spawn(n);
        },
      };
    }
    case 'pause-leader':
    case 'pause-random': {
      const target =
        kind === 'pause-leader'
          ? await leaderOrAny(cluster, prng)
          : (cluster.nodes[prng.int(ids.length)] as ChaosNode);
      cluster.pause(target);
      return {
        kind,
        detail: `SIGSTOP ${target.id}`,
        heal: async () => cluster.resume(target),
      };
    }
    case 'partition-leader': {
      const leader = await leaderOrAny(cluster, prng);
      const mode = partitionMode(prng);
      cutBetween(cluster, [[leader.id], ids.filter((id) => id !== leader.id)], mode);
      return { kind, detail: `isolate ${leader.id} (${mode.kind})`, heal: healLinks(cluster) };
    }
    case 'partition-halves': {
      const order = shuffled(prng, ids);
      const minority = order.slice(0, ids.length - majority);
      const rest = order.slice(ids.length - majority);
      const mode = partitionMode(prng);
      cutBetween(cluster, [minority, rest], mode);
      return {
        kind,
        detail: `${minority.join(',')} | ${rest.join(',')} (${mode.kind})`,
        heal: healLinks(cluster),
      };
    }
    case 'partition-ring': {
      // Each node keeps links to its two neighbours on a shuffled ring only:
      // with 5 nodes each sees a majority (itself and two), no two the same
      // one. With 3 nodes every pair is adjacent, so nothing is cut.
      const order = shuffled(prng, ids);
      const mode = partitionMode(prng);
      const n = order.length;
      const near = (i: number, j: number): boolean => {
        const d = Math.abs(i - j);
        return Math.min(d, n - d) <= 1;
      };
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          if (!near(i, j)) cluster.links.setBoth(order[i] as string, order[j] as string, mode);
        }
      }
      return { kind, detail: `ring ${order.join('-')} (${mode.kind})`, heal: healLinks(cluster) };
    }
    case 'partition-bridge': {
      const order = shuffled(prng, ids);
      const bridge = order[0] as string;
      const rest = order.slice(1);
      const left = rest.slice(0, Math.floor(rest.length / 2));
      const right = rest.slice(Math.floor(rest.length / 2));
      const mode = partitionMode(prng);
      cutBetween(cluster, [left, right], mode);
      return {
        kind,
        detail: `${left.join(',')} | ${right.join(',')} bridged by ${bridge} (${mode.kind})`,
        heal: healLinks(cluster),
      };
    }
    case 'partition-oneway': {
      const leader = await leaderOrAny(cluster, prng);
      const mode = partitionMode(prng);
      for (const id of ids) if (id !== leader.id) cluster.links.set(id, leader.id, mode);
      return {
        kind,
        detail: `${leader.id} hears nobody, its messages still go out (${mode.kind})`,
        heal: healLinks(cluster),
      };
    }
    case 'delay': {
      const ms = 50 + prng.int(250);
      for (const a of ids)
        for (const b of ids) if (a !== b) cluster.links.set(a, b, { kind: 'delay', ms });
      return { kind, detail: `every link +${ms} ms`, heal: healLinks(cluster) };
    }
    case 'loss': {
      const p = 0.05 + prng.float() * 0.15;
      const chosen: string[] = [];
      for (const a of ids) {
        for (const b of ids) {
          if (a !== b && prng.int(3) === 0) {
            cluster.links.set(a, b, { kind: 'loss', p });
            chosen.push(`${a}->${b}`);
          }
        }
      }
      if (chosen.length === 0) {
        const [a, b] = shuffled(prng, ids) as [string, string];
        cluster.links.set(a, b, { kind: 'loss', p });
        chosen.push(`${a}->${b}`);
      }
      return {
        kind,
        detail: `loss ${(p * 100).toFixed(0)}% on ${chosen.join(' ')}`,
        heal: healLinks(cluster),
      };
    }
    case 'transfer': {
      const leader = await cluster.agreedLeader();
      const others = ids.filter((id) => id !== leader?.id);
      const to = others[prng.int(others.length)] ?? null;
      const accepted = await cluster.transferLeadership(to);
      return {
        kind,
        detail: `leadership ${leader?.id ?? '?'} -> ${to} (${accepted ? 'accepted' : 'refused'})`,
        heal: async () => undefined,
      };
    }
    case 'member-readd': {
      const victim = cluster.nodes[prng.int(ids.length)] as ChaosNode;
      const listed = await cluster.members();
      const record = listed?.find((m) => m.id === victim.id);
      let removed = record === undefined ? null : await cluster.removeMember(victim.id);
      if (removed?.startsWith('409') === true && removed.includes('is the leader')) {
        // As `tandem members remove` does: hand leadership over, then remove.
        await cluster.transferLeadership(null);
        for (let i = 0; i < 50 && (await cluster.anyLeader())?.id === victim.id; i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        removed = `after a handover, ${await cluster.removeMember(victim.id)}`;
      }
      return {
        kind,
        detail: `remove ${victim.id}: ${removed ?? 'no record or no leader'}`,
        heal: async () => {
          if (
            record === undefined ||
            removed === null ||
            !/^(after a handover, )?200/.test(removed)
          )
            return;
          // Re-added with the record it had; retried while the leader is busy.
          for (let attempt = 0; attempt < 20; attempt++) {
            const added = await cluster.addMember(record);
            if (added.startsWith('200') || added.startsWith('409')) return;
            await new Promise((resolve) => setTimeout(resolve, 500));
          }
        },
      };
    }
    case 'disk-full': {
      const disk = cluster.smallDisk;
      if (disk === null) throw new Error('disk-full needs the small disk (see run.ts)');
      const victim = cluster.node(disk.node);
      const filler = join(disk.dir, 'filler');
      // A node whose log write fails with ENOSPC stops by design.
      victim.exitExpected = true;
      const fill = spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M'], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      return {
        kind,
        detail: `${victim.id}'s disk filled (${fill.stderr.split('\n').slice(-2).join(' ').trim()})`,
        heal: async () => {
          await rm(filler, { force: true });
          // A log write that failed before the space came back still stops
          // the node, possibly just after this point (seed 404 once: fatal
          // error, heal, exit 16 ms later, counted as unexpected and never
          // restarted): give that exit time to happen before judging.
          await cluster.exitWithin(victim, diskFullExitGraceMs);
          if (!cluster.isRunning(victim)) cluster.spawn(victim);
          else victim.exitExpected = false;
        },
      };
    }
    default:
      throw new Error(`unknown nemesis kind ${kind}`);
  }
}
