import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TandemNode } from '../node/tandem-node.js';
import {
  freePort,
  loopbackMembers,
  startTestNode,
  waitFor,
} from '../node/test-cluster.test-util.js';
import { AdminServer } from './admin-server.js';
import { parseRange } from './file-routes.js';

const log = pino({ level: 'silent' });
const chunkBytes = 64 * 1024;
let root = '';
let nodes: TandemNode[] = [];
let admins: AdminServer[] = [];
let urls: string[] = [];

function sha(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function content(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

function leaderIndex(): number {
  return nodes.findIndex((n) => n.isLeader);
}

function followerIndex(): number {
  return nodes.findIndex((n) => !n.isLeader);
}

async function put(url: string, body: Buffer, headers: Record<string, string> = {}) {
  return fetch(url, { method: 'PUT', body, headers });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-files-http-'));
  const members = await loopbackMembers(3);
  const ports = [await freePort(), await freePort(), await freePort()];
  urls = ports.map((p) => `http://127.0.0.1:${p}`);
  nodes = await Promise.all(
    [...members.keys()].map((id, i) =>
      startTestNode(root, id, members, log, {
        httpAddress: `127.0.0.1:${ports[i]}`,
        files: { chunkBytes, gcGraceMs: 200, uploadsMax: 1 },
      }),
    ),
  );
  admins = nodes.map(
    (node, i) =>
      new AdminServer({
        node,
        host: '127.0.0.1',
        port: ports[i] ?? 0,
        logger: log,
        files: { node, uploadBytesMax: 4 * 1024 * 1024 },
      }),
  );
  await Promise.all(admins.map((a) => a.start()));
  // Every node knows every member's HTTP address (forwarding and chunk fetches need them).
  await waitFor(
    'leader and registered members',
    () =>
      leaderIndex() >= 0 && nodes.every((n) => n.members().filter((m) => m.http).length === 3)
        ? true
        : undefined,
    { timeoutMs: 15_000 },
  );
}, 30_000);

afterAll(async () => {
  await Promise.all(admins.map((a) => a.close()));
  await Promise.all(nodes.map((n) => n.stop()));
  await rm(root, { recursive: true, force: true });
});

async function waitApplied(path: string, sha256: string): Promise<void> {
  await waitFor(
    `${path} on every node`,
    () => (nodes.every((n) => n.files.tableFile(path)?.sha256 === sha256) ? true : undefined),
    { timeoutMs: 10_000 },
  );
}

describe('file API on a 3-node cluster', () => {
  it('takes an upload on a follower and serves it from every node with its sha256', async () => {
    const body = content(300_000, 1);
    const f = followerIndex();
    const res = await put(`${urls[f]}/v1/files/docs/a.bin`, body, {
      'content-type': 'application/x-test',
      'x-checksum-sha256': sha(body),
    });
    expect(res.status).toBe(201);
    const answer = (await res.json()) as { sha256: string; size: number; etag: string };
    expect(answer).toMatchObject({ sha256: sha(body), size: body.length });
    await waitApplied('docs/a.bin', sha(body));
    for (const url of urls) {
      const got = await fetch(`${url}/v1/files/docs/a.bin`);
      expect(got.status).toBe(200);
      expect(got.headers.get('content-type')).toBe('application/x-test');
      expect(got.headers.get('etag')).toBe(`"${answer.etag}"`);
      expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(body));
    }
    // Linearizable read on a follower, HEAD, If-None-Match, Range.
    const lin = await fetch(`${urls[f]}/v1/files/docs/a.bin?linearizable=1`, { method: 'HEAD' });
    expect(lin.status).toBe(200);
    expect(lin.headers.get('content-length')).toBe(String(body.length));
    const cached = await fetch(`${urls[f]}/v1/files/docs/a.bin`, {
      headers: { 'if-none-match': `"${answer.etag}"` },
    });
    expect(cached.status).toBe(304);
    const ranged = await fetch(`${urls[f]}/v1/files/docs/a.bin`, {
      headers: { range: 'bytes=65530-131080' },
    });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 65530-131080/${body.length}`);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(body.subarray(65530, 131081))).toBe(true);
    const outside = await fetch(`${urls[f]}/v1/files/docs/a.bin`, {
      headers: { range: 'bytes=400000-' },
    });
    expect(outside.status).toBe(416);
  });

  it('overwrites atomically with If-Match compare-and-set, and deletes', async () => {
    const l = leaderIndex();
    const v1 = content(70_000, 2);
    const first = await put(`${urls[l]}/v1/files/cas.txt`, v1, { 'if-none-match': '*' });
    expect(first.status).toBe(201);
    const etag = first.headers.get('etag') ?? '';
    const again = await put(`${urls[l]}/v1/files/cas.txt`, v1, { 'if-none-match': '*' });
    expect(again.status).toBe(412);
    const v2 = content(10_000, 3);
    const stale = await put(`${urls[l]}/v1/files/cas.txt`, v2, { 'if-match': '"nope-1"' });
    expect(stale.status).toBe(412);
    expect(((await stale.json()) as { error: string }).error).toContain('If-Match');
    const ok = await put(`${urls[l]}/v1/files/cas.txt`, v2, { 'if-match': etag });
    expect(ok.status).toBe(201);
    const got = await fetch(`${urls[l]}/v1/files/cas.txt`);
    expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(v2));
    const f = followerIndex();
    const del = await fetch(`${urls[f]}/v1/files/cas.txt`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    const gone = await fetch(`${urls[l]}/v1/files/cas.txt?linearizable=1`);
    expect(gone.status).toBe(404);
    const del2 = await fetch(`${urls[l]}/v1/files/cas.txt`, { method: 'DELETE' });
    expect(del2.status).toBe(404);
  });

  it('refuses bad paths, checksum mismatches and oversized uploads with nothing stored', async () => {
    const l = leaderIndex();
    for (const bad of ['a%2F..%2Fb', '%ff', 'a//b', '%00x', 'x/']) {
      const res = await put(`${urls[l]}/v1/files/${bad}`, Buffer.from('x'));
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { error: string }).error, bad).toMatch(/path/);
    }
    const body = content(100_000, 4);
    const wrong = await put(`${urls[l]}/v1/files/bad-sum`, body, {
      'x-checksum-sha256': sha(Buffer.from('other')),
    });
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { error: string }).error).toContain('checksum mismatch');
    const digest = createHash('sha256').update(Buffer.from('other')).digest('base64');
    const wrong2 = await put(`${urls[l]}/v1/files/bad-sum`, body, {
      'content-digest': `sha-256=:${digest}:`,
    });
    expect(wrong2.status).toBe(400);
    expect((await fetch(`${urls[l]}/v1/files/bad-sum?linearizable=1`)).status).toBe(404);
    const big = await put(`${urls[l]}/v1/files/big`, Buffer.alloc(4 * 1024 * 1024 + 1));
    expect(big.status).toBe(413);
    expect((await fetch(`${urls[l]}/v1/files/big?linearizable=1`)).status).toBe(404);
  });

  it('leaves nothing visible when the client goes away half way (via a follower)', async () => {
    const f = followerIndex();
    const url = new URL(`${urls[f]}/v1/files/aborted.bin`);
    const body = content(400_000, 9);
    await new Promise<void>((done) => {
      const out = request({
        host: url.hostname,
        port: url.port,
        method: 'PUT',
        path: url.pathname,
        headers: { 'content-length': String(body.length * 2) },
      });
      out.on('error', () => done());
      out.write(body, () => setTimeout(() => out.destroy(), 100));
      out.on('close', () => done());
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const u of urls) {
      expect((await fetch(`${u}/v1/files/aborted.bin?linearizable=1`)).status).toBe(404);
    }
    // The cluster takes the next upload at once (nothing is stuck waiting for the rest).
    const l = leaderIndex();
    expect((await put(`${urls[l]}/v1/files/next.bin`, Buffer.from('ok'))).status).toBe(201);
  });

  it('refuses an upload beyond the concurrent-uploads limit with a 503', async () => {
    const l = leaderIndex();
    const url = new URL(`${urls[l]}/v1/files/held.bin`);
    // One upload (the limit here) held open half-sent.
    const held = request({
      host: url.hostname,
      port: url.port,
      method: 'PUT',
      path: url.pathname,
      headers: { 'content-length': String(1_000_000) },
    });
    held.on('error', () => undefined);
    held.write(content(100_000, 10));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const second = await put(`${urls[l]}/v1/files/second.bin`, Buffer.from('x'));
    expect(second.status).toBe(503);
    expect(((await second.json()) as { error: string }).error).toContain('uploads are in progress');
    held.destroy();
    await waitFor(
      'the held upload to end',
      async () =>
        (await put(`${urls[l]}/v1/files/second.bin`, Buffer.from('x'))).status === 201
          ? true
          : undefined,
      { timeoutMs: 5_000, intervalMs: 100 },
    );
  });

  it('lists by prefix in pages', async () => {
    const l = leaderIndex();
    for (const name of ['ls/c', 'ls/a', 'ls/b', 'lt/x']) {
      expect((await put(`${urls[l]}/v1/files/${name}`, Buffer.from(name))).status).toBe(201);
    }
    const page1 = await fetch(`${urls[l]}/v1/files?prefix=ls/&limit=2`);
    const p1 = (await page1.json()) as { files: { path: string; size: number }[]; next: string };
    expect(p1.files.map((f) => f.path)).toEqual(['ls/a', 'ls/b']);
    expect(p1.next).toBe('ls/b');
    const page2 = await fetch(`${urls[l]}/v1/files?prefix=ls/&limit=2&after=${p1.next}`);
    const p2 = (await page2.json()) as { files: { path: string }[]; next: string | null };
    expect(p2.files.map((f) => f.path)).toEqual(['ls/c']);
    expect(p2.next).toBeNull();
    expect((await fetch(`${urls[l]}/v1/files?limit=0`)).status).toBe(400);
  });

  it('never serves a corrupt chunk: fetches a good copy from a peer', async () => {
    const l = leaderIndex();
    const body = content(200_000, 5);
    expect((await put(`${urls[l]}/v1/files/fix.bin`, body)).status).toBe(201);
    await waitApplied('fix.bin', sha(body));
    const f = followerIndex();
    const record = nodes[f]?.files.tableFile('fix.bin');
    const hash = record?.chunks[1]?.hash ?? '';
    const blobPath = nodes[f]?.files.blobPath(hash) ?? '';
    writeFileSync(blobPath, Buffer.alloc(chunkBytes, 0));
    const before = nodes[f]?.files.stats.fetched ?? 0;
    const got = await fetch(`${urls[f]}/v1/files/fix.bin`);
    expect(got.status).toBe(200);
    expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(body));
    expect(nodes[f]?.files.stats.corruptFound).toBeGreaterThan(0);
    expect(nodes[f]?.files.stats.fetched).toBe(before + 1);
    const metrics = await (await fetch(`${urls[f]}/metrics`)).text();
    expect(metrics).toMatch(/^tandem_file_chunks_corrupt_total [1-9]/m);
    expect(metrics).toMatch(/^tandem_files [1-9]/m);
  });

  it('answers a clear 503 when no node has a good copy of a chunk', async () => {
    const l = leaderIndex();
    const body = content(100_000, 8);
    expect((await put(`${urls[l]}/v1/files/lost.bin`, body)).status).toBe(201);
    await waitApplied('lost.bin', sha(body));
    const hash = nodes[l]?.files.tableFile('lost.bin')?.chunks[0]?.hash ?? '';
    for (const node of nodes) writeFileSync(node.files.blobPath(hash), Buffer.from('rot'));
    const got = await fetch(`${urls[l]}/v1/files/lost.bin`);
    expect(got.status).toBe(503);
    expect(((await got.json()) as { error: string }).error).toContain('no peer gave a good copy');
  });

  it('collects chunks no file refers to once past the grace period', async () => {
    const l = leaderIndex();
    const body = content(150_000, 6);
    // A checksum mismatch leaves committed chunks no manifest refers to.
    const wrong = await put(`${urls[l]}/v1/files/orphan`, body, {
      'x-checksum-sha256': sha(Buffer.from('no')),
    });
    expect(wrong.status).toBe(400);
    const node = nodes[l] as TandemNode;
    const hash = sha(body.subarray(0, chunkBytes));
    expect(node.files.hasChunk(hash)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const removed = await node.files.collectGarbage(Date.now());
    expect(removed).toBeGreaterThan(0);
    expect(node.files.hasChunk(hash)).toBe(false);
    // Files still visible keep their chunks.
    const kept = await fetch(`${urls[l]}/v1/files/docs/a.bin`);
    expect(kept.status).toBe(200);
    await kept.arrayBuffer();
  });
});

describe('parseRange', () => {
  it('reads single ranges and ignores others', () => {
    expect(parseRange(undefined, 10)).toBeNull();
    expect(parseRange('bytes=0-4', 10)).toEqual([0, 5]);
    expect(parseRange('bytes=5-', 10)).toEqual([5, 10]);
    expect(parseRange('bytes=-3', 10)).toEqual([7, 10]);
    expect(parseRange('bytes=8-100', 10)).toEqual([8, 10]);
    expect(parseRange('bytes=10-', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-1,3-4', 10)).toBeNull();
  });
});
