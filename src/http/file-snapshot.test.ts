/**
 * Snapshots carry the file table, not the blobs (issue 6): a follower that
 * was down while files were uploaded and the log compacted installs a
 * snapshot, then fetches from its peers exactly the chunks it lacks (not
 * those it already had), verifies them, and serves the files.
 */

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { TandemNode, TandemNodeConfig } from '../node/tandem-node.js';
import {
  freePort,
  loopbackMembers,
  startTestNode,
  waitFor,
} from '../node/test-cluster.test-util.js';
import { AdminServer } from './admin-server.js';

const log = pino({ level: 'silent' });
const chunkBytes = 32 * 1024;
let root = '';
const running: { node: TandemNode; admin: AdminServer }[] = [];

function sha(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function content(n: number): Buffer {
  return randomBytes(n);
}

afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.admin.close();
    await r.node.stop();
  }
  await rm(root, { recursive: true, force: true });
});

describe('a follower that installs a snapshot', () => {
  it('fetches only the chunks it lacks from its peers and serves the files', async () => {
    root = await mkdtemp(join(tmpdir(), 'tandem-files-snap-'));
    const members = await loopbackMembers(3);
    const ids = [...members.keys()];
    const ports = new Map<string, number>();
    for (const id of ids) ports.set(id, await freePort());
    const overrides = (id: string): Partial<TandemNodeConfig> => ({
      httpAddress: `127.0.0.1:${ports.get(id)}`,
      files: { chunkBytes },
      snapshotEntries: 20,
      catchUpEntries: 5,
      retainEntriesMax: 10,
    });
    const start = async (id: string) => {
      const node = await startTestNode(root, id, members, log, overrides(id));
      const admin = new AdminServer({
        node,
        host: '127.0.0.1',
        port: ports.get(id) ?? 0,
        logger: log,
        files: { node },
      });
      await admin.start();
      const entry = { node, admin };
      running.push(entry);
      return entry;
    };
    for (const id of ids) await start(id);
    const url = (id: string) => `http://127.0.0.1:${ports.get(id)}`;
    const nodes = () => running.map((r) => r.node);
    await waitFor(
      'a leader and every member registered',
      () =>
        nodes().some((n) => n.isLeader) &&
        nodes().every((n) => n.members().filter((m) => m.http !== '').length === 3)
          ? true
          : undefined,
      { timeoutMs: 15_000 },
    );
    const leaderId = nodes().find((n) => n.isLeader)?.config.id ?? '';
    const followerId = ids.find((id) => id !== leaderId) ?? '';

    const a = content(200_000);
    expect((await fetch(`${url(leaderId)}/v1/files/a`, { method: 'PUT', body: a })).status).toBe(
      201,
    );
    await waitFor(
      'a on every node',
      () => (nodes().every((n) => n.files.tableFile('a') !== undefined) ? true : undefined),
      { timeoutMs: 10_000 },
    );
    const down = running.findIndex((r) => r.node.config.id === followerId);
    const stopped = running.splice(down, 1)[0];
    await stopped?.admin.close();
    await stopped?.node.stop();
    const lastSeen = stopped?.node.appliedIndex ?? 0;

    // b shares its first 64 KiB (two chunks) with a: those are not fetched again.
    const b = Buffer.concat([a.subarray(0, 2 * chunkBytes), content(300_000)]);
    expect((await fetch(`${url(leaderId)}/v1/files/b`, { method: 'PUT', body: b })).status).toBe(
      201,
    );
    // Enough entries for snapshots that compact the log past what the follower has.
    const leader = nodes().find((n) => n.isLeader) as TandemNode;
    const bApplied = leader.appliedIndex;
    for (let i = 0; i < 60; i++) await leader.write(0, ['SET', `k${i}`, 'v']);
    // On every running node, not only this leader: leadership may move on a
    // busy machine, and a snapshot taken half way through b would hand the
    // follower b's later chunks through the log instead of by fetching.
    await waitFor(
      'every running node compacted past the stopped follower and past b',
      () =>
        nodes().every((n) => n.info().snapshotIndex > Math.max(lastSeen + 30, bApplied))
          ? true
          : undefined,
      { timeoutMs: 10_000 },
    );

    const back = await start(followerId);
    await waitFor(
      'b on the restarted follower with every chunk',
      () => {
        const record = back.node.files.tableFile('b');
        if (record === undefined) return undefined;
        return record.chunks.every((c) => back.node.files.hasChunk(c.hash)) ? true : undefined;
      },
      { timeoutMs: 15_000 },
    );
    expect(back.node.info().snapshotIndex).toBeGreaterThan(lastSeen);
    // Exactly b's chunks came from peers, but not those it shares with a (already here).
    const aChunks = new Set(back.node.files.tableFile('a')?.chunks.map((c) => c.hash));
    const bChunks = back.node.files.tableFile('b')?.chunks.map((c) => c.hash) ?? [];
    const wanted = new Set(bChunks.filter((h) => !aChunks.has(h)));
    expect(wanted.size).toBe(bChunks.length - 2);
    // A fetched chunk shows (renamed into place) before its directory sync
    // returns and the fetch counts it: wait for the count, then check it is exact.
    await waitFor('the fetches counted', () =>
      back.node.files.stats.fetched >= wanted.size ? true : undefined,
    );
    expect(back.node.files.stats.fetched).toBe(wanted.size);
    for (const [path, body] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const got = await fetch(`${url(followerId)}/v1/files/${path}`);
      expect(got.status).toBe(200);
      expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(body));
    }
  }, 60_000);
});

describe('an upload with a snapshot interval larger than the default pause', () => {
  it('completes: uploads pause relative to the interval, not at a fixed 96 MiB', async () => {
    root = await mkdtemp(join(tmpdir(), 'tandem-files-backlog-'));
    const members = await loopbackMembers(1);
    const [id] = [...members.keys()];
    const port = await freePort();
    // As `tandem node --snapshot-mb 128`: the first snapshot starts once
    // 128 MiB were applied, so a pause at 96 MiB would wait for it forever.
    const node = await startTestNode(root, id ?? 'n1', members, log, {
      httpAddress: `127.0.0.1:${port}`,
      snapshotBytes: 128 * 1024 * 1024,
      files: { backlogWaitMsMax: 5_000 },
    });
    const admin = new AdminServer({ node, host: '127.0.0.1', port, logger: log, files: { node } });
    await admin.start();
    running.push({ node, admin });
    await waitFor('a leader', () => (node.isLeader ? true : undefined));
    const body = content(140 * 1024 * 1024);
    const response = await fetch(`http://127.0.0.1:${port}/v1/files/big.bin`, {
      method: 'PUT',
      body,
    });
    expect(response.status, await response.clone().text()).toBe(201);
    expect(((await response.json()) as { sha256: string }).sha256).toBe(sha(body));
  }, 60_000);
});
