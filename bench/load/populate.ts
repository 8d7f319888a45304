/**
 * Writes every key a read workload will ask for (key:0 .. key:N-1), so reads
 * return values of the workload's size rather than nils.
 */

import { Etcd3 } from 'etcd3';
import { Redis } from 'ioredis';
import type { Protocol } from './run-load.js';

const respBatch = 1_000;
const etcdConcurrency = 64;

export async function populate(
  protocol: Protocol,
  host: string,
  port: number,
  keys: number,
  valueBytes: number,
): Promise<void> {
  const value = 'v'.repeat(valueBytes);
  if (protocol === 'resp') {
    const client = new Redis({ host, port, maxRetriesPerRequest: 3 });
    try {
      for (let i = 0; i < keys; i += respBatch) {
        const pipeline = client.pipeline();
        for (let k = i; k < Math.min(keys, i + respBatch); k++) pipeline.set(`key:${k}`, value);
        const results = await pipeline.exec();
        const failed = results?.find(([err]) => err !== null);
        if (failed !== undefined) throw new Error(`populating failed: ${String(failed[0])}`);
      }
    } finally {
      client.disconnect();
    }
    return;
  }
  const client = new Etcd3({ hosts: `http://${host}:${port}` });
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys) {
        const k = next++;
        await client.put(`key:${k}`).value(value).exec();
      }
    };
    await Promise.all(Array.from({ length: etcdConcurrency }, worker));
  } finally {
    client.close();
  }
}
