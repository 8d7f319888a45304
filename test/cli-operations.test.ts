/**
 * The operator commands of issue 5 against real `tandem node` processes:
 * `members add --learner` + `members promote` (and promote of an unknown
 * id), `backup` + `restore` into a new one-node cluster (and a damaged
 * backup refused), `node --force-new-cluster` after every node stopped, and
 * a node that lost its disk coming back under its old id (refused by its
 * peers, while the other two keep serving).
 */

import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../src/node/test-cluster.test-util.js';
import {
  allReady,
  type Child,
  get,
  getJson,
  leaderAmong,
  restart,
  rootDir,
  runCli,
  type Status,
  setWithRetry,
  spawnChild,
  startCluster,
  useProcesses,
  waitFor,
} from './processes.test-util.js';

useProcesses();

interface Members {
  leader: string;
  voters: string[];
  learners: string[];
  members: { id: string; peer: string; incarnation: string; learner?: boolean }[];
  followers: { id: string; match: number; lag: number; active: boolean }[];
}

const members = async (node: Child): Promise<Members | undefined> =>
  (await getJson<Members>(`${node.http}/v1/admin/members`))?.body;

const outputOf = (node: Child): string => node.output.join('');

/** SIGTERM, then the exit code (a graceful stop exits 0). */
async function stop(node: Child): Promise<number | null> {
  if (node.process.pid !== undefined && node.process.exitCode === null)
    process.kill(node.process.pid, 'SIGTERM');
  return node.exited;
}

async function kill9(node: Child): Promise<void> {
  if (node.process.pid !== undefined && node.process.exitCode === null)
    process.kill(node.process.pid, 'SIGKILL');
  await node.exited;
}

/** A `tandem node` on fresh loopback ports; `flags` name the cluster (--initial-cluster or --join). */
async function spawnNode(
  id: string,
  dataDir: string,
  flags: readonly string[],
): Promise<{ child: Child; peer: number }> {
  const p = { resp: await freePort(), http: await freePort(), peer: await freePort() };
  const args = [
    ...['--import', 'tsx', 'src/cli/main.ts', 'node', '--id', id, '--data', dataDir],
    ...['--resp', `127.0.0.1:${p.resp}`, '--http', `127.0.0.1:${p.http}`],
    ...['--peer', `127.0.0.1:${p.peer}`, '--tick-ms', '20', '--log-level', 'warn'],
    ...flags,
  ];
  return { child: spawnChild(id, args, `http://127.0.0.1:${p.http}`, p.resp), peer: p.peer };
}

interface Added {
  readonly cluster: Child[];
  readonly endpoints: string;
  /** Starts n4 as the member just added (with --join: a node needs --initial-cluster or --join). */
  readonly startN4: () => Child;
}

/** A 3-node cluster with a key written, and `tandem members add n4 ... --learner` done. */
async function clusterWithLearnerAdded(): Promise<Added> {
  const cluster = await startCluster(3);
  await allReady(cluster);
  const [n1] = cluster as [Child];
  const endpoints = cluster.map((c) => c.http).join(',');
  await setWithRetry(n1.respPort, 'before-add', 'written-before');
  const p = { resp: await freePort(), http: await freePort(), peer: await freePort() };
  const added = await runCli([
    ...['members', 'add', 'n4', '--peer', `127.0.0.1:${p.peer}`],
    ...['--resp', `127.0.0.1:${p.resp}`, '--http', `127.0.0.1:${p.http}`],
    ...['--learner', '--endpoints', endpoints],
  ]);
  expect(added.code, added.stderr).toBe(0);
  expect(added.stdout).toMatch(/n4 added as a learner/);
  const view = await waitFor('the members', () => members(n1), 5_000);
  expect(view.learners).toEqual(['n4']);
  expect(view.voters.sort()).toEqual(['n1', 'n2', 'n3']);
  expect(view.members.find((m) => m.id === 'n4')).toMatchObject({
    peer: `127.0.0.1:${p.peer}`,
    incarnation: '',
    learner: true,
  });
  const startN4 = (): Child =>
    spawnChild(
      'n4',
      [
        ...['--import', 'tsx', 'src/cli/main.ts', 'node', '--id', 'n4'],
        ...['--data', join(rootDir(), 'n4')],
        ...['--resp', `127.0.0.1:${p.resp}`, '--http', `127.0.0.1:${p.http}`],
        ...['--peer', `127.0.0.1:${p.peer}`, '--join', n1.http.replace('http://', '')],
        ...['--tick-ms', '20', '--log-level', 'warn'],
      ],
      `http://127.0.0.1:${p.http}`,
      p.resp,
    );
  return { cluster, endpoints, startN4 };
}

