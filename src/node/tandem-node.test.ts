import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DelegatingFileSystem, overrideFile } from '../storage/delegating-fs.js';
import { FsError, type FsFile } from '../storage/fs.js';
import { NodeFileSystem } from '../storage/node-fs.js';
import { preparedSegmentName } from '../storage/wal.js';
import { WalFailedError } from '../storage/wal-errors.js';
import { type HostPort, type TandemNode, tandemNodeDefaults } from './tandem-node.js';
import {
  loopbackMembers,
  startTestCluster,
  startTestNode,
  waitFor,
} from './test-cluster.test-util.js';

const log = pino({ level: 'silent' });

/** A disk whose WAL fdatasyncs take `delayMs` longer (0: as fast as the real one). */
class SlowableFs extends DelegatingFileSystem {
  delayMs = 0;
  protected override wrapFile(file: FsFile): FsFile {
    if (!file.path.includes('/wal/')) return file;
    return overrideFile(file, {
      datasync: async () => {
        if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
        await file.datasync();
      },
    });
  }
}

/** A disk whose WAL fdatasyncs fail with EIO once `broken` is set. */
class BreakableFs extends DelegatingFileSystem {
  broken = false;
  protected override wrapFile(file: FsFile): FsFile {
    if (!file.path.includes('/wal/')) return file;
    return overrideFile(file, {
      datasync: async () => {
        if (this.broken) throw new FsError('EIO', 'datasync', file.path, 'datasync failed: EIO');
        await file.datasync();
      },
    });
  }
}
let root = '';
let nodes: TandemNode[] = [];

/**
 * Writes past the next snapshot (nodes started with a snapshot every 5
 * entries) and waits until every node's snapshot covers all it had applied.
 */
async function snapshotPastApplied(cluster: readonly TandemNode[], leader: TandemNode) {
  const applied = Math.max(...cluster.map((n) => n.appliedIndex));
  for (let i = 0; i < 12; i++) await leader.write(0, ['INCR', 'c']);
  for (const node of cluster) {
    await waitFor(`${node.config.id} snapshotted past index ${applied}`, () =>
      node.info().snapshotIndex >= applied ? true : undefined,
    );
  }
}

function formatPeer(members: ReadonlyMap<string, HostPort>, id: string): string {
  return `127.0.0.1:${members.get(id)?.port}`;
}

async function startCluster(
  size: number,
  snapshotEntries: number = tandemNodeDefaults.snapshotEntries,
  given?: Map<string, HostPort>,
): Promise<TandemNode[]> {
  const members = given ?? (await loopbackMembers(size));
  nodes = await startTestCluster(root, members, log, { snapshotEntries });
  return nodes;
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-node-'));
});

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  nodes = [];
  await rm(root, { recursive: true, force: true });
});

