import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeId } from '../raft/types.js';
import { chunksOf, collect } from '../storage/chunks.test-util.js';
import { NodeFileSystem } from '../storage/node-fs.js';
import { BackupError, readBackup } from './backup.js';
import { restoreBackup } from './restore.js';
import type { TandemNode } from './tandem-node.js';
import {
  loopbackMembers,
  startTestCluster,
  startTestNode,
  waitFor,
} from './test-cluster.test-util.js';

/** Backups are read in pieces, as from a socket. */
const readChunkBytes = 1000;

const log = pino({ level: 'silent' });
let root = '';
let nodes: TandemNode[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-backup-'));
});

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  nodes = [];
  await rm(root, { recursive: true, force: true });
});

describe('backup and restore', () => {
  it('restores a backup as the first node of a new cluster, with every acknowledged write', async () => {
    const members = await loopbackMembers(3);
    nodes = await startTestCluster(root, members, log, { snapshotEntries: 50 });
    const leader = await waitFor('a leader', () => nodes.find((n) => n.isLeader));
    for (let i = 0; i < 120; i++) await leader.write(0, ['SET', `k${i}`, `v${i}`]);
    const follower = nodes.find((n) => n !== leader) as TandemNode;
    const backup = await follower.backup();
    if (!('stream' in backup)) throw new Error('no backup');
    expect(backup.meta.snapshot.index).toBeGreaterThanOrEqual(120);
    const bytes = await collect(backup.stream);

    const alone = await loopbackMembers(1);
    const id = [...alone.keys()][0] as string;
    const newRoot = join(root, 'restored');
    const dir = join(newRoot, id);
    const restored = await restoreBackup(
      new NodeFileSystem(),
      dir,
      chunksOf(bytes, readChunkBytes),
      nodeId(id),
    );
    expect(restored.snapshot.membership).toEqual({ voters: [id], learners: [] });
    const node = await startTestNode(newRoot, id, alone, log, { clusterId: 'restored' });
    nodes.push(node);
    await waitFor('the restored node to lead', () => (node.isLeader ? true : undefined));
    for (let i = 0; i < 120; i += 17) {
      expect(await node.read(0, ['GET', `k${i}`], false)).toEqual({ kind: 'bulk', value: `v${i}` });
    }
    expect(await node.read(0, ['DBSIZE'], false)).toEqual({ kind: 'integer', value: 120 });
    // The old cluster's addresses and identities are gone; the new node registers itself.
    await waitFor('the new node registered', () =>
      node.members().length === 1 && node.members()[0]?.id === id ? true : undefined,
    );
  });

  it('refuses a damaged or truncated backup and leaves nothing behind', async () => {
    const members = await loopbackMembers(1);
    nodes = await startTestCluster(root, members, log);
    const leader = await waitFor('a leader', () => nodes.find((n) => n.isLeader));
    await leader.write(0, ['SET', 'a', '1']);
    const backup = await leader.backup();
    if (!('stream' in backup)) throw new Error('no backup');
    const bytes = await collect(backup.stream);
    // A bit flipped in the data: the checksum at the end catches it, and no snapshot stays.
    const flipped = Buffer.from(bytes);
    flipped[bytes.length - 60] = (flipped[bytes.length - 60] ?? 0) ^ 0x10;
    const dir = join(root, 'd');
    await expect(
      restoreBackup(new NodeFileSystem(), dir, chunksOf(flipped, readChunkBytes), nodeId('x')),
    ).rejects.toThrow(/checksum does not match/);
    expect((await readdir(join(dir, 'snap'))).filter((n) => n.endsWith('.snap'))).toEqual([]);
    // Truncated, and not a backup at all.
    await expect(
      restoreBackup(
        new NodeFileSystem(),
        join(root, 'e'),
        chunksOf(bytes.subarray(0, bytes.length - 10), readChunkBytes),
        nodeId('x'),
      ),
    ).rejects.toThrow(/truncated/);
    await expect(
      readBackup(chunksOf(Buffer.from('hello, this is not a backup'), readChunkBytes)),
    ).rejects.toThrow(BackupError);
  });
});
