/**
 * Separate hosts, as far as one machine allows: each node in its own network
 * namespace with its own address, wired by veth pairs to a bridge that lives
 * in a namespace of its own (the host's network is untouched but for one
 * veth into that bridge, so this test can reach the nodes). The cluster is
 * partitioned by taking the leader's link down, and healed by bringing it
 * up. Needs root and `ip` with netns support; otherwise skipped, saying why.
 * Every namespace and link it creates carries a generated name and is
 * removed by that name, whatever happens.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { getJson, repo, type Status } from './cluster.js';

const size = 3;
const suffix = `tc${process.pid % 10_000}${Math.floor(Math.random() * 100)}`;
const switchNs = `${suffix}-sw`;
const nodeNs = (i: number): string => `${suffix}-n${i}`;
const hostVeth = `${suffix}h`;
const subnet = `10.213.${(process.pid % 200) + 20}`;
const address = (i: number): string => `${subnet}.${i}`;
const hostAddress = `${subnet}.254`;

function ip(args: readonly string[]): { ok: boolean; out: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/** Why this machine cannot run the test, or null. */
function unsupported(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (spawnSync('ip', ['-V']).status !== 0) return "the 'ip' command (iproute2) is missing";
  const probe = `${suffix}-probe`;
  const added = ip(['netns', 'add', probe]);
  ip(['netns', 'del', probe]);
  if (!added.ok) return `cannot create a network namespace: ${added.out}`;
  if (ip(['-o', 'addr']).out.includes(`${subnet}.`)) return `subnet ${subnet}.0/24 is in use here`;
  return null;
}

const reason = unsupported();
if (reason !== null) console.warn(`netns test skipped: ${reason}`);

const created: string[] = [];
const children: ChildProcess[] = [];

function must(args: readonly string[]): void {
  const r = ip(args);
  if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.out}`);
}

function cleanup(): void {
  for (const c of children) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  // Deleting a namespace deletes the veth ends in it, and their peers.
  for (const ns of created.splice(0).reverse()) ip(['netns', 'del', ns]);
  ip(['link', 'del', hostVeth]);
}

function buildNetwork(): void {
  process.once('exit', cleanup);
  must(['netns', 'add', switchNs]);
  created.push(switchNs);
  must(['-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
  must(['-n', switchNs, 'link', 'set', 'br0', 'up']);
  for (let i = 1; i <= size; i++) {
    must(['netns', 'add', nodeNs(i)]);
    created.push(nodeNs(i));
    must(['-n', nodeNs(i), 'link', 'set', 'lo', 'up']);
    must([
      '-n',
      nodeNs(i),
      'link',
      'add',
      'eth0',
      'type',
      'veth',
      'peer',
      'name',
      `p${i}`,
      'netns',
      switchNs,
    ]);
    must(['-n', nodeNs(i), 'addr', 'add', `${address(i)}/24`, 'dev', 'eth0']);
    must(['-n', nodeNs(i), 'link', 'set', 'eth0', 'up']);
    must(['-n', switchNs, 'link', 'set', `p${i}`, 'master', 'br0']);
    must(['-n', switchNs, 'link', 'set', `p${i}`, 'up']);
  }
  must(['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'host', 'netns', switchNs]);
  must(['-n', switchNs, 'link', 'set', 'host', 'master', 'br0']);
  must(['-n', switchNs, 'link', 'set', 'host', 'up']);
  must(['addr', 'add', `${hostAddress}/24`, 'dev', hostVeth]);
  must(['link', 'set', hostVeth, 'up']);
}

const http = (i: number): string => `http://${address(i)}:8379`;

async function status(i: number): Promise<Status | null> {
  return getJson<Status>(`${http(i)}/status`);
}

async function agreedLeader(among: readonly number[]): Promise<string | null> {
  const all = await Promise.all(among.map(status));
  const leader = all.find((s) => s?.role === 'leader');
  if (leader === undefined || leader === null) return null;
  return all.every((s) => s?.leader === leader.id) ? leader.id : null;
}

async function set(i: number, key: string, value: string): Promise<void> {
  const redis = new Redis({
    host: address(i),
    port: 7379,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  });
  redis.on('error', () => undefined);
  try {
    await expect
      .poll(
        async () => {
          try {
            if (redis.status !== 'ready') await redis.connect();
            return await redis.set(key, value);
          } catch {
            return null;
          }
        },
        { timeout: 15_000, interval: 200 },
      )
      .toBe('OK');
  } finally {
    redis.disconnect();
  }
}

afterAll(() => {
  cleanup();
});

describe.skipIf(reason !== null)('a cluster across network namespaces', () => {
  it('elects, loses its leader to a downed link, recovers and converges', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tandem-netns-'));
    try {
      buildNetwork();
      const initial = Array.from(
        { length: size },
        (_, k) => `n${k + 1}=${address(k + 1)}:7380`,
      ).join(',');
      for (let i = 1; i <= size; i++) {
        const log = createWriteStream(join(root, `n${i}.log`));
        const child = spawn(
          'ip',
          [
            ...['netns', 'exec', nodeNs(i), process.execPath, '--import', 'tsx'],
            ...[
              join(repo, 'src', 'cli', 'main.ts'),
              'node',
              '--id',
              `n${i}`,
              '--data',
              join(root, `n${i}`),
            ],
            ...['--resp', `${address(i)}:7379`, '--http', `${address(i)}:8379`],
            ...['--initial-cluster', initial, '--tick-ms', '50', '--log-level', 'warn'],
          ],
          { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        child.stdout?.pipe(log);
        child.stderr?.pipe(log);
        children.push(child);
      }
      const all = [1, 2, 3];
      await expect.poll(() => agreedLeader(all), { timeout: 60_000, interval: 250 }).not.toBeNull();
      const leader = Number((await agreedLeader(all))?.slice(1));
      await set(leader, 'before', '1');

      // The leader's cable is pulled: the others elect one of themselves.
      must(['-n', switchNs, 'link', 'set', `p${leader}`, 'down']);
      const rest = all.filter((i) => i !== leader);
      await expect
        .poll(() => agreedLeader(rest), { timeout: 20_000, interval: 250 })
        .toMatch(/^n\d$/);
      expect(await agreedLeader(rest)).not.toBe(`n${leader}`);
      await set(rest[0] ?? 0, 'during', '2');

      // Plugged back in: one leader for all, and the same keyspace everywhere.
      must(['-n', switchNs, 'link', 'set', `p${leader}`, 'up']);
      await expect.poll(() => agreedLeader(all), { timeout: 30_000, interval: 250 }).not.toBeNull();
      await expect
        .poll(
          async () => {
            const digests = await Promise.all(
              all.map((i) =>
                getJson<{ applied: number; digest: string }>(`${http(i)}/v1/admin/digest`),
              ),
            );
            const first = digests[0];
            return (
              first != null &&
              digests.every((d) => d?.applied === first.applied && d.digest === first.digest)
            );
          },
          { timeout: 30_000, interval: 250 },
        )
        .toBe(true);
    } finally {
      cleanup();
      await rm(root, { recursive: true, force: true });
    }
  }, 150_000);
});
