/**
 * The etcd side of the comparison: the same LoadSpec as resp-load.ts, sent
 * through the etcd3 client (gRPC). Each of `clients` loops has its own
 * client (its own channel) and keeps `pipeline` requests in flight as a
 * batch; puts are plain puts, gets are linearizable ranges (etcd's
 * default, serializable: false).
 *
 * Run as a child by run-load.ts: `tsx bench/load/etcd-load.ts '<LoadSpec JSON>'`.
 */

import { performance } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import { Prng } from '../../src/raft/prng.js';
import { Latencies } from './latencies.js';
import { checkSpec, type LoadResult, type LoadSpec } from './spec.js';

const requestTimeoutMs = 10_000;

interface Tally {
  ops: number;
  reads: number;
  writes: number;
  errors: number;
  firstError: string | null;
}

export async function runEtcdLoad(spec: LoadSpec): Promise<LoadResult> {
  checkSpec(spec);
  const latencies = new Latencies();
  const tally: Tally = { ops: 0, reads: 0, writes: 0, errors: 0, firstError: null };
  const clients = Array.from(
    { length: spec.clients },
    (_, i) =>
      new Etcd3({
        hosts: `http://${spec.host}:${spec.ports[i % spec.ports.length]}`,
        defaultCallOptions: () => ({ deadline: Date.now() + requestTimeoutMs }),
      }),
  );
  // One round trip each before the clock starts: channels connect lazily.
  await Promise.all(clients.map((c) => c.get('warm-up').string()));
  const cpuBefore = process.cpuUsage();
  const startMs = performance.now();
  const measureFromMs = startMs + spec.warmupMs;
  const endMs = measureFromMs + spec.durationMs;
  try {
    await Promise.all(
      clients.map((client, i) =>
        loop(client, spec, new Prng(spec.seed * 7919 + i), measureFromMs, endMs, latencies, tally),
      ),
    );
  } finally {
    for (const c of clients) c.close();
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

async function loop(
  client: Etcd3,
  spec: LoadSpec,
  random: Prng,
  measureFromMs: number,
  endMs: number,
  latencies: Latencies,
  tally: Tally,
): Promise<void> {
  const value = 'v'.repeat(spec.valueBytes);
  while (performance.now() < endMs) {
    const sentMs = performance.now();
    const batch: Promise<void>[] = [];
    for (let i = 0; i < spec.pipeline; i++) {
      const read = spec.readRatio > 0 && random.float() < spec.readRatio;
      const key = `key:${random.int(spec.keys)}`;
      const request = read ? client.get(key).string() : client.put(key).value(value).exec();
      batch.push(
        request.then(
          () => {
            const now = performance.now();
            if (sentMs < measureFromMs || now > endMs) return;
            tally.ops++;
            if (read) tally.reads++;
            else tally.writes++;
            latencies.record(read, now - sentMs);
          },
          (err: unknown) => {
            if (sentMs < measureFromMs || performance.now() > endMs) return;
            tally.errors++;
            tally.firstError ??= err instanceof Error ? err.message : String(err);
          },
        ),
      );
    }
    await Promise.all(batch);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
  runEtcdLoad(spec).then(
    (result) => {
      console.log(JSON.stringify(result));
      // gRPC keeps handles open for a while after close; the result is out.
      process.exit(0);
    },
    (err: unknown) => {
      console.error(`etcd-load: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