/** n4 serves a key written before it was added and takes writes; the list shows it a voter. */
async function expectN4ServesAsVoter(cluster: readonly Child[], n4: Child): Promise<void> {
  const [n1] = cluster as [Child];
  const all = [...cluster, n4];
  const endpoints = all.map((c) => c.http).join(',');
  await waitFor(
    'n4 caught up',
    async () => {
      const leader = await leaderAmong(all);
      const mine = await getJson<Status>(`${n4.http}/status`);
      if (leader === undefined || mine === null) return undefined;
      return mine.body.applied >= leader.status.commit ? true : undefined;
    },
    30_000,
  );
  const listed = await runCli(['members', 'list', '--endpoints', endpoints, '--json']);
  expect(listed.code, listed.stderr).toBe(0);
  const view = JSON.parse(listed.stdout) as Members;
  expect(view.voters.sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
  expect(view.learners).toEqual([]);
  const table = await runCli(['members', 'list', '--endpoints', endpoints]);
  expect(table.code, table.stderr).toBe(0);
  expect(table.stdout).toMatch(/^n4 +voter /m);
  expect(await get(n4.respPort, 'before-add')).toBe('written-before');
  await setWithRetry(n4.respPort, 'after-promote', 'yes');
  expect(await get(n1.respPort, 'after-promote')).toBe('yes');
}

describe('tandem members add --learner, promote', () => {
  it('promotes a learner added with --learner; started with --join it serves as a voter; promote of an unknown id fails', async () => {
    const { cluster, endpoints, startN4 } = await clusterWithLearnerAdded();
    // Not started yet: three of four voters reachable is still a majority, so it is allowed.
    const promoted = await runCli(['members', 'promote', 'n4', '--endpoints', endpoints]);
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(promoted.stdout).toMatch(/^n4 promoted to voter$/m);
    const again = await runCli(['members', 'promote', 'n4', '--endpoints', endpoints]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/n4 is already a voter/);

    const n4 = startN4();
    await expectN4ServesAsVoter(cluster, n4);
    // Its --join registered its data directory's incarnation.
    const view = await waitFor(
      'n4 registered',
      async () => {
        const answer = await members(cluster[0] as Child);
        const record = answer?.members.find((m) => m.id === 'n4');
        return record !== undefined && record.incarnation !== '' ? answer : undefined;
      },
      15_000,
    );
    expect(view.members.find((m) => m.id === 'n4')?.incarnation).toMatch(/^[0-9a-f]{32}$/);

    const unknown = await runCli(['members', 'promote', 'n9', '--endpoints', endpoints]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^tandem members: n9 is not a member; add it first$/m);
    expect(unknown.stdout).toBe('');
  }, 90_000);

  it('a node added with --learner and started with --join stays a learner until tandem members promote', async () => {
    const { cluster, startN4 } = await clusterWithLearnerAdded();
    const [n1] = cluster as [Child];
    const n4 = startN4();
    await waitFor(
      'n4 caught up as a learner with its incarnation registered',
      async () => {
        const leader = await leaderAmong(cluster);
        const view = leader === undefined ? undefined : await members(leader.child);
        const mine = await getJson<Status>(`${n4.http}/status`);
        if (view === undefined || leader === undefined || mine === null) return undefined;
        const record = view.members.find((m) => m.id === 'n4');
        return record !== undefined &&
          record.incarnation !== '' &&
          mine.body.applied >= leader.status.commit
          ? true
          : undefined;
      },
      30_000,
    );
    // Auto-promotion of a caught-up learner would have happened by now.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const before = await waitFor('the members', () => members(n1), 5_000);
    expect(before.learners).toEqual(['n4']);
    expect(before.members.find((m) => m.id === 'n4')?.learner).toBe(true);

    const all = [...cluster, n4];
    const endpoints = all.map((c) => c.http).join(',');
    const promoted = await runCli(['members', 'promote', 'n4', '--endpoints', endpoints]);
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(promoted.stdout).toMatch(/^n4 promoted to voter$/m);
    await expectN4ServesAsVoter(cluster, n4);
  }, 90_000);
});

describe('tandem backup, restore', () => {
  it('restores every key (a TTL and a hash included) into a new one-node cluster; a damaged backup is refused', async () => {
    const { Redis } = await import('ioredis');
    const cluster = await startCluster(3);
    await allReady(cluster);
    const [n1] = cluster as [Child];
    await setWithRetry(n1.respPort, 'plain', 'value-1');
    const client = new Redis({ port: n1.respPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    let expireAt = 0;
    const bulk: string[] = [];
    try {
      expect(await client.set('ttl-key', 'short-lived', 'PX', 600_000)).toBe('OK');
      expireAt = await client.pexpiretime('ttl-key');
      expect(await client.hset('hash', 'f1', 'v1', 'f2', 'v2')).toBe(2);
      // Enough data that the middle of the file is deep inside the state machine image.
      for (let i = 0; i < 200; i++) bulk.push(`bulk:${i}`, `value-${i}-${'x'.repeat(40)}`);
      expect(await client.mset(...bulk)).toBe('OK');
    } finally {
      client.disconnect();
    }

    const file = join(rootDir(), 'tandem.bak');
    const endpoints = cluster.map((c) => c.http).join(',');
    const taken = await runCli(['backup', '--to', file, '--endpoints', endpoints]);
    expect(taken.code, taken.stderr).toBe(0);
    expect(taken.stdout).toMatch(
      /^backup of http:\/\/127\.0\.0\.1:\d+ as of index \d+: \d+ bytes in /,
    );
    const bytes = await readFile(file);
    expect(taken.stdout).toContain(`: ${bytes.length} bytes in ${file}`);
    expect((await readdir(rootDir())).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // A damaged copy: one byte flipped in the middle.
    const damaged = join(rootDir(), 'damaged.bak');
    const copy = Buffer.from(bytes);
    const middle = Math.floor(copy.length / 2);
    copy[middle] = (copy[middle] ?? 0) ^ 0xff;
    await writeFile(damaged, copy);
    const badDir = join(rootDir(), 'restored-bad');
    const refused = await runCli(['restore', '--from', damaged, '--data', badDir, '--id', 'n1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/tandem restore: .*checksum does not match.*damaged/);
    expect(refused.stdout).toBe('');
    // Nothing became durable: the same directory still counts as new and empty, so the good
    // backup restores into it.
    const snapshotsLeft = (await readdir(badDir, { recursive: true })).filter((f) =>
      String(f).endsWith('.snap'),
    );
    expect(snapshotsLeft).toEqual([]);

    const restoredDir = badDir;
    const restored = await runCli(['restore', '--from', file, '--data', restoredDir, '--id', 'n1']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/restored .* into .* as of index \d+, term \d+/);
    // Restoring again into the same, no longer empty, directory is refused.
    const again = await runCli(['restore', '--from', file, '--data', restoredDir, '--id', 'n1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already holds a node's state/);

    // The old cluster is gone; the restored directory starts a new one.
    await Promise.all(cluster.map(kill9));
    const peer = await freePort();
    const { child: single } = await spawnNode('n1', restoredDir, [
      '--initial-cluster',
      `n1=127.0.0.1:${peer}`,
    ]);
    await allReady([single]);
    const leader = await waitFor('the restored node leads', () => leaderAmong([single]), 15_000);
    expect(leader.status.id).toBe('n1');
    const restoredMembers = await members(single);
    expect(restoredMembers?.voters).toEqual(['n1']);
    const reader = new Redis({ port: single.respPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    try {
      expect(await reader.get('plain')).toBe('value-1');
      expect(await reader.get('ttl-key')).toBe('short-lived');
      expect(await reader.pexpiretime('ttl-key')).toBe(expireAt);
      expect(await reader.hgetall('hash')).toEqual({ f1: 'v1', f2: 'v2' });
      const keys = bulk.filter((_, i) => i % 2 === 0);
      const values = await reader.mget(...keys);
      expect(values).toEqual(bulk.filter((_, i) => i % 2 === 1));
      expect(await reader.dbsize()).toBe(3 + keys.length);
      expect(await reader.set('after-restore', 'ok')).toBe('OK');
    } finally {
      reader.disconnect();
    }
  }, 90_000);
});

describe('tandem node --force-new-cluster', () => {
  it('starts a one-node cluster from one node after all three stopped, loudly, with the data', async () => {
    const cluster = await startCluster(3);
    await allReady(cluster);
    const [n1, n2] = cluster as [Child, Child, Child];
    for (let i = 0; i < 20; i++) await setWithRetry(n2.respPort, `k${i}`, `v${i}`);
    // Every node applied the writes before the stop.
    const leader = await waitFor('a leader', () => leaderAmong(cluster), 10_000);
    await waitFor(
      'n1 applied the writes',
      async () => {
        const mine = await getJson<Status>(`${n1.http}/status`);
        return mine !== null && mine.body.applied >= leader.status.commit ? true : undefined;
      },
      15_000,
    );
    const codes = await Promise.all(cluster.map(stop));
    expect(codes).toEqual([0, 0, 0]);

    const forced = spawnChild('n1', [...n1.args, '--force-new-cluster'], n1.http, n1.respPort);
    const alone = await waitFor('n1 leads alone', () => leaderAmong([forced]), 30_000);
    expect(alone.status.id).toBe('n1');
    expect(outputOf(forced)).toMatch(
      /FORCE-NEW-CLUSTER: n1 now forms a one-node cluster from its own data; every other member is dropped/,
    );
    // Only n1's own record is kept (it registers itself again if it had not yet).
    const view = await waitFor(
      "the members, n1's record registered",
      async () => {
        const answer = await members(forced);
        return answer !== undefined && answer.members.length > 0 ? answer : undefined;
      },
      15_000,
    );
    expect(view.voters).toEqual(['n1']);
    expect(view.learners).toEqual([]);
    expect(view.members.map((m) => m.id)).toEqual(['n1']);
    for (let i = 0; i < 20; i++) expect(await get(forced.respPort, `k${i}`)).toBe(`v${i}`);
    await setWithRetry(forced.respPort, 'after-force', 'yes');
    expect(await get(forced.respPort, 'after-force')).toBe('yes');
    // It stays a one-node cluster across a restart without the flag.
    expect(await stop(forced)).toBe(0);
    const back = restart(n1);
    await waitFor('n1 leads again', () => leaderAmong([back]), 30_000);
    expect(await get(back.respPort, 'after-force')).toBe('yes');
    expect(outputOf(back)).not.toMatch(/FORCE-NEW-CLUSTER/);
  }, 90_000);
});

describe('a node that lost its disk', () => {
  it('is refused under its old identity with a clear message, and n1, n2 keep serving', async () => {
    const cluster = await startCluster(3);
    await allReady(cluster);
    const [n1, n2, n3] = cluster as [Child, Child, Child];
    await setWithRetry(n1.respPort, 'before-loss', 'yes');
    // The cluster knows n3's incarnation (registered by n3 itself once it runs).
    const known = await waitFor(
      "n3's incarnation registered",
      async () => {
        const view = await members(n1);
        const record = view?.members.find((m) => m.id === 'n3');
        return record !== undefined && record.incarnation !== '' ? record.incarnation : undefined;
      },
      30_000,
    );
    const incarnationFile = join(rootDir(), 'n3', 'INCARNATION');
    expect((await readFile(incarnationFile, 'utf8')).trim()).toBe(known);

    await kill9(n3);
    await rm(join(rootDir(), 'n3'), { recursive: true, force: true });
    const back = restart(n3);
    const refusal =
      /n3 presents data directory incarnation '[0-9a-f]{32}' but the cluster knows n3 by '([0-9a-f]{32})': its data directory was replaced \(a lost disk\?\), and a node that lost its state must not rejoin under its old identity — remove n3 from the cluster and add it again as a new member/;
    const seen = await waitFor(
      'the refusal in the output',
      async () => {
        const text = [n1, n2, back].map(outputOf).join('\n');
        return refusal.exec(text) ?? undefined;
      },
      30_000,
    );
    expect(seen[1]).toBe(known);
    const fresh = (await readFile(incarnationFile, 'utf8')).trim();
    expect(fresh).toMatch(/^[0-9a-f]{32}$/);
    expect(fresh).not.toBe(known);

    // The cluster still knows n3 by its old incarnation, and keeps serving with n1, n2.
    await setWithRetry(n2.respPort, 'after-loss', 'yes');
    expect(await get(n1.respPort, 'after-loss')).toBe('yes');
    const view = await waitFor('the members', () => members(n1), 5_000);
    expect(view.members.find((m) => m.id === 'n3')?.incarnation).toBe(known);
    // The impostor never received the cluster's state.
    const mine = await getJson<Status>(`${back.http}/status`);
    expect(mine?.body.role).not.toBe('leader');
    expect(mine?.body.applied ?? 0).toBeLessThan(
      (await getJson<Status>(`${n1.http}/status`))?.body.commit ?? 0,
    );
    // A leader elected meanwhile counts every follower active for its first
    // election timeout (CheckQuorum's grace); after that the impostor, whose
    // messages are refused at the handshake, must show as inactive.
    await waitFor(
      'the leader to see n3 inactive',
      async () => {
        const leader = await leaderAmong([n1, n2]);
        if (leader === undefined) return undefined;
        const seenBy = await getJson<Members>(`${leader.child.http}/v1/admin/members`);
        const n3View = seenBy?.body.followers.find((f) => f.id === 'n3');
        return n3View?.active === false ? true : undefined;
      },
      10_000,
    );
  }, 90_000);
});
