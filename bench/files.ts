/**
 * File store throughput and memory (issue 6). A measurement, not a test:
 *
 *   npm run bench:files -- [--mb 1024] [--raw-mb 256]
 *
 * 1. Raw sync-write bandwidth of the disk the nodes use: RAW-MB MiB written
 *    in 1 MiB writes, each followed by fdatasync.
 * 2. A 3-node cluster of built `tandem node` processes on loopback, all on
 *    that disk (so each byte is written to 3 WALs and 3 blob stores: about
 *    a sixth of the raw bandwidth is the ceiling for uploads).
 * 3. Uploads MB MiB through the leader (streamed, with its sha256), then
 *    downloads it from a follower (streamed, hashed, discarded); prints
 *    MB/s of each and the peak RSS of every node during each.
 * 4. Uploads MB MiB again through a follower and kill -9s the leader half
 *    way; restarts it, then checks that every node has the file complete
 *    (right sha256) or not at all.
 * 5. kill -9s the leader and downloads the first file from each remaining
 *    node, checking its sha256.
 */

import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { Command } from 'commander';
import { int } from './cli-args.js';
import { cpuSeconds, peakRssBytes, resetPeakRss, rssBytes } from './proc-stats.js';
import { type BenchNode, ProcessCluster } from './process-cluster.js';

const mib = 1024 * 1024;
const o = new Command('bench:files')
  .option('--mb <n>', 'MiB to upload and download', int(1), 1024)
  .option('--raw-mb <n>', 'MiB written to measure the raw sync-write bandwidth', int(1), 256)
  .option('--dir <path>', 'where the nodes keep their data (default: a temp folder)')
  .option('--keep', 'keep the data and the node logs afterwards')
  .option('--no-kill', 'skip the kill -9 phases (4 and 5)')
  .parse()
  .opts<{ mb: number; rawMb: number; dir?: string; keep?: boolean; kill: boolean }>();

const root = await mkdtemp(join(o.dir ?? tmpdir(), 'tandem-bench-files-'));

/** The same 1 MiB block, each copy xor-ed with its index: fast to make, not all alike. */
function* blocks(total: number): Iterable<Buffer> {
  const base = Buffer.allocUnsafe(mib);
  for (let i = 0; i < mib; i++) base[i] = (i * 2654435761) >>> 24;
  for (let at = 0, k = 0; at < total; at += mib, k++) {
    const n = Math.min(mib, total - at);
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = (base[i] as number) ^ (k & 0xff) ^ ((k >> 8) & 0xff);
    yield out;
  }
}

function rawSyncWrite(mbCount: number): number {
  const path = join(root, 'raw-sync-write.bin');
  const block = Buffer.alloc(mib, 7);
  const fd = openSync(path, 'w');
  const started = performance.now();
  for (let i = 0; i < mbCount; i++) {
    writeSync(fd, block);
    fdatasyncSync(fd);
  }
  const seconds = (performance.now() - started) / 1000;
  closeSync(fd);
  unlinkSync(path);
  return (mbCount * mib) / seconds / 1e6;
}

/** Samples each node's RSS every 100 ms (a fallback where VmHWM cannot be reset). */
function sampler(pids: ReadonlyMap<string, number>) {
  const max = new Map<string, number>();
  const timer = setInterval(async () => {
    for (const [id, pid] of pids) {
      const rss = (await rssBytes(pid)) ?? 0;
      max.set(id, Math.max(max.get(id) ?? 0, rss));
    }
  }, 100);
  return {
    async stop(): Promise<Record<string, number>> {
      clearInterval(timer);
      const out: Record<string, number> = {};
      for (const [id, pid] of pids) {
        const hwm = (await peakRssBytes(pid)) ?? 0;
        out[id] = Math.round(Math.max(hwm, max.get(id) ?? 0) / mib);
      }
      return out;
    },
  };
}

