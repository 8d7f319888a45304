/**
 * A RESP load generator (one process, one thread): `clients` connections,
 * each sending `pipeline` GET/SET commands at a time and waiting for their
 * replies before the next batch (as redis-benchmark does), for a warm-up and
 * then a measured window. Each request's latency is the time from its
 * batch's write to its reply, recorded in HDR histograms (latencies.ts).
 * Used for Tandem and Redis alike, so both see the same client.
 *
 * Run as a child by run-load.ts: `tsx bench/load/resp-load.ts '<LoadSpec JSON>'`
 * prints one LoadResult JSON line.
 */

import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Prng } from '../../src/raft/prng.js';
import { Latencies } from './latencies.js';
import { ReplyCounter } from './reply-counter.js';
import { checkSpec, type LoadResult, type LoadSpec } from './spec.js';

const connectTimeoutMs = 10_000;

interface Window {
  readonly measureFromMs: number;
  readonly endMs: number;
}

interface Tally {
  ops: number;
  reads: number;
  writes: number;
  errors: number;
  firstError: string | null;
}

export async function runRespLoad(spec: LoadSpec): Promise<LoadResult> {
  checkSpec(spec);
  const latencies = new Latencies();
  const tally: Tally = { ops: 0, reads: 0, writes: 0, errors: 0, firstError: null };
  const sockets = await Promise.all(
    Array.from({ length: spec.clients }, (_, i) =>
      open(spec.host, spec.ports[i % spec.ports.length] as number),
    ),
  );
  const cpuBefore = process.cpuUsage();
  const startMs = performance.now();
  const window = {
    measureFromMs: startMs + spec.warmupMs,
    endMs: startMs + spec.warmupMs + spec.durationMs,
  };
  try {
    await Promise.all(
      sockets.map((socket, i) =>
        driveClient(socket, spec, new Prng(spec.seed * 7919 + i), window, latencies, tally),
      ),
    );
  } finally {
    for (const socket of sockets) socket.destroy();
  }
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = spec.durationMs / 1000;
  return {
    ...tally,
    seconds,
    opsPerSecond: tally.ops / seconds,
    ...latencies.summaries(),
    generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${host}:${port} timed out after ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`connecting to ${host}:${port} failed: ${err.message}`));
    });
  });
}

/** Batches until the window ends; resolves when the last batch's replies are in. */
function driveClient(
  socket: Socket,
  spec: LoadSpec,
  random: Prng,
  window: Window,
  latencies: Latencies,
  tally: Tally,
): Promise<void> {
  const value = 'v'.repeat(spec.valueBytes);
  const counter = new ReplyCounter();
  const kinds: boolean[] = []; // per request of the batch: is it a read
  let batchSentMs = 0;
  let received = 0;
  return new Promise<void>((resolve, reject) => {
    const send = (): void => {
      kinds.length = 0;
      let batch = '';
      for (let i = 0; i < spec.pipeline; i++) {
        const read = spec.readRatio > 0 && random.float() < spec.readRatio;
        kinds.push(read);
        const key = `key:${random.int(spec.keys)}`;
        batch += read ? getCommand(key) : setCommand(key, value);
      }
      received = 0;
      batchSentMs = performance.now();
      socket.write(Buffer.from(batch, 'latin1'));
    };
    const onReply = (error: string | null): void => {
      const now = performance.now();
      const read = kinds[received] === true;
      received++;
      if (batchSentMs >= window.measureFromMs && now <= window.endMs) {
        if (error === null) {
          tally.ops++;
          if (read) tally.reads++;
          else tally.writes++;
          latencies.record(read, now - batchSentMs);
        } else {
          tally.errors++;
          tally.firstError ??= error;
        }
      }
      if (received < spec.pipeline) return;
      if (now < window.endMs) send();
      else resolve();
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        counter.feed(chunk, onReply);
      } catch (err) {
        reject(err);
      }
    });
    socket.once('error', (err) => reject(new Error(`connection failed mid-run: ${err.message}`)));
    socket.once('close', () => {
      if (performance.now() < window.endMs)
        reject(new Error('the server closed a connection mid-run'));
    });
    send();
  });
}

/** RESP commands as latin1 strings (keys and values are ASCII): one Buffer per batch. */
function getCommand(key: string): string {
  return `*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`;
}

function setCommand(key: string, value: string): string {
  return `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
  runRespLoad(spec).then(
    (result) => console.log(JSON.stringify(result)),
    (err: unknown) => {
      console.error(`resp-load: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
