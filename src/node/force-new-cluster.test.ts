import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeId } from '../raft/types.js';
import { NodeFileSystem } from '../storage/node-fs.js';
import { forceNewCluster } from './force-new-cluster.js';
import type { HostPort, TandemNode } from './tandem-node.js';
import {
  loopbackMembers,
  startTestCluster,
  startTestNode,
  waitFor,
} from './test-cluster.test-util.js';

const silent = pino({ level: 'silent' });
let root = '';
let nodes: TandemNode[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-force-'));
});

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  nodes = [];
  await rm(root, { recursive: true, force: true });
});

describe('force-new-cluster', () => {
  it('starts a one-node cluster from a survivor, keeping its data, after the majority is gone', async () => {
    const members = await loopbackMembers(3);
    nodes = await startTestCluster(root, members, silent, { snapshotEntries: 40 });
    const leader = await waitFor('a leader', () => nodes.find((n) => n.isLeader));
    for (let i = 0; i < 100; i++) await leader.write(0, ['SET', `k${i}`, `v${i}`]);
    const survivor = nodes.find((n) => n !== leader) as TandemNode;
    await waitFor('the survivor applied everything', () =>
      survivor.appliedIndex >= leader.appliedIndex ? true : undefined,
    );
    await Promise.all(nodes.map((n) => n.stop()));
    nodes = [];

    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const id = survivor.config.id;
    const snapshot = await forceNewCluster(new NodeFileSystem(), join(root, id), nodeId(id), log);
    expect(snapshot.membership).toEqual({ voters: [id], learners: [] });
    expect(lines.join('')).toMatch(/FORCE-NEW-CLUSTER: .* must rejoin with a new data directory/);

    const own = new Map([[id, members.get(id) as HostPort]]);
    const alone = await startTestNode(root, id, own, silent);
    nodes = [alone];
    await waitFor('the survivor to lead alone', () => (alone.isLeader ? true : undefined));
    expect(alone.info().voters).toEqual([id]);
    expect(await alone.read(0, ['DBSIZE'], false)).toEqual({ kind: 'integer', value: 100 });
    expect(await alone.write(0, ['SET', 'after', 'yes'])).toEqual({ kind: 'simple', value: 'OK' });
    // Only its own record is kept; if it had not registered itself before the
    // stop, it does so on its next registration cycle as the new leader.
    await waitFor('the registry to hold only the survivor', () =>
      alone.members().length > 0 ? true : undefined,
    );
    expect(alone.members().map((m) => m.id)).toEqual([id]);
  });
});