async function measure<T>(pids: ReadonlyMap<string, number>, work: () => Promise<T>) {
  const cpuBefore = new Map<string, number>();
  for (const [id, pid] of pids) {
    await resetPeakRss(pid);
    cpuBefore.set(id, (await cpuSeconds(pid)) ?? 0);
  }
  const s = sampler(pids);
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const cpu: Record<string, number> = {};
  for (const [id, pid] of pids) {
    cpu[id] = Math.round((((await cpuSeconds(pid)) ?? 0) - (cpuBefore.get(id) ?? 0)) * 10) / 10;
  }
  return { result, seconds, peakRssMb: await s.stop(), cpuSeconds: cpu };
}

function upload(
  node: BenchNode,
  path: string,
  total: number,
  sha256: string,
  onSent: (bytes: number) => void = () => undefined,
): Promise<string> {
  const url = new URL(`${node.http}/v1/files/${path}`);
  return new Promise((resolve, reject) => {
    const out = request(
      {
        host: url.hostname,
        port: url.port,
        method: 'PUT',
        path: url.pathname,
        headers: { 'content-length': String(total), 'x-checksum-sha256': sha256 },
      },
      (response) => {
        let text = '';
        response.on('data', (c: Buffer) => {
          text += c.toString();
        });
        response.on('end', () =>
          response.statusCode === 201
            ? resolve(text)
            : reject(new Error(`${response.statusCode} ${text}`)),
        );
      },
    );
    out.on('error', reject);
    let sent = 0;
    const source = Readable.from(blocks(total));
    source.on('data', (b: Buffer) => {
      sent += b.length;
      onSent(sent);
    });
    source.pipe(out);
  });
}

