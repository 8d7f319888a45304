import { describe, expect, it } from 'vitest';
import { error, simple } from '../kv/reply.js';
import { nodeId } from '../raft/types.js';
import { FsError } from '../storage/fs.js';
import { WalFailedError } from '../storage/wal-errors.js';
import type { ForwardRequest } from './forward-codec.js';
import { MemberRegistry } from './member-registry.js';
import { diskFullCause, raiseThroughPeers, spaceRefusal } from './space-guard.js';

const alarm = { id: 'n2', kind: 'nospace' as const, detail: 'n2 could not write its log' };

describe('space guard', () => {
  it('finds ENOSPC in a WAL failure, and nothing in other failures', () => {
    const full = new FsError('ENOSPC', 'write', '/d/wal/1', 'no space left');
    expect(diskFullCause(new WalFailedError(full))).toBe(full);
    expect(diskFullCause(new WalFailedError(new FsError('EIO', 'datasync', '/d', 'io')))).toBe(
      null,
    );
    expect(diskFullCause('not an error')).toBe(null);
  });

  it('refuses writes that add data while an alarm is raised, not deletes or health questions', () => {
    const registry = new MemberRegistry();
    const set: ForwardRequest = { kind: 'write', db: 0, argv: ['SET', 'a', 'b'] };
    const del: ForwardRequest = { kind: 'write', db: 0, argv: ['DEL', 'a'] };
    expect(spaceRefusal(registry, set)).toBeNull();
    registry.raise(alarm);
    expect(spaceRefusal(registry, set)).toMatchObject({ kind: 'error' });
    expect(spaceRefusal(registry, del)).toBeNull();
    expect(spaceRefusal(registry, { kind: 'health' })).toBeNull();
  });

  it('offers the alarm to each peer until the leader takes it', async () => {
    const asked: string[] = [];
    const raised = await raiseThroughPeers(
      [nodeId('n1'), nodeId('n3')],
      alarm,
      async (peer) => {
        asked.push(peer);
        if (asked.length < 4) return error('TRYAGAIN no leader');
        return simple('OK');
      },
      5_000,
      1,
    );
    expect(raised).toBe(true);
    expect(asked).toEqual(['n1', 'n3', 'n1', 'n3']);
  });

  it('gives up after its deadline when no peer answers', async () => {
    const started = Date.now();
    const raised = await raiseThroughPeers(
      [nodeId('n1')],
      alarm,
      async () => {
        throw new Error('unreachable');
      },
      200,
      20,
    );
    expect(raised).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
