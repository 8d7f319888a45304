/**
 * The NOSPACE alarm (issue 5). A node whose data directory runs low on free
 * space, or whose WAL write failed with ENOSPC, raises an alarm through the
 * log (member-registry.ts); while any alarm is raised the leader refuses
 * writes that add data, with a clear error, and still runs reads and writes
 * that only remove data, so an operator (or an application) can make room.
 * The node clears its own alarm once it sees enough free space again (1.25x
 * the threshold: hysteresis).
 */

import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import { error, type Reply } from '../kv/reply.js';
import type { NodeId } from '../raft/types.js';
import { FsError } from '../storage/fs.js';
import type { ForwardRequest } from './forward-codec.js';
import type { Alarm, MemberEntry, MemberRegistry } from './member-registry.js';

export const defaultSpaceLowBytes = 256 * 1024 * 1024;
export const defaultSpaceCheckMs = 2_000;
/** Free space at which a raised alarm clears, as a multiple of the threshold. */
const clearFactor = 1.25;

/** Commands that only remove data: allowed while the NOSPACE alarm is raised. */
const removingCommands = new Set([
  'del',
  'unlink',
  'flushdb',
  'flushall',
  'getdel',
  'hdel',
  'srem',
  'zrem',
  'lrem',
  'lpop',
  'rpop',
  'spop',
  'zpopmin',
  'zpopmax',
  'ltrim',
  'select',
]);

function removesOnly(argv: readonly string[]): boolean {
  return removingCommands.has((argv[0] ?? '').toLowerCase());
}

/** Free bytes (for an unprivileged user) on the file system holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const stats = await statfs(dir);
  return stats.bavail * stats.bsize;
}

/** NOSPACE while any member's alarm is raised, except for writes that only remove data. */
export function spaceRefusal(registry: MemberRegistry, request: ForwardRequest): Reply | null {
  const alarm = registry.anyAlarm();
  if (alarm === undefined || request.kind === 'member' || request.kind === 'health') return null;
  const commands = request.kind === 'write' ? [request.argv] : request.commands;
  if (commands.every((argv) => removesOnly(argv))) return null;
  return error(
    `NOSPACE ${alarm.detail}: writes are refused until disk space is freed on ${alarm.id} ` +
      '(reads and deletes still work; the alarm clears by itself)',
  );
}

/** The ENOSPC (or EDQUOT) error somewhere in `failure`'s cause chain, if any. */
export function diskFullCause(failure: unknown): FsError | null {
  let at: unknown = failure;
  for (let depth = 0; depth < 8 && at instanceof Error; depth++) {
    if (at instanceof FsError && (at.code === 'ENOSPC' || at.code === 'EDQUOT')) return at;
    at = at.cause;
  }
  return null;
}

/** What the monitor needs from its node. */
export interface SpaceHost {
  readonly id: string;
  readonly dataDir: string;
  readonly lowBytes: number;
  readonly freeSpace: (dir: string) => Promise<number>;
  readonly registry: MemberRegistry;
  readonly log: Logger;
  /** False while stopping or while no leader is known (the alarm goes through the log). */
  ready(): boolean;
  /** Proposes a registry entry through the leader. */
  propose(entry: MemberEntry): Promise<Reply>;
}

/** Watches free space under the data directory and raises or clears this node's alarm. */
export class SpaceMonitor {
  private checking = false;

  constructor(private readonly host: SpaceHost) {}

  async cycle(): Promise<void> {
    const host = this.host;
    if (this.checking || !host.ready()) return;
    this.checking = true;
    try {
      const free = await host.freeSpace(host.dataDir);
      const raised = host.registry.alarmOf(host.id);
      const lowBytes = host.lowBytes;
      if (raised === undefined && free < lowBytes) {
        const detail =
          `${host.id} has ${free} bytes free under its data directory ` +
          `(the alarm threshold is ${lowBytes})`;
        host.log.error({ free, lowBytes }, 'disk nearly full: raising the NOSPACE alarm');
        await host.propose({ kind: 'raise', alarm: { id: host.id, kind: 'nospace', detail } });
      } else if (raised !== undefined && free >= lowBytes * clearFactor) {
        host.log.warn({ free, lowBytes }, 'disk space is back: clearing the NOSPACE alarm');
        await host.propose({ kind: 'clear', id: host.id });
      }
    } catch (failure) {
      host.log.warn({ err: failure }, 'cannot check free disk space');
    } finally {
      this.checking = false;
    }
  }
}

/** Sends a forwarded request to one peer and decodes its answer; throws on transport errors. */
export type AskPeer = (peer: NodeId, request: ForwardRequest, timeoutMs: number) => Promise<Reply>;

/**
 * After a WAL write failed with ENOSPC this node can no longer write its own
 * log, so it cannot propose anything; its peers can. Offers the alarm to
 * every peer in turn until one (the leader, possibly newly elected if this
 * node led) commits it, or `withinMs` passes. Returns whether it was raised.
 */
export async function raiseThroughPeers(
  peers: readonly NodeId[],
  alarm: Alarm,
  ask: AskPeer,
  withinMs: number,
  retryMs: number,
): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  const request: ForwardRequest = { kind: 'member', entry: { kind: 'raise', alarm } };
  while (Date.now() < deadline) {
    for (const peer of peers) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      try {
        const reply = await ask(peer, request, left);
        if (reply.kind !== 'error') return true;
      } catch {
        // Unreachable or timed out: try the next peer.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
  return false;
}