async function waitLeader(among: readonly BenchNode[], timeoutMs: number): Promise<BenchNode> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    for (const n of among) if ((await cluster.status(n))?.role === 'leader') return n;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no leader among ${among.map((n) => n.id).join(', ')} within ${timeoutMs} ms`);
}

async function kill9(node: BenchNode): Promise<void> {
  const child = node.child;
  if (child === null || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/** The file's sha256 on `node` after a read barrier, or null if it is absent there. */
async function shaOn(node: BenchNode, path: string): Promise<string | null> {
  const response = await fetch(`${node.http}/v1/files/${path}?linearizable=1`);
  if (response.status === 404) {
    await response.body?.cancel();
    return null;
  }
  if (response.status !== 200 || response.body === null) {
    throw new Error(`${node.id} answered ${response.status}: ${await response.text()}`);
  }
  const hash = createHash('sha256');
  for await (const chunk of response.body) hash.update(chunk);
  return hash.digest('hex');
}

async function download(node: BenchNode, path: string): Promise<{ bytes: number; sha: string }> {
  const response = await fetch(`${node.http}/v1/files/${path}`);
  if (response.status !== 200 || response.body === null) {
    throw new Error(`download answered ${response.status}: ${await response.text()}`);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of response.body) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha: hash.digest('hex') };
}

const cluster = await ProcessCluster.plan(root, 3, ['--log-level', 'warn']);
try {
  console.log(`bench:files: ${o.mb} MiB through a 3-node cluster; data under ${root}`);
  const rawMBps = rawSyncWrite(o.rawMb);
  console.log(
    `raw sync-write bandwidth: ${rawMBps.toFixed(1)} MB/s (${o.rawMb} x 1 MiB write + fdatasync)`,
  );
  const total = o.mb * mib;
  const hash = createHash('sha256');
  for (const b of blocks(total)) hash.update(b);
  const sha256 = hash.digest('hex');

  await cluster.start();
  const leader = await cluster.leader();
  const follower = cluster.nodes.find((n) => n !== leader) as BenchNode;
  const pids = new Map<string, number>();
  for (const n of cluster.nodes) pids.set(n.id, n.child?.pid ?? 0);

  const up = await measure(pids, () => upload(leader, 'bench/file.bin', total, sha256));
  const upMBps = total / up.seconds / 1e6;
  console.log(
    `upload ${o.mb} MiB to the leader (${leader.id}): ${up.seconds.toFixed(1)} s, ` +
      `${upMBps.toFixed(1)} MB/s; peak RSS MiB ${JSON.stringify(up.peakRssMb)}; ` +
      `CPU s ${JSON.stringify(up.cpuSeconds)}`,
  );
  // The follower serves what it applied; wait until it has the manifest.
  for (let i = 0; i < 600; i++) {
    const head = await fetch(`${follower.http}/v1/files/bench/file.bin`, { method: 'HEAD' });
    if (head.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const down = await measure(pids, () => download(follower, 'bench/file.bin'));
  if (down.result.sha !== sha256 || down.result.bytes !== total) {
    throw new Error(`the download from ${follower.id} differs: ${down.result.sha}`);
  }
  const downMBps = total / down.seconds / 1e6;
  console.log(
    `download ${o.mb} MiB from a follower (${follower.id}): ${down.seconds.toFixed(1)} s, ` +
      `${downMBps.toFixed(1)} MB/s, sha256 verified; peak RSS MiB ${JSON.stringify(down.peakRssMb)}; ` +
      `CPU s ${JSON.stringify(down.cpuSeconds)}`,
  );
  const kills: Record<string, unknown> = {};
  if (o.kill) {
    // 4. kill -9 of the leader half way through an upload sent to a follower.
    const midLeader = await waitLeader(cluster.nodes, 20_000);
    const via = cluster.nodes.find((n) => n !== midLeader) as BenchNode;
    let killing: Promise<void> | null = null;
    const answer = await upload(via, 'bench/mid.bin', total, sha256, (sent) => {
      if (killing === null && sent >= total / 2) killing = kill9(midLeader);
    }).then(
      (text) => `completed: ${text}`,
      (failure: unknown) => `failed: ${(failure as Error).message}`,
    );
    await killing;
    const rest = cluster.nodes.filter((n) => n !== midLeader);
    await waitLeader(rest, 30_000);
    cluster.spawn(midLeader);
    await cluster.settle();
    const outcome: Record<string, string> = {};
    for (const n of cluster.nodes) {
      const got = await shaOn(n, 'bench/mid.bin');
      if (got !== null && got !== sha256) throw new Error(`${n.id} serves a half-written file`);
      outcome[n.id] = got === null ? 'absent' : 'complete';
    }
    console.log(
      `kill -9 of the leader (${midLeader.id}) half way through a ${o.mb} MiB upload via ` +
        `${via.id}: the upload ${answer.slice(0, 160)}; after restarting it, the file is ` +
        `${JSON.stringify(outcome)}`,
    );
    kills.midUpload = { answer: answer.slice(0, 200), outcome };
    // 5. kill -9 of the leader after the upload: the others serve the file.
    const lastLeader = await waitLeader(cluster.nodes, 20_000);
    await kill9(lastLeader);
    const remaining = cluster.nodes.filter((n) => n !== lastLeader);
    await waitLeader(remaining, 30_000);
    const after: Record<string, string> = {};
    for (const n of remaining) {
      after[n.id] = (await shaOn(n, 'bench/file.bin')) === sha256 ? 'right sha256' : 'WRONG';
    }
    console.log(
      `kill -9 of the leader (${lastLeader.id}) after the upload: ${JSON.stringify(after)}`,
    );
    kills.afterUpload = after;
  }
  const result = {
    ...kills,
    bench: 'files',
    mb: o.mb,
    rawSyncWriteMBps: Math.round(rawMBps * 10) / 10,
    uploadMBps: Math.round(upMBps * 10) / 10,
    downloadMBps: Math.round(downMBps * 10) / 10,
    uploadPeakRssMb: up.peakRssMb,
    downloadPeakRssMb: down.peakRssMb,
    uploadCpuSeconds: up.cpuSeconds,
    downloadCpuSeconds: down.cpuSeconds,
  };
  await writeFile(join(tmpdir(), 'tandem-bench-files.json'), JSON.stringify(result, null, 2));
  console.log(JSON.stringify(result));
} catch (failure) {
  // The nodes' own words on what went wrong (their logs go with the data).
  for (const n of cluster.nodes) {
    const text = await readFile(join(root, `${n.id}.log`), 'utf8').catch(() => '');
    console.error(`--- ${n.id} log (last 3000 chars)\n${text.slice(-3000)}`);
  }
  throw failure;
} finally {
  await cluster.stop();
  if (o.keep === true) console.log(`kept ${root}`);
  else await rm(root, { recursive: true, force: true });
}
