/**
 * `tandem node` as real processes: a 3-node cluster on loopback, a client
 * write and read on different nodes, kill -9 of the leader, a new leader
 * that takes writes, and a graceful SIGTERM of the rest (exit code 0);
 * `tandem status` (table and JSON) and `tandem failover --to` against it;
 * every acknowledged write and the same TTL on every node after kill -9 of
 * the leader under load, and the killed node catching up after a restart.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort, waitFor as waitUntil } from '../src/node/test-cluster.test-util.js';

const repo = resolve(import.meta.dirname, '..');

interface Child {
  readonly id: string;
  readonly args: readonly string[];
  readonly process: ChildProcess;
  readonly http: string;
  readonly respPort: number;
  readonly output: string[];
  readonly exited: Promise<number | null>;
}

let root = '';
let children: Child[] = [];

interface ClusterOptions {
  /** Where node `id` keeps its data (default: under the test's root). */
  readonly dataDir?: (id: string) => string;
  readonly extraArgs?: readonly string[];
}

async function startCluster(size: number, options: ClusterOptions = {}): Promise<Child[]> {
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const ports = new Map<string, { resp: number; http: number; peer: number }>();
  for (const id of ids)
    ports.set(id, { resp: await freePort(), http: await freePort(), peer: await freePort() });
  const initialCluster = ids.map((id) => `${id}=127.0.0.1:${ports.get(id)?.peer}`).join(',');
  return ids.map((id) => {
    const p = ports.get(id);
    if (p === undefined) throw new Error('no ports');
    const args = [
      ...['--import', 'tsx', 'src/cli/main.ts', 'node', '--id', id],
      ...['--data', options.dataDir?.(id) ?? join(root, id)],
      ...['--resp', `127.0.0.1:${p.resp}`, '--http', `127.0.0.1:${p.http}`],
      ...['--initial-cluster', initialCluster, '--tick-ms', '20', '--log-level', 'warn'],
      ...(options.extraArgs ?? []),
    ];
    return spawnChild(id, args, `http://127.0.0.1:${p.http}`, p.resp);
  });
}

function spawnChild(id: string, args: readonly string[], http: string, respPort: number): Child {
  const child = spawn(process.execPath, args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  const started: Child = { id, args, process: child, http, respPort, output, exited };
  children.push(started);
  return started;
}

/** Starts a node again with the same flags and data directory. */
function restart(node: Child): Child {
  return spawnChild(node.id, node.args, node.http, node.respPort);
}

interface Status {
  id: string;
  role: string;
  leader: string;
  term: number;
  commit: number;
  applied: number;
}

async function getJson<T>(url: string): Promise<{ status: number; body: T } | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    return { status: response.status, body: (await response.json()) as T };
  } catch {
    return null;
  }
}

/** Polls with the nodes' recent output in the timeout error. */
function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const context = (): string =>
    children.map((c) => `--- ${c.id}\n${c.output.join('').slice(-2_000)}`).join('\n');
  return waitUntil(what, probe, { timeoutMs, intervalMs: 50, context });
}

async function leaderAmong(
  nodes: readonly Child[],
): Promise<{ child: Child; status: Status } | undefined> {
  for (const child of nodes) {
    const answer = await getJson<Status>(`${child.http}/status`);
    if (answer?.body.role === 'leader') return { child, status: answer.body };
  }
  return undefined;
}

/** Waits until every node answers 200 on /ready. */
async function allReady(nodes: readonly Child[]): Promise<void> {
  for (const child of nodes) {
    await waitFor(
      `${child.id} ready`,
      async () => ((await getJson(`${child.http}/ready`))?.status === 200 ? true : undefined),
      30_000,
    );
  }
}

/** Retries while the cluster is electing (TRYAGAIN or a dropped connection). */
async function setWithRetry(port: number, key: string, value: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await waitFor(
      `SET ${key} on port ${port}`,
      async () => {
        try {
          if (client.status !== 'ready') await client.connect().catch(() => undefined);
          return (await client.set(key, value)) === 'OK' ? true : undefined;
        } catch {
          return undefined;
        }
      },
      15_000,
    );
  } finally {
    client.disconnect();
  }
}

async function get(port: number, key: string): Promise<string | null> {
  const { Redis } = await import('ioredis');
  const client = new Redis({ port, host: '127.0.0.1' });
  try {
    return await client.get(key);
  } finally {
    client.disconnect();
  }
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-cli-'));
});

afterEach(async () => {
  for (const child of children) {
    if (
      child.process.exitCode === null &&
      child.process.signalCode === null &&
      child.process.pid !== undefined
    ) {
      try {
        process.kill(child.process.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  await Promise.all(children.map((c) => c.exited));
  children = [];
  await rm(root, { recursive: true, force: true });
});

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
      ...['--import', 'tsx', 'src/cli/main.ts', 'node', '--id', 'n4', '--data', join(root, 'n4')],
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

/** Mounts a tmpfs of `sizeMb` at `dir`; false (with the reason) when this machine does not allow it. */
function mountTmpfs(dir: string, sizeMb: number): { ok: boolean; why: string } {
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { ok: result.status === 0, why: (result.stderr || result.error?.message) ?? '' };
}

describe('disk full on real processes', () => {
  it('a nearly full tmpfs under one node raises NOSPACE; deleting data and freeing space clears it', async (context) => {
    const disk = join(root, 'small-disk');
    await mkdir(disk, { recursive: true });
    const mounted = mountTmpfs(disk, 64);
    if (!mounted.ok) {
      context.skip(
        `cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): ${mounted.why.trim()}`,
      );
      return;
    }
    try {
      const cluster = await startCluster(3, {
        dataDir: (id) => (id === 'n2' ? join(disk, id) : join(root, id)),
        extraArgs: ['--space-low-bytes', String(16 * 1024 * 1024)],
      });
      await allReady(cluster);
      const [n1] = cluster as [Child];
      await setWithRetry(n1.respPort, 'kept', 'v');
      // Fill the small disk until under 16 MiB are free.
      const filler = join(disk, 'filler');
      const fill = spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=52'], {
        timeout: 30_000,
      });
      expect(fill.status).toBe(0);
      const { Redis } = await import('ioredis');
      const client = new Redis({ port: n1.respPort, host: '127.0.0.1', maxRetriesPerRequest: 0 });
      try {
        const refusal = await waitFor(
          'writes refused with NOSPACE',
          async () => {
            const error = await client.set('x', 'y').then(
              () => undefined,
              (e: unknown) => e as Error,
            );
            return error?.message.startsWith('NOSPACE') === true ? error.message : undefined;
          },
          20_000,
        );
        expect(refusal).toMatch(/NOSPACE n2 has \d+ bytes free .*reads and deletes still work/);
        expect(await client.get('kept')).toBe('v');
        expect(await client.del('kept')).toBe(1);
        await rm(filler);
        await waitFor(
          'the alarm cleared',
          async () => ((await client.set('x', 'y').catch(() => null)) === 'OK' ? true : undefined),
          20_000,
        );
      } finally {
        client.disconnect();
      }
    } finally {
      for (const child of children) {
        if (child.process.exitCode === null && child.process.pid !== undefined) {
          process.kill(child.process.pid, 'SIGKILL');
        }
      }
      await Promise.all(children.map((c) => c.exited));
      spawnSync('umount', [disk], { timeout: 10_000 });
    }
  }, 90_000);
});

/** Runs the tandem CLI to completion (bounded), capturing its output. */
function runCli(
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}
