import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { logIndex, nodeId, type SnapshotMeta, term } from '../raft/types.js';
import { crc32 } from './crc32.js';
import { crc32c } from './crc32c.js';
import { DelegatingFileSystem, overrideFile } from './delegating-fs.js';
import type { FsFile } from './fs.js';
import { NodeFileSystem } from './node-fs.js';
import {
  decodeMeta,
  encodeMeta,
  formatSnapshotName,
  parseSnapshotName,
  SnapshotCorruptionError,
  SnapshotFormatError,
  SnapshotMismatchError,
  SnapshotStore,
  snapshotSyncEveryBytes,
} from './snapshot-store.js';

const fs = new NodeFileSystem();
let dir = '';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tandem-snap-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function meta(index: number, snapshotTerm: number, voters = ['n1', 'n2', 'n3']): SnapshotMeta {
  return {
    index: logIndex(index),
    term: term(snapshotTerm),
    membership: { voters: voters.map(nodeId), learners: [nodeId('n4')] },
  };
}

/** Deterministic pseudo-random bytes. */
function data(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function writeSnapshot(store: SnapshotStore, m: SnapshotMeta, content: Buffer, chunk = 777) {
  const writer = await store.beginWrite(m);
  for (let at = 0; at < content.length; at += chunk) {
    await writer.write(content.subarray(at, at + chunk));
  }
  return writer.finish();
}

async function readAll(store: SnapshotStore, m: SnapshotMeta): Promise<Buffer[]> {
  const reader = await store.openRead(m);
  const chunks: Buffer[] = [];
  for await (const chunk of reader) chunks.push(Buffer.from(chunk));
  return chunks;
}

describe('snapshot names and meta encoding', () => {
  it('formats and parses names in (index, term) byte order', () => {
    const name = formatSnapshotName(logIndex(255), term(3));
    expect(name).toBe('00000000000000ff-0000000000000003.snap');
    expect(parseSnapshotName(name)).toEqual({ index: 255, term: 3 });
    expect(parseSnapshotName(`${name}.tmp`)).toBeNull();
    expect(parseSnapshotName('0000000000000001.snap')).toBeNull();
  });

  it('round-trips any meta', () => {
    const ids = fc.array(fc.string({ maxLength: 20 }), { maxLength: 6 });
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.maxSafeNat(), ids, ids, (index, t, voters, learners) => {
        const m: SnapshotMeta = {
          index: logIndex(index),
          term: term(t),
          membership: { voters: voters.map(nodeId), learners: learners.map(nodeId) },
        };
        expect(decodeMeta(encodeMeta(m))).toEqual(m);
      }),
    );
  });
});

