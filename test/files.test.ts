/**
 * The file store (issue 6) against real `tandem node` processes: the CLI's
 * put/get/ls/rm; kill -9 of the leader after an upload (every remaining
 * node serves the file with its sha256, and so does the killed one once
 * restarted); kill -9 of the leader during an
 * upload (the file is then absent or complete on every remaining node,
 * never half-written).
 */

import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  allReady,
  type Child,
  leaderAmong,
  restart,
  rootDir,
  runCli,
  startCluster,
  useProcesses,
  waitFor,
} from './processes.test-util.js';

useProcesses();

const mib = 1024 * 1024;
/**
 * 50 ms ticks (election timeout 0.5-1 s): three nodes, the CLI and the test
 * share two cores and one disk here, and 20 ms ticks let an event-loop
 * stall of a few hundred ms during a large upload cost the leader its lease.
 */
const clusterArgs = { extraArgs: ['--tick-ms', '50'] };

function sha(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Random-looking content, cheap to make: 1 MiB of random bytes, each copy xor-ed with its index. */
function content(bytes: number): Buffer {
  const base = randomBytes(mib);
  const out = Buffer.allocUnsafe(bytes);
  for (let at = 0, i = 0; at < bytes; at += mib, i++) {
    const n = Math.min(mib, bytes - at);
    for (let j = 0; j < n; j++) out[at + j] = (base[j] as number) ^ (i & 0xff);
  }
  return out;
}

/** The file's sha256 as served by `node` (null when absent), read in full and hashed. */
async function servedSha(node: Child, path: string): Promise<string | null> {
  const response = await fetch(`${node.http}/v1/files/${path}`, {
    signal: AbortSignal.timeout(20_000),
  });
  if (response.status === 404) {
    await response.body?.cancel();
    return null;
  }
  expect(response.status).toBe(200);
  const bytes = Buffer.from(await response.arrayBuffer());
  expect(response.headers.get('x-checksum-sha256')).toBe(sha(bytes));
  return sha(bytes);
}

async function leaderOf(nodes: readonly Child[]): Promise<Child> {
  return waitFor('a leader', async () => (await leaderAmong(nodes))?.child, 20_000);
}

function kill9(node: Child): Promise<number | null> {
  if (node.process.pid !== undefined) process.kill(node.process.pid, 'SIGKILL');
  return node.exited;
}

describe('files on a 3-node cluster of processes', () => {
  it('put/get/ls/rm through the CLI; after kill -9 of the leader the others serve the file', async () => {
    const nodes = await startCluster(3, clusterArgs);
    await allReady(nodes);
    const leader = await leaderOf(nodes);
    const follower = nodes.find((n) => n !== leader) as Child;
    const body = content(12 * mib + 12345);
    const local = join(rootDir(), 'upload.bin');
    await writeFile(local, body);
    const endpoints = ['--endpoints', follower.http];
    const put = await runCli(['put', local, 'dir/big.bin', ...endpoints]);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toContain(sha(body));
    const ls = await runCli(['ls', 'dir/', ...endpoints]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(new RegExp(`${body.length}\\s.*${sha(body)}\\s+dir/big.bin`));

    await kill9(leader);
    const rest = nodes.filter((n) => n !== leader);
    for (const node of rest) {
      await waitFor(
        `dir/big.bin on ${node.id}`,
        async () => ((await servedSha(node, 'dir/big.bin')) === sha(body) ? true : undefined),
        20_000,
      );
      const out = join(rootDir(), `from-${node.id}.bin`);
      const got = await runCli(['get', 'dir/big.bin', out, '--endpoints', node.http]);
      expect(got.code).toBe(0);
      expect(sha(await readFile(out))).toBe(sha(body));
    }
    // The killed node comes back from its WAL, snapshot and blob store with the file intact.
    const back = restart(leader);
    await allReady([back]);
    await waitFor(
      `dir/big.bin on the restarted ${back.id}`,
      async () => ((await servedSha(back, 'dir/big.bin')) === sha(body) ? true : undefined),
      20_000,
    );
    const rm = await runCli([
      'rm',
      'dir/big.bin',
      '--endpoints',
      rest.map((n) => n.http).join(','),
    ]);
    expect(rm.code).toBe(0);
    const missing = await runCli(['get', 'dir/big.bin', '-', ...endpoints]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('404');
  }, 90_000);

  it('kill -9 of the leader during an upload leaves the file absent or complete, never half-written', async () => {
    const nodes = await startCluster(3, clusterArgs);
    await allReady(nodes);
    const leader = await leaderOf(nodes);
    const follower = nodes.find((n) => n !== leader) as Child;
    const body = content(64 * mib);
    const url = new URL(`${follower.http}/v1/files/mid.bin`);
    let sent = 0;
    let killed: Promise<number | null> | null = null;
    // Streams the body slowly enough to kill the leader half-way.
    const outcome = await new Promise<string>((done) => {
      const out = request(
        {
          host: url.hostname,
          port: url.port,
          method: 'PUT',
          path: url.pathname,
          headers: { 'content-length': String(body.length), 'x-checksum-sha256': sha(body) },
        },
        (response) => {
          response.resume();
          response.on('end', () => done(`HTTP ${response.statusCode}`));
          response.on('error', (e) => done(`response error ${e.message}`));
        },
      );
      out.on('error', (e) => done(`request error ${e.message}`));
      const step = 256 * 1024;
      const pump = (): void => {
        while (sent < body.length) {
          if (killed === null && sent >= body.length / 2) killed = kill9(leader);
          const piece = body.subarray(sent, sent + step);
          sent += piece.length;
          if (!out.write(piece)) {
            out.once('drain', pump);
            return;
          }
        }
        out.end();
      };
      pump();
    });
    expect(killed).not.toBeNull();
    await killed;
    const rest = nodes.filter((n) => n !== leader);
    await leaderOf(rest);
    // Absent or complete on every remaining node, and the same on both once caught up.
    const seen = await waitFor(
      'the remaining nodes to agree',
      async () => {
        const shas = await Promise.all(rest.map((n) => servedSha(n, 'mid.bin?linearizable=1')));
        return shas[0] === shas[1] ? shas : undefined;
      },
      20_000,
    );
    for (const s of seen) expect([null, sha(body)]).toContain(s);
    // The cluster still takes uploads, and both remaining nodes serve them.
    const small = content(3 * mib);
    const again = await fetch(`${rest[0]?.http}/v1/files/after.bin`, {
      method: 'PUT',
      body: small,
      signal: AbortSignal.timeout(20_000),
    });
    expect(again.status).toBe(201);
    for (const node of rest) {
      expect(await servedSha(node, 'after.bin?linearizable=1')).toBe(sha(small));
    }
    process.stdout.write(
      `mid-upload kill: upload answered ${outcome}; file ${seen[0] === null ? 'absent' : 'complete'}\n`,
    );
  }, 90_000);
});
