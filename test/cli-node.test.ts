/**
 * `tandem node` as real processes: a 3-node cluster on loopback, a client
 * write and read on different nodes, kill -9 of the leader, a new leader
 * that takes writes, and a graceful SIGTERM of the rest (exit code 0);
 * `tandem status` (table and JSON) and `tandem failover --to` against it;
 * every acknowledged write and the same TTL on every node after kill -9 of
 * the leader under load, and the killed node catching up after a restart.
 */

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

describe('tandem node (3 processes)', () => {
  it('elects, replicates, survives kill -9 of the leader and stops gracefully', async () => {
    const cluster = await startCluster(3);
    await allReady(cluster);
    const [n1, n2] = cluster;
    if (n1 === undefined || n2 === undefined) throw new Error('no nodes');
    await setWithRetry(n1.respPort, 'greeting', 'hello');
    expect(await get(n2.respPort, 'greeting')).toBe('hello');

    const first = await waitFor('a leader', () => leaderAmong(cluster), 10_000);
    const pid = first.child.process.pid;
    if (pid === undefined) throw new Error('no pid');
    process.kill(pid, 'SIGKILL');
    await first.child.exited;

    const rest = cluster.filter((c) => c !== first.child);
    const second = await waitFor(
      'a new leader',
      async () => {
        const found = await leaderAmong(rest);
        return found !== undefined && found.status.term > first.status.term ? found : undefined;
      },
      15_000,
    );
    expect(second.status.id).not.toBe(first.status.id);
    // A write through the survivor that does not lead is forwarded to the new leader.
    const other = rest.find((c) => c !== second.child) ?? second.child;
    await setWithRetry(other.respPort, 'after', 'failover');
    expect(await get(second.child.respPort, 'after')).toBe('failover');
    expect(await get(other.respPort, 'greeting')).toBe('hello');

    for (const child of rest)
      if (child.process.pid !== undefined) process.kill(child.process.pid, 'SIGTERM');
    const codes = await Promise.all(rest.map((c) => c.exited));
    expect(codes).toEqual([0, 0]);
  }, 60_000);

  it('tandem status shows every node, tandem failover moves leadership', async () => {
    const cluster = await startCluster(3);
    await allReady(cluster);
    const endpoints = cluster.map((c) => c.http).join(',');
    const shown = await runCli(['status', '--endpoints', endpoints, '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    const probes = JSON.parse(shown.stdout) as { ok: boolean; status: Status }[];
    expect(probes.map((p) => p.status.id).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(probes.filter((p) => p.status.role === 'leader')).toHaveLength(1);
    const table = await runCli(['status', '--endpoints', endpoints]);
    expect(table.stdout).toMatch(/^NODE +ENDPOINT +ROLE +TERM +COMMIT +APPLIED +LAG +HEALTH/);
    expect(table.stdout.match(/ ready$/gm)).toHaveLength(3);

    const before = await waitFor('a leader', () => leaderAmong(cluster), 10_000);
    const target = cluster.find((c) => c !== before.child)?.id ?? '';
    const moved = await runCli(['failover', '--to', target, '--endpoints', endpoints]);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toMatch(new RegExp(`new leader: ${target} \\(term \\d+\\) after \\d+ ms`));
    const after = await waitFor('the new leader', () => leaderAmong(cluster), 10_000);
    expect(after.status.id).toBe(target);

    const refused = await runCli(['failover', '--to', 'n9', '--endpoints', endpoints]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refused/);
    const unreachable = await runCli(['status', '--endpoints', 'http://127.0.0.1:1']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stdout).toMatch(/down/);
  }, 60_000);
});

describe('acknowledged writes across kill -9 and restart (3 processes)', () => {
  it('keeps every acknowledged write, the same TTL everywhere, and catches the restarted node up', async () => {
    const { Redis } = await import('ioredis');
    const cluster = await startCluster(3);
    await allReady(cluster);
    const clients = cluster.map(
      (c) =>
        new Redis({
          port: c.respPort,
          host: '127.0.0.1',
          maxRetriesPerRequest: 0,
          retryStrategy: () => 50,
          commandTimeout: 5_000,
        }),
    );
    for (const client of clients) client.on('error', () => undefined);
    try {
      expect(await clients[1]?.set('ttl-key', 'v', 'PX', 600_000)).toBe('OK');
      const acknowledged: string[] = [];
      const target = 600;
      let attempts = 0;
      const writer = async (client: InstanceType<typeof Redis>, index: number): Promise<void> => {
        // Bounded: at most 4x the target attempts across writers.
        for (let n = 0; acknowledged.length < target && attempts < 4 * target; n++) {
          attempts++;
          const key = `w:${index}:${n}`;
          try {
            if ((await client.set(key, key)) === 'OK') acknowledged.push(key);
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 20)); // refused or indeterminate
          }
        }
      };
      const writers = clients.map((c, i) => writer(c, i));
      await waitFor(
        '200 acknowledged writes',
        async () => (acknowledged.length >= 200 ? true : undefined),
        30_000,
      );
      const leader = await waitFor('a leader', () => leaderAmong(cluster), 10_000);
      if (leader.child.process.pid === undefined) throw new Error('no pid');
      process.kill(leader.child.process.pid, 'SIGKILL');
      await leader.child.exited;
      await Promise.all(writers);
      expect(acknowledged.length).toBeGreaterThanOrEqual(target);

      const back = restart(leader.child);
      const live = cluster.map((c) => (c === leader.child ? back : c));
      await waitFor(
        `${back.id} caught up`,
        async () => {
          const found = await leaderAmong(live);
          const mine = await getJson<Status>(`${back.http}/status`);
          if (found === undefined || mine === null) return undefined;
          return mine.body.applied >= found.status.commit ? true : undefined;
        },
        30_000,
      );
      // The restarted node's own state (READONLY: no forwarding, no barrier).
      const local = new Redis({ port: back.respPort, host: '127.0.0.1' });
      try {
        await local.readonly();
        const values = await local.mget(...acknowledged);
        const missing = acknowledged.filter((key, i) => values[i] !== key);
        expect(missing).toEqual([]);
        // The expiry is stamped by the leader into the entry: the same instant on every node.
        const expiries = [];
        for (const c of live) {
          const reader = new Redis({ port: c.respPort, host: '127.0.0.1' });
          expiries.push(await reader.pexpiretime('ttl-key'));
          reader.disconnect();
        }
        expect(new Set(expiries).size).toBe(1);
        expect(expiries[0]).toBeGreaterThan(Date.now());
      } finally {
        local.disconnect();
      }
    } finally {
      for (const client of clients) client.disconnect();
    }
  }, 90_000);
});

describe('membership on real processes', () => {
  it('a node joins with --join, is promoted to voter once caught up, and serves', async () => {
    const cluster = await startCluster(3);
    await allReady(cluster);
    const [n1] = cluster as [Child];
    await setWithRetry(n1.respPort, 'before-join', 'yes');
    const p = { resp: await freePort(), http: await freePort(), peer: await freePort() };
    const joinVia = n1.http.replace('http://', '');
    const args = [
      ...[
        '--import',
        'tsx',
        'src/cli/main.ts',
        'node',
        '--id',
        'n4',
        '--data',
        join(rootDir(), 'n4'),
      ],
      ...['--resp', `127.0.0.1:${p.resp}`, '--http', `127.0.0.1:${p.http}`],
      ...['--peer', `127.0.0.1:${p.peer}`, '--join', joinVia, '--tick-ms', '20'],
      ...['--log-level', 'warn'],
    ];
    const n4 = spawnChild('n4', args, `http://127.0.0.1:${p.http}`, p.resp);
    interface Members {
      voters: string[];
      learners: string[];
      members: { id: string; incarnation: string }[];
    }
    const members = await waitFor(
      'n4 promoted to voter',
      async () => {
        const answer = await getJson<Members>(`${n1.http}/v1/admin/members`);
        return answer?.body.voters.includes('n4') === true ? answer.body : undefined;
      },
      30_000,
    );
    expect(members.voters.sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(members.members.map((m) => m.id)).toEqual(['n1', 'n2', 'n3', 'n4']);
    // It has the data written before it joined, and takes writes.
    await setWithRetry(n4.respPort, 'after-join', 'yes');
    expect(await get(n4.respPort, 'before-join')).toBe('yes');
    expect(await get(n1.respPort, 'after-join')).toBe('yes');
    // Joining again is harmless.
    const again = await fetch(`${n1.http}/v1/admin/members`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(members.members.find((m) => m.id === 'n4')),
    });
    expect([200, 421]).toContain(again.status);

    // tandem members: list, remove (the leader hands over first), and a refusal that protects the quorum.
    const endpoints = [...cluster, n4].map((c) => c.http).join(',');
    const listed = await runCli(['members', 'list', '--endpoints', endpoints]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^ID +ROLE +PEER +RESP +HTTP +LAG +INCARNATION/);
    expect(listed.stdout.match(/^n[1-4] +(leader|voter) /gm)).toHaveLength(4);
    const all = [...cluster, n4];
    const leader = await waitFor('a leader', () => leaderAmong(all), 10_000);
    const handedOver = await runCli([
      'members',
      'remove',
      leader.child.id,
      '--endpoints',
      endpoints,
    ]);
    expect(handedOver.code, handedOver.stderr).toBe(0);
    expect(handedOver.stdout).toMatch(
      new RegExp(`${leader.child.id} leads: handing leadership over first`),
    );
    expect(handedOver.stdout).toMatch(new RegExp(`${leader.child.id} removed`));
    // Three voters left: with one of them down, removing another would leave no quorum.
    const rest = all.filter((c) => c !== leader.child);
    const now = await waitFor('the new leader', () => leaderAmong(rest), 10_000);
    const [a, b] = rest.filter((c) => c !== now.child) as [Child, Child];
    if (b.process.pid !== undefined) process.kill(b.process.pid, 'SIGKILL');
    await b.exited;
    const refused = await runCli(['members', 'remove', a.id, '--endpoints', endpoints]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/short of the 2 a quorum needs.*--force/);
    // Removing the one that is down is what an operator should do, and is allowed.
    const removedDown = await runCli(['members', 'remove', b.id, '--endpoints', endpoints]);
    expect(removedDown.code, removedDown.stderr).toBe(0);
  }, 120_000);
});