describe('TandemNode over real sockets and disks', () => {
  it('forwards a write from a follower and reads it linearizably on another follower', async () => {
    const cluster = await startCluster(3);
    const leader = await waitFor('a leader', () => cluster.find((n) => n.isLeader));
    const [f1, f2] = cluster.filter((n) => n !== leader);
    if (f1 === undefined || f2 === undefined) throw new Error('two followers expected');
    expect(await f1.write(0, ['SET', 'a', '1'])).toEqual({ kind: 'simple', value: 'OK' });
    expect(await f2.read(0, ['GET', 'a'], false)).toEqual({ kind: 'bulk', value: '1' });
    expect(await leader.write(0, ['INCR', 'a'])).toEqual({ kind: 'integer', value: 2 });
    expect(await f1.read(0, ['GET', 'a'], false)).toEqual({ kind: 'bulk', value: '2' });
  });

  it('runs MULTI/EXEC as one entry and aborts it when a WATCHed key changed', async () => {
    const cluster = await startCluster(3);
    await waitFor('a leader', () => cluster.find((n) => n.isLeader));
    const follower = cluster.find((n) => !n.isLeader);
    if (follower === undefined) throw new Error('a follower expected');
    const revision = await follower.watchRevision(0, 'k');
    expect(typeof revision).toBe('number');
    const watched = [{ db: 0, key: 'k', revision: revision as number }];
    const ok = await follower.exec(
      0,
      [
        ['SET', 'k', 'x'],
        ['GET', 'k'],
      ],
      watched,
    );
    expect(ok).toEqual({
      kind: 'array',
      items: [
        { kind: 'simple', value: 'OK' },
        { kind: 'bulk', value: 'x' },
      ],
    });
    // The same stale revision again: k changed since, so EXEC aborts.
    expect(await follower.exec(0, [['SET', 'k', 'y']], watched)).toEqual({ kind: 'nullArray' });
  });

  it('never applies an entry twice across snapshots and a restart of every node', async () => {
    const members = await loopbackMembers(3);
    const cluster = await startCluster(3, 7, members);
    const leader = await waitFor('a leader', () => cluster.find((n) => n.isLeader));
    for (let i = 0; i < 40; i++) await leader.write(0, ['INCR', 'counter']);
    await Promise.all(cluster.map((n) => n.stop()));
    const again = await startCluster(3, 7, members);
    const next = await waitFor('a new leader', () => again.find((n) => n.isLeader));
    for (const node of again) {
      expect(await node.read(0, ['GET', 'counter'], false)).toEqual({ kind: 'bulk', value: '40' });
    }
    expect(next.info().snapshotIndex).toBeGreaterThan(0);
  });

  it('answers a clear error for bad commands without touching the log', async () => {
    const cluster = await startCluster(1);
    await waitFor('a leader', () => cluster.find((n) => n.isLeader));
    const node = cluster[0] as TandemNode;
    const reply = await node.write(0, ['SET', 'a', '1', 'EX', 'zero']);
    expect(reply.kind).toBe('error');
  });

  it('answers writeTo through its sink after the call returned, or at once when the answer is known', async () => {
    const members = await loopbackMembers(1);
    const node = await startTestNode(root, 'n1', members, log);
    nodes = [node];
    await waitFor('a leader', () => (node.isLeader ? true : undefined));
    const heard: string[] = [];
    let inCall = false;
    const sink = {
      reply: (token: string, reply: { kind: string }) => {
        heard.push(`${token} ${reply.kind}${inCall ? ' (within the call)' : ''}`);
      },
      fail: (token: string) => heard.push(`${token} failed`),
    };
    const writeTo = (argv: string[], token: string) => {
      inCall = true;
      try {
        return node.writeTo(0, argv, { mayRetry: () => true }, sink, token);
      } finally {
        inCall = false;
      }
    };
    expect(writeTo(['SET', 'a', '1'], 'w1')).toBeNull();
    expect(writeTo(['SET', 'a', '2', 'EX', 'zero'], 'w2')).toMatchObject({ kind: 'error' });
    await waitFor('the reply', () => (heard.length > 0 ? true : undefined));
    expect(heard).toEqual(['w1 simple']);
    expect((await node.read(0, ['GET', 'a'], false)) as unknown).toEqual({
      kind: 'bulk',
      value: '1',
    });
    // Stopped: refused at once, as a reply rather than through the sink.
    await node.stop();
    const refused = writeTo(['SET', 'a', '3'], 'w3');
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (refused === null) expect(heard.slice(1)).toEqual([expect.stringMatching(/^w3 error$/)]);
    else expect(refused).toMatchObject({ kind: 'error' });
    expect(heard.filter((h) => h.includes('within the call'))).toEqual([]);
  });

  it('retries a refused write only while no later write of its client went out', async () => {
    // One member of three: never a quorum, so every write is refused with TRYAGAIN.
    const members = await loopbackMembers(3);
    const node = await startTestNode(root, 'n1', members, log, { requestTimeoutMs: 400 });
    nodes = [node];
    // Alone: retried until the request timeout.
    let asked = 0;
    const alone = await node.write(0, ['SET', 'a', '1'], {
      mayRetry: () => {
        asked++;
        return true;
      },
    });
    expect(alone).toMatchObject({ kind: 'error', message: expect.stringMatching(/^TRYAGAIN/) });
    expect(asked).toBeGreaterThan(1);
    // A later write went out after the second attempt: no third attempt.
    let attempts = 0;
    const overtaken = await node.write(0, ['SET', 'a', '2'], {
      mayRetry: () => ++attempts < 2,
    });
    expect(overtaken).toMatchObject({ kind: 'error', message: expect.stringMatching(/^TRYAGAIN/) });
    expect(attempts).toBe(2);
  });

  it('reports a failed fdatasync as fatal and never acknowledges the write', async () => {
    const members = await loopbackMembers(1);
    const fs = new BreakableFs(new NodeFileSystem());
    const node = await startTestNode(root, 'n1', members, log, { requestTimeoutMs: 1_000 }, fs);
    nodes = [node];
    await waitFor('a leader', () => (node.isLeader ? true : undefined));
    expect(await node.write(0, ['SET', 'kept', '1'])).toEqual({ kind: 'simple', value: 'OK' });
    fs.broken = true;
    let settled: unknown = 'pending';
    node.write(0, ['SET', 'lost', '1']).then(
      (reply) => {
        settled = reply;
      },
      (failure: unknown) => {
        settled = failure;
      },
    );
    const failure = await node.fatal;
    expect(failure).toBeInstanceOf(WalFailedError);
    expect(String((failure as Error).message)).toMatch(/EIO/);
    // Give the node time to (wrongly) answer: the write must not be acknowledged.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(settled).not.toEqual({ kind: 'simple', value: 'OK' });
  });

  it('registers every node, replicates records through the log and keeps them across restarts', async () => {
    const members = await loopbackMembers(3);
    const cluster = await startCluster(3, 5, members);
    const leader = await waitFor('a leader', () => cluster.find((n) => n.isLeader));
    const record = {
      id: 'n9',
      peer: '127.0.0.1:1',
      resp: '127.0.0.1:2',
      http: '127.0.0.1:3',
      incarnation: 'abc',
    };
    expect(await leader.proposeMember({ kind: 'set', record })).toEqual({
      kind: 'simple',
      value: 'OK',
    });
    // Forwarded from a follower, a node may register only itself.
    const follower = cluster.find((n) => n !== leader) as TandemNode;
    const refused = await follower.proposeMember({ kind: 'set', record: { ...record, id: 'n8' } });
    expect(refused).toMatchObject({ kind: 'error', message: expect.stringMatching(/only itself/) });
    for (let i = 0; i < 12; i++) await leader.write(0, ['INCR', 'c']); // past two snapshots
    const expected = [...cluster.map((n) => n.ownRecord()), record];
    for (const node of cluster) {
      await waitFor(`${node.config.id} applied every record`, () =>
        node.members().length === 4 ? true : undefined,
      );
      expect(node.members()).toEqual(expected);
    }
    // A node registers itself whenever it finds a leader, possibly after the INCRs
    // above. After a restart only the snapshot is applied until a leader reports
    // the commit index, so write past one more snapshot and wait until every
    // node's snapshot holds all four records.
    await snapshotPastApplied(cluster, leader);
    await Promise.all(cluster.map((n) => n.stop()));
    const again = await startCluster(3, 5, members);
    for (const node of again) {
      expect(node.info().snapshotIndex).toBeGreaterThan(0);
      expect(node.members()).toEqual(expected);
    }
  });

  it('re-forms after its members restart on new addresses, though their registries name the old ones', async () => {
    const before = await loopbackMembers(3);
    const cluster = await startCluster(3, 5, before);
    const first = await waitFor('a leader', () => cluster.find((n) => n.isLeader));
    for (const node of cluster) {
      await waitFor(`${node.config.id} knows every registered address`, () =>
        node.members().length === 3 ? true : undefined,
      );
    }
    // A restarted node applies its snapshot before any leader reports the
    // commit index: the records must be in one for the registry to have a say.
    await snapshotPastApplied(cluster, first);
    await Promise.all(cluster.map((n) => n.stop()));
    // n2 and n3 alone (a majority) come back on new ports. n2 dials n3 (the
    // lower id dials), and its registry still says where n3 was: only the
    // address it was started with reaches n3.
    const after = await loopbackMembers(3);
    nodes = await Promise.all(
      ['n2', 'n3'].map((id) => startTestNode(root, id, after, log, { snapshotEntries: 5 })),
    );
    for (const node of nodes)
      expect(node.members().map((r) => r.peer)).toContain(formatPeer(before, 'n3'));
    const leader = await waitFor('a leader of n2 and n3', () => nodes.find((n) => n.isLeader), {
      timeoutMs: 15_000,
    });
    expect(await leader.write(0, ['SET', 'k', 'v'])).toEqual({ kind: 'simple', value: 'OK' });
    // Once connected they register again, so the registries catch up.
    for (const node of nodes) {
      await waitFor(`${node.config.id} registered the new addresses`, () =>
        ['n2', 'n3'].every(
          (id) => node.members().find((r) => r.id === id)?.peer === formatPeer(after, id),
        )
          ? true
          : undefined,
      );
    }
  });

  it('refuses a node that lost its disk and came back under its old id', async () => {
    const members = await loopbackMembers(3);
    const cluster = await startCluster(3, tandemNodeDefaults.snapshotEntries, members);
    await waitFor('every node registered', () =>
      cluster.every((n) => n.members().length === 3) ? true : undefined,
    );
    const [n1, n2, n3] = cluster as [TandemNode, TandemNode, TandemNode];
    await n3.stop();
    await rm(join(root, 'n3'), { recursive: true, force: true });
    const reborn = await startTestNode(root, 'n3', members, log, { requestTimeoutMs: 300 });
    nodes = [n1, n2, reborn];
    expect(reborn.incarnation).not.toBe(n3.incarnation);
    // Its peers refuse it, so it never catches up and the others go on without it.
    const leader = await waitFor('a leader', () => [n1, n2].find((n) => n.isLeader));
    expect(await leader.write(0, ['SET', 'k', 'v'])).toEqual({ kind: 'simple', value: 'OK' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(reborn.peerStats().n1?.connected ?? false).toBe(false);
    expect(reborn.peerStats().n2?.connected ?? false).toBe(false);
    expect(await reborn.read(0, ['GET', 'k'], true)).toEqual({ kind: 'null' });
    expect(leader.members().find((m) => m.id === 'n3')?.incarnation).toBe(n3.incarnation);
  });

  it('a leader whose disk stays slow hands leadership to a healthy follower', async () => {
    const members = await loopbackMembers(3);
    const disks = new Map<string, SlowableFs>();
    nodes = await Promise.all(
      [...members.keys()].map((id) => {
        const fs = new SlowableFs(new NodeFileSystem());
        disks.set(id, fs);
        const degradation = {
          fsyncP99Ms: 40,
          windowMs: 1_000,
          sustainMs: 1_000,
          loopDelayP99Ms: 5_000,
        };
        return startTestNode(root, id, members, log, { degradation }, fs);
      }),
    );
    const first = await waitFor('a leader', () => nodes.find((n) => n.isLeader));
    (disks.get(first.config.id) as SlowableFs).delayMs = 80;
    // Keep writing so the slow disk is measured; bounded by waitFor's deadline.
    let writing = true;
    const writer = (async () => {
      while (writing) await first.write(0, ['INCR', 'n']).catch(() => undefined);
    })();
    try {
      const next = await waitFor(
        'leadership to move off the slow disk',
        () => nodes.find((n) => n.isLeader && n !== first),
        { timeoutMs: 15_000 },
      );
      expect(next).not.toBe(first);
      expect(first.counters.degradedHandovers).toBe(1);
    } finally {
      writing = false;
      await writer;
    }
  }, 30_000);

  it('raises NOSPACE when a node runs low on disk: writes refused, reads and deletes work, then it clears', async () => {
    const members = await loopbackMembers(3);
    const free = new Map<string, number>([...members.keys()].map((id) => [id, 10_000_000]));
    nodes = await startTestCluster(root, members, log, {
      spaceLowBytes: 1_000_000,
      spaceCheckMs: 50,
      freeSpace: async (dir) => free.get(dir.split('/').pop() ?? '') ?? 0,
    });
    const leader = await waitFor('a leader', () => nodes.find((n) => n.isLeader));
    expect(await leader.write(0, ['SET', 'a', '1'])).toEqual({ kind: 'simple', value: 'OK' });
    const low = nodes.find((n) => n !== leader) as TandemNode;
    free.set(low.config.id, 500_000);
    await waitFor('the alarm on every node', () =>
      nodes.every((n) => n.alarms().length === 1) ? true : undefined,
    );
    const refused = await low.write(0, ['SET', 'b', '2']);
    expect(refused).toMatchObject({ kind: 'error' });
    expect((refused as { message: string }).message).toMatch(
      new RegExp(`^NOSPACE ${low.config.id} has 500000 bytes free .*reads and deletes still work`),
    );
    expect(await leader.read(0, ['GET', 'a'], false)).toEqual({ kind: 'bulk', value: '1' });
    expect(await low.write(0, ['DEL', 'a'])).toEqual({ kind: 'integer', value: 1 });
    free.set(low.config.id, 2_000_000);
    await waitFor('the alarm cleared', () =>
      nodes.every((n) => n.alarms().length === 0) ? true : undefined,
    );
    expect(await low.write(0, ['SET', 'b', '2'])).toEqual({ kind: 'simple', value: 'OK' });
  });

  it('prepares its next WAL segment only while the disk has room for 8 more above the threshold', async () => {
    const members = await loopbackMembers(1);
    const low = 1_000_000;
    const segment = 64 * 1024 * 1024;
    let free = low + 7 * segment;
    const node = await startTestNode(root, 'n1', members, log, {
      spaceLowBytes: low,
      freeSpace: async () => free,
    });
    nodes = [node];
    const prepared = join(node.config.dataDir, 'wal', preparedSegmentName);
    await waitFor('leadership', () => (node.isLeader ? true : undefined));
    await node.write(0, ['SET', 'a', '1']);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await new NodeFileSystem().exists(prepared)).toBe(false);
    // With room, the next start prepares one.
    await node.stop();
    free = low + 8 * segment;
    const again = await startTestNode(root, 'n1', members, log, {
      spaceLowBytes: low,
      freeSpace: async () => free,
    });
    nodes = [again];
    await waitFor('leadership again', () => (again.isLeader ? true : undefined));
    await again.write(0, ['SET', 'b', '2']);
    await waitFor('a prepared segment', async () =>
      (await new NodeFileSystem().exists(prepared)) ? true : undefined,
    );
  });

  // Found by the chaos suite (chaos/): the space monitor kept the registry
  // object of before the snapshot restore at start, so a restarted node
  // never saw its own alarm and never cleared it: writes refused for good.
  it('clears its NOSPACE alarm after a restart that restored a snapshot', async () => {
    const members = await loopbackMembers(1);
    let free = 10_000_000;
    const overrides = {
      snapshotEntries: 10,
      spaceLowBytes: 1_000_000,
      spaceCheckMs: 50,
      freeSpace: async () => free,
    };
    const first = await startTestNode(root, 'n1', members, log, overrides);
    nodes = [first];
    await waitFor('leadership', () => (first.isLeader ? true : undefined));
    for (let i = 0; i < 30; i++) await first.write(0, ['SET', `k${i}`, 'v']);
    await waitFor('a snapshot', () => (first.driverStats().snapshots > 0 ? true : undefined));
    await first.stop();
    const again = await startTestNode(root, 'n1', members, log, overrides);
    nodes = [again];
    await waitFor('leadership again', () => (again.isLeader ? true : undefined));
    free = 500_000;
    await waitFor('the alarm', () => (again.alarms().length === 1 ? true : undefined));
    free = 2_000_000;
    await waitFor('the alarm cleared', () => (again.alarms().length === 0 ? true : undefined), {
      timeoutMs: 3_000,
    });
    expect(await again.write(0, ['SET', 'after', '1'])).toEqual({ kind: 'simple', value: 'OK' });
  });
});