describe('SnapshotStore over NodeFileSystem', () => {
  it('round-trips a multi-chunk snapshot in bounded chunks', async () => {
    const store = await SnapshotStore.open(fs, dir, { readChunkBytes: 4096 });
    expect(store.latest()).toBeNull();
    const m = meta(100, 4);
    const content = data(1, 50_000);
    const info = await writeSnapshot(store, m, content);
    expect(info.dataBytes).toBe(content.length);
    expect(store.latest()).toEqual(m);
    expect(await readdir(dir)).toEqual([formatSnapshotName(m.index, m.term)]);

    const chunks = await readAll(store, m);
    expect(chunks.length).toBe(Math.ceil(content.length / 4096));
    expect(chunks.every((c) => c.length <= 4096)).toBe(true);
    expect(Buffer.concat(chunks).equals(content)).toBe(true);

    const reopened = await SnapshotStore.open(fs, dir, { readChunkBytes: 4096 });
    expect(reopened.latest()).toEqual(m);
    await reopened.verify(m);
    expect(Buffer.concat(await readAll(reopened, m)).equals(content)).toBe(true);
  });

  it('streams a snapshot larger than the default 1 MiB chunk, with overlapping writes', async () => {
    const store = await SnapshotStore.open(fs, dir);
    const m = meta(7, 1);
    const content = data(2, 3 * 1024 * 1024 + 123);
    const writer = await store.beginWrite(m);
    const pieces: Promise<void>[] = [];
    for (let at = 0; at < content.length; at += 256 * 1024) {
      pieces.push(writer.write(content.subarray(at, at + 256 * 1024)));
    }
    await Promise.all(pieces);
    await writer.finish();
    const chunks = await readAll(store, m);
    expect(chunks.map((c) => c.length)).toEqual([1048576, 1048576, 1048576, 123]);
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
  });

  it('handles an empty snapshot', async () => {
    const store = await SnapshotStore.open(fs, dir);
    const m = meta(1, 1, []);
    await writeSnapshot(store, m, Buffer.alloc(0));
    const reopened = await SnapshotStore.open(fs, dir);
    expect(reopened.latest()).toEqual(m);
    expect(await readAll(reopened, m)).toEqual([]);
  });

  it('keeps the newest snapshots on retire, and removes leftover temporary files', async () => {
    const store = await SnapshotStore.open(fs, dir);
    for (const i of [1, 2, 3, 4]) await writeSnapshot(store, meta(i * 10, i), data(i, 1000));
    await writeFile(join(dir, `${formatSnapshotName(logIndex(50), term(5))}.tmp`), 'partial');
    await writeFile(join(dir, 'unrelated.txt'), 'kept');
    expect(store.latest()).toEqual(meta(40, 4));
    const removed = await store.retire(2);
    expect(removed.sort()).toEqual(
      [
        formatSnapshotName(logIndex(10), term(1)),
        formatSnapshotName(logIndex(20), term(2)),
        `${formatSnapshotName(logIndex(50), term(5))}.tmp`,
      ].sort(),
    );
    expect(store.list().map((s) => s.meta.index)).toEqual([30, 40]);
    expect((await readdir(dir)).sort()).toEqual(
      [
        formatSnapshotName(logIndex(30), term(3)),
        formatSnapshotName(logIndex(40), term(4)),
        'unrelated.txt',
      ].sort(),
    );
    const reopened = await SnapshotStore.open(fs, dir);
    expect(reopened.list().map((s) => s.meta)).toEqual([meta(30, 3), meta(40, 4)]);
    expect(await reopened.retire(2)).toEqual([]);
  });

  it('runs overlapping retire calls one after the other', async () => {
    const store = await SnapshotStore.open(fs, dir);
    for (const i of [1, 2, 3, 4]) await writeSnapshot(store, meta(i * 10, i), data(i, 100));
    const [first, second] = await Promise.all([store.retire(2), store.retire(1)]);
    expect(first.sort()).toEqual(
      [formatSnapshotName(logIndex(10), term(1)), formatSnapshotName(logIndex(20), term(2))].sort(),
    );
    expect(second).toEqual([formatSnapshotName(logIndex(30), term(3))]);
    expect(store.list().map((s) => s.meta.index)).toEqual([40]);
  });

  it('retires despite a stale listing: a temporary file gone by the time it is deleted', async () => {
    class StaleListing extends DelegatingFileSystem {
      override async readdir(path: string): Promise<string[]> {
        const names = await super.readdir(path);
        return [...names, `${formatSnapshotName(logIndex(77), term(7))}.tmp`];
      }
    }
    const store = await SnapshotStore.open(new StaleListing(fs), dir);
    for (const i of [1, 2, 3]) await writeSnapshot(store, meta(i * 10, i), data(i, 100));
    expect(await store.retire(2)).toEqual([formatSnapshotName(logIndex(10), term(1))]);
  });

  it('fdatasyncs a large snapshot as it is written, so finish flushes little', async () => {
    /** The bytes written to each file when each of its datasyncs began. */
    const syncedAt = new Map<string, number[]>();
    class CountingSyncs extends DelegatingFileSystem {
      protected override wrapFile(file: FsFile): FsFile {
        let written = 0;
        const syncs: number[] = [];
        syncedAt.set(file.path, syncs);
        return overrideFile(file, {
          write: async (at, bytes) => {
            await file.write(at, bytes);
            written = Math.max(written, at + bytes.length);
          },
          datasync: () => {
            syncs.push(written);
            return file.datasync();
          },
        });
      }
    }
    const store = await SnapshotStore.open(new CountingSyncs(fs), dir);
    const content = data(9, 2.5 * snapshotSyncEveryBytes);
    await writeSnapshot(store, meta(10, 1), content, 1 << 20);
    const [syncs] = [...syncedAt.values()].filter((s) => s.length > 0);
    // At each multiple of the interval, then finish's own (after the trailer).
    expect(syncs?.slice(0, 2)).toEqual([snapshotSyncEveryBytes, 2 * snapshotSyncEveryBytes]);
    expect(syncs?.length).toBe(3);
    expect(Buffer.concat(await readAll(store, meta(10, 1))).equals(content)).toBe(true);
  });

  it('ignores a leftover temporary file on open and replaces it on a new write', async () => {
    const m = meta(5, 2);
    const temp = join(dir, `${formatSnapshotName(m.index, m.term)}.tmp`);
    await writeFile(temp, 'half a snapshot');
    const store = await SnapshotStore.open(fs, dir);
    expect(store.latest()).toBeNull();
    await writeSnapshot(store, m, data(3, 5000));
    expect(await readdir(dir)).toEqual([formatSnapshotName(m.index, m.term)]);
    await store.verify(m);
  });

  it('removes the temporary file on abort and lists nothing', async () => {
    const store = await SnapshotStore.open(fs, dir);
    const writer = await store.beginWrite(meta(9, 9));
    await writer.write(data(4, 100));
    await writer.abort();
    expect(await readdir(dir)).toEqual([]);
    expect(store.latest()).toBeNull();
    await expect(writer.write(data(4, 1))).rejects.toThrow(/aborted/);
  });

  it('reports a torn snapshot file on open, naming it', async () => {
    const store = await SnapshotStore.open(fs, dir);
    const m = meta(12, 3);
    const info = await writeSnapshot(store, m, data(5, 10_000));
    const bytes = await readFile(info.file);
    await writeFile(info.file, bytes.subarray(0, bytes.length - 7));
    const error = await SnapshotStore.open(fs, dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapshotCorruptionError);
    expect((error as SnapshotCorruptionError).file).toBe(info.file);
    expect((error as Error).message).toContain(info.file);
    expect((error as Error).message).toMatch(/will not be used/);
  });

  it('reports a damaged trailer and an impossible data length', async () => {
    const store = await SnapshotStore.open(fs, dir);
    const info = await writeSnapshot(store, meta(12, 3), data(6, 2000));
    const bytes = await readFile(info.file);
    const damaged = Buffer.from(bytes);
    damaged[bytes.length - 30] = (damaged[bytes.length - 30] as number) ^ 0x10; // in the meta
    await writeFile(info.file, damaged);
    await expect(SnapshotStore.open(fs, dir)).rejects.toThrow(/trailer checksum mismatch/);

    // Data bytes added in front: the trailer is intact but the length is wrong.
    await writeFile(info.file, Buffer.concat([Buffer.from('x'), bytes]));
    await expect(SnapshotStore.open(fs, dir)).rejects.toThrow(/2000 data bytes but the file/);
  });

  it('refuses an unknown format version with a clear message', async () => {
    const store = await SnapshotStore.open(fs, dir);
    const info = await writeSnapshot(store, meta(3, 1), data(7, 100));
    const bytes = Buffer.from(await readFile(info.file));
    const end = bytes.length;
    bytes.writeUInt32BE(3, end - 12); // version
    const trailerStart = info.dataBytes;
    bytes.writeUInt32BE(crc32c(bytes, 0, trailerStart, end - 4), end - 4);
    await writeFile(info.file, bytes);
    const error = await SnapshotStore.open(fs, dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapshotFormatError);
    expect((error as Error).message).toMatch(
      /format 3, which this Tandem does not read .*formats 1 and 2.*newer Tandem wrote it.*not damaged/,
    );
  });

  /** Rewrites a file this store wrote as format 1 wrote it: data CRC32C, version 1. */
  async function asFormat1(file: string, dataBytes: number): Promise<Buffer> {
    const bytes = Buffer.from(await readFile(file));
    const end = bytes.length;
    bytes.writeUInt32BE(crc32c(bytes, 0, 0, dataBytes), end - 16); // data checksum
    bytes.writeUInt32BE(1, end - 12); // version
    bytes.writeUInt32BE(crc32c(bytes, 0, dataBytes, end - 4), end - 4);
    await writeFile(file, bytes);
    return bytes;
  }

  it('reads format 1 files (data CRC32C), checking them and giving their CRC-32', async () => {
    const store = await SnapshotStore.open(fs, dir, { readChunkBytes: 1000 });
    const m = meta(32, 2);
    const content = data(11, 4500);
    const info = await writeSnapshot(store, m, content);
    const bytes = await asFormat1(info.file, info.dataBytes);
    const reopened = await SnapshotStore.open(fs, dir, { readChunkBytes: 1000 });
    expect(reopened.latest()).toEqual(m);
    await reopened.verify(m);
    const reader = await reopened.openRead(m);
    expect(reader.info.formatVersion).toBe(1);
    expect(reader.dataCrc).toBe(crc32(content));
    const chunks: Buffer[] = [];
    for await (const chunk of reader) chunks.push(Buffer.from(chunk));
    expect(Buffer.concat(chunks)).toEqual(content);

    // A flipped data bit in a format 1 file is caught on opening, by its CRC32C.
    bytes[1234] = (bytes[1234] as number) ^ 0x04;
    await writeFile(info.file, bytes);
    await expect(reopened.openRead(m)).rejects.toThrow(/data checksum mismatch/);
  });

  it('detects flipped data bits on verify and at the end of a read', async () => {
    const store = await SnapshotStore.open(fs, dir, { readChunkBytes: 1000 });
    const m = meta(30, 2);
    const info = await writeSnapshot(store, m, data(8, 5000));
    const bytes = Buffer.from(await readFile(info.file));
    bytes[2500] = (bytes[2500] as number) ^ 0x01;
    await writeFile(info.file, bytes);
    const reopened = await SnapshotStore.open(fs, dir, { readChunkBytes: 1000 });
    expect(reopened.latest()).toEqual(m); // the trailer is fine
    const error = await reopened.verify(m).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapshotCorruptionError);
    expect((error as Error).message).toContain(info.file);
    expect((error as Error).message).toContain('data checksum mismatch');
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const chunk of await reopened.openRead(m)) seen.push(chunk.length);
      })(),
    ).rejects.toBeInstanceOf(SnapshotCorruptionError);
    // The last chunk is withheld: the data is never delivered whole unverified.
    expect(seen).toEqual([1000, 1000, 1000, 1000]);
  });

  it('reads from an offset without reading what comes before, and gives size and checksum', async () => {
    const store = await SnapshotStore.open(fs, dir, { readChunkBytes: 1000 });
    const m = meta(31, 2);
    const content = data(9, 4500);
    await writeSnapshot(store, m, content);
    const reader = await store.openRead(m);
    expect(reader.dataBytes).toBe(4500);
    expect(reader.dataCrc).toBe(crc32(content));
    expect(() => reader.readFrom(4501)).toThrow(RangeError);
    const chunks: Buffer[] = [];
    for await (const chunk of reader.readFrom(2200)) chunks.push(Buffer.from(chunk));
    expect(chunks.map((c) => c.length)).toEqual([1000, 1000, 300]);
    expect(Buffer.concat(chunks)).toEqual(content.subarray(2200));
    const end = await store.openRead(m);
    const none: Uint8Array[] = [];
    for await (const chunk of end.readFrom(4500)) none.push(chunk);
    expect(none).toEqual([]);
  });

  it('resumes a kept partial only for the same snapshot, size and checksum', async () => {
    const store = await SnapshotStore.open(fs, dir);
    const m = meta(40, 3);
    const content = data(10, 3000);
    const sender = { dataBytes: content.length, dataCrc: crc32(content) };
    const first = await store.beginReceive(m, sender);
    await first.write(content.subarray(0, 1200));
    expect(await first.keepPartial()).toBe(true);
    expect(store.partialInfo()).toMatchObject({ index: 40, term: 3, bytes: 1200, sender });
    // Other data under the same name: starts over, and the partial is gone.
    const other = await store.beginReceive(m, { dataBytes: 3000, dataCrc: sender.dataCrc ^ 1 });
    expect(other.dataBytes).toBe(0);
    expect(store.partialInfo()).toBeNull();
    await other.write(content.subarray(0, 700));
    expect(await other.keepPartial()).toBe(true);
    const resumed = await store.beginReceive(m, { dataBytes: 3000, dataCrc: sender.dataCrc ^ 1 });
    expect(resumed.dataBytes).toBe(700);
    await resumed.write(content.subarray(700));
    // The whole is checked against what the sender announced: refused, removed.
    await expect(resumed.finish()).rejects.toBeInstanceOf(SnapshotMismatchError);
    expect(store.list()).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual([]);
  });

  it('refuses a second writer of the same snapshot and unknown reads', async () => {
    const store = await SnapshotStore.open(fs, dir);
    const writer = await store.beginWrite(meta(2, 2));
    await expect(store.beginWrite(meta(2, 2))).rejects.toThrow(/already being written/);
    await writer.abort();
    await expect(store.openRead(meta(2, 2))).rejects.toThrow(/no snapshot at index 2 term 2/);
  });
});
