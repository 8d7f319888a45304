import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { logIndex, nodeId, type SnapshotMeta, term } from '../raft/types.js';
import { chunksOf, collect } from '../storage/chunks.test-util.js';
import { crc32c } from '../storage/crc32c.js';
import { NodeFileSystem } from '../storage/node-fs.js';
import { SnapshotStore } from '../storage/snapshot-store.js';
import { NodeMachine } from './node-machine.js';

let dir = '';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tandem-machine-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * The snapshot data as Tandem wrote it before protocol 4: the kv image (the
 * last section) of version 1, ending with its SHA-256.
 */
function withVersion1Image(data: Buffer): Buffer {
  const at = data.indexOf('TDKVSNAP', 0, 'latin1');
  expect(at).toBeGreaterThan(0);
  const image = Buffer.from(data.subarray(at));
  expect(image.readUInt32LE(8)).toBe(2);
  image.writeUInt32LE(1, 8);
  const hash = createHash('sha256').update(image).digest();
  return Buffer.concat([data.subarray(0, at), image, hash]);
}

describe('NodeMachine snapshots', () => {
  it('restores a data directory of the previous formats: a format 1 file holding a version 1 image', async () => {
    const source = new NodeMachine(join(dir, 'blobs-source'));
    let index = 0;
    const write = (...argv: string[]): void => {
      const data = source.kv.prepareWrite(0, argv, 1_000, index);
      if (!(data instanceof Uint8Array)) throw new Error(`not a write: ${argv.join(' ')}`);
      source.apply(logIndex(++index), data);
    };
    for (let i = 0; i < 200; i++) write('SET', `k${i}`, `v${i}`.repeat(20));
    write('HSET', 'h', 'f', 'x', 'g', 'y');
    write('PEXPIRE', 'k7', '60000');
    const data = withVersion1Image(await collect(source.snapshot('fresh')));

    const fs = new NodeFileSystem();
    const storeDir = join(dir, 'snap');
    const store = await SnapshotStore.open(fs, storeDir);
    const meta: SnapshotMeta = {
      index: logIndex(index),
      term: term(2),
      membership: { voters: [nodeId('n1')], learners: [] },
    };
    const writer = await store.beginWrite(meta);
    await writer.write(data);
    const info = await writer.finish();
    // Rewrite the file's trailer as format 1 wrote it: data CRC32C, version 1.
    const file = Buffer.from(await readFile(info.file));
    const end = file.length;
    file.writeUInt32BE(crc32c(file, 0, 0, info.dataBytes), end - 16);
    file.writeUInt32BE(1, end - 12);
    file.writeUInt32BE(crc32c(file, 0, info.dataBytes, end - 4), end - 4);
    await writeFile(info.file, file);

    const reopened = await SnapshotStore.open(fs, storeDir);
    const reader = await reopened.openRead(meta);
    expect(reader.info.formatVersion).toBe(1);
    const restored = new NodeMachine(join(dir, 'blobs-restored'));
    await restored.restore(reader);
    expect(restored.kv.digest()).toBe(source.kv.digest());

    // The version 1 image's own hash is still checked.
    const damaged = Buffer.from(data);
    const at = damaged.indexOf('v150', 0, 'latin1');
    damaged[at] = 'w'.charCodeAt(0);
    await expect(
      new NodeMachine(join(dir, 'blobs-damaged')).restore(chunksOf(damaged)),
    ).rejects.toThrow(/checksum mismatch/);
  });
});
