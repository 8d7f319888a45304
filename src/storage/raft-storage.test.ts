import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Entry } from '../raft/types.js';
import { collect } from './chunks.test-util.js';
import { crc32 } from './crc32.js';
import { DelegatingFileSystem, overrideFile } from './delegating-fs.js';
import type { FsFile } from './fs.js';
import { NodeFileSystem } from './node-fs.js';
import { RaftStorage, RaftStorageError, type RaftStorageOptions } from './raft-storage.js';
import { brief, entries, hs, ready, snap } from './raft-storage.test-util.js';
import { SnapshotMismatchError, SnapshotStore } from './snapshot-store.js';
import { Wal } from './wal.js';

const fs = new NodeFileSystem();
let root: string;
let dir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-raft-storage-'));
  dir = join(root, 'data');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Holds WAL fdatasyncs while `gate` is set. */
class GatedFileSystem extends DelegatingFileSystem {
  gate: Promise<void> | null = null;
  protected override wrapFile(file: FsFile): FsFile {
    if (!file.path.includes('/wal/')) return file;
    return overrideFile(file, {
      datasync: async () => {
        if (this.gate !== null) await this.gate;
        await file.datasync();
      },
    });
  }
}

async function reopen(options: RaftStorageOptions = {}) {
  return RaftStorage.open(fs, dir, options);
}

/**
 * A received snapshot stream as the transport hands it over: announces the
 * data's size and checksum, sends from where `startAt` says, and breaks
 * (throws, as a lost connection does) after `breakAfter` bytes.
 */
class IncomingStream implements AsyncIterable<Uint8Array> {
  startedAt: number | null = null;
  sentBytes = 0;
  readonly sender: { dataBytes: number; dataCrc: number } | null;
  constructor(
    private readonly content: Buffer,
    private readonly breakAfter = Number.POSITIVE_INFINITY,
    announce = true,
  ) {
    this.sender = announce ? { dataBytes: content.length, dataCrc: crc32(content) } : null;
  }
  startAt(offset: number): void {
    this.startedAt = offset;
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (let at = this.startedAt ?? 0; at < this.content.length; ) {
      if (this.sentBytes >= this.breakAfter) throw new Error('connection to n1 lost');
      const piece = this.content.subarray(at, at + 1000);
      at += piece.length;
      this.sentBytes += piece.length;
      yield piece;
    }
  }
}

/** Deterministic bytes. */
function bytesOf(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + seed * 13 + (i >>> 8)) % 256;
  return out;
}

async function snapFiles(): Promise<string[]> {
  return (await readdir(join(dir, 'snap'))).sort();
}

describe('RaftStorage resuming a received snapshot', () => {
  it('keeps the bytes of a broken stream and continues after them', async () => {
    const { storage } = await reopen();
    const content = bytesOf(1, 10_000);
    const first = new IncomingStream(content, 4_000);
    await expect(storage.receiveSnapshot(snap(9, 2), first)).rejects.toThrow(/connection/);
    expect(first.startedAt).toBe(0);
    expect(storage.hasSnapshot(snap(9, 2))).toBe(false);
    expect(await snapFiles()).toEqual(['0000000000000009-0000000000000002.snap.partial']);

    const second = new IncomingStream(content);
    await storage.receiveSnapshot(snap(9, 2), second);
    expect(second.startedAt).toBe(4_000);
    expect(second.sentBytes).toBe(6_000);
    expect(second.sentBytes).toBeLessThan(content.length);
    expect(storage.hasSnapshot(snap(9, 2))).toBe(true);
    expect(await collect(await storage.openSnapshot(snap(9, 2)))).toEqual(content);
    expect(await snapFiles()).toEqual(['0000000000000009-0000000000000002.snap']);
    await storage.close();
  });

  it('discards a kept partial of another snapshot, or of other data, and starts at 0', async () => {
    const { storage } = await reopen();
    const old = bytesOf(1, 10_000);
    await expect(
      storage.receiveSnapshot(snap(9, 2), new IncomingStream(old, 4_000)),
    ).rejects.toThrow();
    // Same index and term, other content (size and checksum differ): not resumed.
    const changed = bytesOf(2, 10_000);
    const other = new IncomingStream(changed, 3_000);
    await expect(storage.receiveSnapshot(snap(9, 2), other)).rejects.toThrow();
    expect(other.startedAt).toBe(0);
    // Another snapshot: not resumed, and the partial is gone.
    const next = bytesOf(3, 8_000);
    const newer = new IncomingStream(next);
    await storage.receiveSnapshot(snap(12, 3), newer);
    expect(newer.startedAt).toBe(0);
    expect(newer.sentBytes).toBe(next.length);
    expect(await collect(await storage.openSnapshot(snap(12, 3)))).toEqual(next);
    expect(await snapFiles()).toEqual(['000000000000000c-0000000000000003.snap']);
    // A sender that announces no size is never resumed, and nothing is kept.
    await expect(
      storage.receiveSnapshot(snap(15, 3), new IncomingStream(old, 2_000, false)),
    ).rejects.toThrow();
    expect(await snapFiles()).toEqual(['000000000000000c-0000000000000003.snap']);
    await storage.close();
  });

  it('refuses a resumed snapshot whose kept bytes were damaged, then receives it whole', async () => {
    const { storage } = await reopen();
    const content = bytesOf(4, 10_000);
    await expect(
      storage.receiveSnapshot(snap(9, 2), new IncomingStream(content, 5_000)),
    ).rejects.toThrow();
    const partial = join(dir, 'snap', '0000000000000009-0000000000000002.snap.partial');
    const kept = await readFile(partial);
    kept[1234] = (kept[1234] ?? 0) ^ 0x40;
    await writeFile(partial, kept);

    const resumed = new IncomingStream(content);
    const error = await storage.receiveSnapshot(snap(9, 2), resumed).catch((e: unknown) => e);
    expect(resumed.startedAt).toBe(5_000);
    expect(error).toBeInstanceOf(SnapshotMismatchError);
    expect(storage.hasSnapshot(snap(9, 2))).toBe(false);
    expect(await snapFiles()).toEqual([]);

    const retry = new IncomingStream(content);
    await storage.receiveSnapshot(snap(9, 2), retry);
    expect(retry.startedAt).toBe(0);
    expect(await collect(await storage.openSnapshot(snap(9, 2)))).toEqual(content);
    await storage.close();
  });

  it('drops a kept partial at restart and once a newer snapshot is installed', async () => {
    const first = await reopen();
    const content = bytesOf(5, 10_000);
    await expect(
      first.storage.receiveSnapshot(snap(9, 2), new IncomingStream(content, 4_000)),
    ).rejects.toThrow();
    await first.storage.close();
    const second = await reopen();
    expect(await snapFiles()).toEqual([]);
    const again = new IncomingStream(content, 4_000);
    await expect(second.storage.receiveSnapshot(snap(9, 2), again)).rejects.toThrow();
    expect(again.startedAt).toBe(0);
    await second.storage.receiveSnapshot(snap(10, 2), Buffer.from('newer'));
    expect(await snapFiles()).toEqual(['000000000000000a-0000000000000002.snap']);
    await second.storage.close();
  });
});

describe('RaftStorage', () => {
  it('opens a new data directory with the empty state', async () => {
    const { storage, persisted } = await reopen();
    expect(persisted).toEqual({
      hardState: hs(0, '', 0),
      snapshot: { index: 0, term: 0, membership: { voters: [], learners: [] } },
      entries: [],
    });
    await storage.close();
  });

  it('round-trips Readys, including an overwrite and a skipped commit-only one', async () => {
    const { storage } = await reopen();
    await storage.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 'a', 0) }));
    await storage.persist(ready({ entries: entries(4, 6, 1), hardState: hs(1, 'a', 3) }));
    // A follower overwriting a conflicting suffix.
    await storage.persist(ready({ entries: entries(5, 7, 2), hardState: hs(2, 'b', 4) }));
    await storage.persist(ready({ entries: entries(8, 8, 2) }));
    await storage.close();

    const { storage: again, persisted } = await reopen();
    expect(brief(persisted.entries)).toEqual([
      '1/1',
      '2/1',
      '3/1',
      '4/1',
      '5/2',
      '6/2',
      '7/2',
      '8/2',
    ]);
    expect(Buffer.from((persisted.entries[5] as Entry & { data: Uint8Array }).data)).toEqual(
      Buffer.from('entry 6/2'),
    );
    expect(persisted.hardState).toEqual(hs(2, 'b', 4));
    expect(persisted.snapshot.index).toBe(0);
    await again.close();
  });

  it('does not write a commit-only Ready, but carries it with the next append', async () => {
    const { storage } = await reopen();
    await storage.persist(ready({ entries: entries(1, 4, 1), hardState: hs(1, 'a', 1) }));
    await storage.persist(ready({ hardState: hs(1, 'a', 3), mustSync: false }));
    await storage.close();
    const first = await reopen();
    expect(first.persisted.hardState).toEqual(hs(1, 'a', 1)); // the commit was not synced
    await first.storage.persist(ready({ hardState: hs(1, 'a', 4), mustSync: false }));
    await first.storage.persist(ready({ entries: entries(5, 5, 1) }));
    await first.storage.close();
    const second = await reopen();
    expect(second.persisted.hardState).toEqual(hs(1, 'a', 4));
    expect(brief(second.persisted.entries)).toEqual(['1/1', '2/1', '3/1', '4/1', '5/1']);
    await second.storage.close();
  });

  it('persists overlapping calls in call order', async () => {
    const { storage } = await reopen();
    const order: number[] = [];
    const calls = [
      storage.persist(ready({ entries: entries(1, 2, 1), hardState: hs(1, 'a', 0) })),
      storage.persist(ready({ entries: entries(3, 4, 1) })),
      storage.persist(ready({ entries: entries(3, 5, 2), hardState: hs(2, 'a', 2) })),
    ].map((p, i) => p.then(() => order.push(i)));
    await Promise.all(calls);
    expect(order).toEqual([0, 1, 2]);
    await storage.close();
    const { storage: again, persisted } = await reopen();
    expect(brief(persisted.entries)).toEqual(['1/1', '2/1', '3/2', '4/2', '5/2']);
    expect(persisted.hardState).toEqual(hs(2, 'a', 2));
    await again.close();
  });

  it('writes a snapshot only once the appends issued before it are durable', async () => {
    const gated = new GatedFileSystem(fs);
    const { storage } = await RaftStorage.open(gated, dir);
    await storage.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 'a', 1) }));
    let open = (): void => undefined;
    gated.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    try {
      const appended = storage.persist(ready({ entries: entries(4, 5, 1) }));
      const installed = storage.persist(
        ready({ snapshot: snap(6, 2), hardState: hs(2, 'b', 6) }),
        Buffer.from('s'),
      );
      const saved = storage.saveSnapshot(snap(2, 1), Buffer.from('app'));
      await new Promise((resolve) => setTimeout(resolve, 30));
      const snapFiles = async () =>
        (await readdir(join(dir, 'snap'))).filter((name) => name.endsWith('.snap'));
      expect(await snapFiles()).toEqual([]);
      gated.gate = null;
      open();
      await Promise.all([appended, installed, saved]);
      expect((await snapFiles()).length).toBe(2);
    } finally {
      gated.gate = null;
      open();
      await storage.close();
    }
    const { storage: again, persisted } = await reopen();
    expect(persisted.snapshot).toEqual(snap(6, 2));
    expect(persisted.hardState).toEqual(hs(2, 'b', 6));
    await again.close();
  });

  it('saves an application snapshot, compacts the WAL, and recovers after it', async () => {
    const options: RaftStorageOptions = { wal: { segmentBytesMax: 200 } };
    const { storage } = await reopen(options);
    for (let i = 1; i <= 30; i += 3) {
      await storage.persist(ready({ entries: entries(i, i + 2, 1), hardState: hs(1, 'a', i) }));
    }
    const walDir = join(dir, 'wal');
    const segmentsBefore = (await readdir(walDir)).length;
    const data = Buffer.from('state machine at 20');
    const info = await storage.saveSnapshot(snap(20, 1), data);
    expect(info.meta.index).toBe(20);
    expect((await readdir(walDir)).length).toBeLessThan(segmentsBefore);
    // Older snapshots are retired, keeping two.
    await storage.saveSnapshot(snap(24, 1), Buffer.from('at 24'));
    await storage.saveSnapshot(snap(25, 1), Buffer.from('at 25'));
    expect((await readdir(join(dir, 'snap'))).length).toBe(2);
    await storage.close();

    const { storage: again, persisted } = await reopen(options);
    expect(persisted.snapshot).toEqual(snap(25, 1));
    expect(persisted.entries.map((e) => e.index)).toEqual([26, 27, 28, 29, 30]);
    expect(persisted.hardState.commit).toBeGreaterThanOrEqual(25);
    expect(await collect(await again.openSnapshot(snap(25, 1)))).toEqual(Buffer.from('at 25'));
    await again.close();
  });

  it('saveSnapshot pulls a chunk only once the one before is written (a producer may reuse its buffer)', async () => {
    const { storage } = await reopen();
    await storage.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 'a', 3) }));
    const chunkBytes = 4096;
    const chunks = 64;
    const expected = Buffer.alloc(chunkBytes * chunks);
    for (let i = 0; i < expected.length; i++) expected[i] = (i * 7 + (i >>> 12)) & 0xff;
    const reused = Buffer.alloc(chunkBytes);
    async function* producer(): AsyncGenerator<Uint8Array> {
      for (let c = 0; c < chunks; c++) {
        expected.copy(reused, 0, c * chunkBytes, (c + 1) * chunkBytes);
        yield reused;
      }
    }
    await storage.saveSnapshot(snap(3, 1), producer());
    expect(await collect(await storage.openSnapshot(snap(3, 1)))).toEqual(expected);
    await storage.close();
  });

  it('raises the commit index to the snapshot index', async () => {
    const { storage } = await reopen();
    await storage.persist(ready({ entries: entries(1, 6, 1), hardState: hs(1, 'a', 2) }));
    await storage.saveSnapshot(snap(4, 1), Buffer.from('x'));
    await storage.close();
    const { storage: again, persisted } = await reopen();
    expect(persisted.hardState).toEqual(hs(1, 'a', 4));
    expect(brief(persisted.entries)).toEqual(['5/1', '6/1']);
    await again.close();
  });

  it("installs a leader's snapshot within the WAL, dropping the diverged suffix", async () => {
    const { storage } = await reopen();
    await storage.persist(ready({ entries: entries(1, 8, 1), hardState: hs(1, 'a', 2) }));
    // The leader's log has another entry at 5: the core replaces its log.
    async function* chunks(): AsyncIterable<Uint8Array> {
      yield Buffer.from('leader ');
      yield Buffer.from('state');
    }
    await storage.persist(
      ready({ snapshot: snap(5, 2), hardState: hs(2, 'b', 5), mustSync: true }),
      chunks(),
    );
    await storage.close();

    const first = await reopen();
    expect(first.persisted.snapshot).toEqual(snap(5, 2));
    expect(first.persisted.entries).toEqual([]); // 6..8 were of the diverged log
    expect(first.persisted.hardState).toEqual(hs(2, 'b', 5));
    const data = await collect(await first.storage.openSnapshot(snap(5, 2)));
    expect(data.toString()).toBe('leader state');
    await first.storage.persist(ready({ entries: entries(6, 7, 2), hardState: hs(2, 'b', 6) }));
    await first.storage.close();

    const second = await reopen();
    expect(brief(second.persisted.entries)).toEqual(['6/2', '7/2']);
    expect(second.persisted.hardState).toEqual(hs(2, 'b', 6));
    await second.storage.close();
  });

  it("installs a leader's snapshot with entries after it in the same Ready", async () => {
    const { storage } = await reopen();
    await storage.persist(ready({ entries: entries(1, 8, 1), hardState: hs(1, 'a', 2) }));
    await storage.persist(
      ready({ snapshot: snap(4, 2), entries: entries(5, 6, 2), hardState: hs(2, 'b', 4) }),
      Buffer.from('s'),
    );
    await storage.close();
    const { storage: again, persisted } = await reopen();
    expect(persisted.snapshot).toEqual(snap(4, 2));
    expect(brief(persisted.entries)).toEqual(['5/2', '6/2']);
    await again.close();
  });

  it("installs a leader's snapshot just after the WAL's end", async () => {
    const { storage } = await reopen();
    await storage.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 'a', 1) }));
    await storage.persist(
      ready({ snapshot: snap(4, 2), entries: entries(5, 5, 2), hardState: hs(2, 'b', 4) }),
      Buffer.from('s'),
    );
    await storage.persist(ready({ entries: entries(6, 6, 2), hardState: hs(2, 'b', 5) }));
    await storage.close();
    const { storage: again, persisted } = await reopen();
    expect(persisted.snapshot).toEqual(snap(4, 2));
    expect(brief(persisted.entries)).toEqual(['5/2', '6/2']);
    expect(persisted.hardState).toEqual(hs(2, 'b', 5));
    await again.close();
  });

  it("installs a leader's snapshot beyond the WAL's end by restarting the WAL after it", async () => {
    const { storage } = await reopen({ wal: { segmentBytesMax: 150 } });
    for (let i = 1; i <= 9; i += 3) {
      await storage.persist(ready({ entries: entries(i, i + 2, 1), hardState: hs(1, 'a', 1) }));
    }
    await storage.persist(
      ready({ snapshot: snap(20, 2), entries: entries(21, 22, 2), hardState: hs(2, 'b', 20) }),
      Buffer.from('s'),
    );
    await storage.persist(ready({ entries: entries(23, 23, 2) }));
    // The voided segments are gone: the oldest left is the restart at 21 (0x15).
    const names = (await readdir(join(dir, 'wal'))).filter((n) => n.endsWith('.wal')).sort();
    expect(names[0]).toMatch(/-0000000000000015\.wal$/);
    await storage.close();
    const { storage: again, persisted } = await reopen();
    expect(brief(persisted.entries)).toEqual(['21/2', '22/2', '23/2']);
    expect(persisted.snapshot.index).toBe(20);
    expect(persisted.hardState).toEqual(hs(2, 'b', 20));
    await again.persist(ready({ entries: entries(24, 24, 2) }));
    await again.close();
  });

  it('replaces a diverged log with the snapshot, the restart surviving reopen', async () => {
    const { storage } = await reopen();
    await storage.persist(ready({ entries: entries(1, 6, 1), hardState: hs(1, 'a', 2) }));
    // The leader's snapshot at 4 has term 2: entries 4..6 of term 1 diverged.
    await storage.persist(
      ready({ snapshot: snap(4, 2), hardState: hs(2, 'b', 4) }),
      Buffer.from('s'),
    );
    await storage.close();
    const { storage: again, persisted } = await reopen();
    expect(brief(persisted.entries)).toEqual([]);
    expect(persisted.snapshot.index).toBe(4);
    await again.persist(ready({ entries: entries(5, 5, 2) }));
    await again.close();
    const third = await reopen();
    expect(brief(third.persisted.entries)).toEqual(['5/2']);
    await third.storage.close();
  });

  it('refuses a snapshot Ready without data, and entries not right after the snapshot', async () => {
    const first = await reopen();
    await first.storage.persist(ready({ entries: entries(1, 5, 1), hardState: hs(1, 'a', 1) }));
    await expect(
      first.storage.persist(ready({ snapshot: snap(3, 2), hardState: hs(2, 'b', 3) })),
    ).rejects.toThrow(/no data was given and none was received/);
    await first.storage.close();
    const second = await reopen();
    await expect(
      second.storage.persist(
        ready({ snapshot: snap(3, 2), entries: entries(5, 5, 2) }),
        Buffer.from('s'),
      ),
    ).rejects.toThrow(/must start at 4/);
    await second.storage.close();
  });

  it('installs a snapshot received before its Ready, without data in persist', async () => {
    const { storage } = await reopen();
    await storage.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 'a', 1) }));
    await storage.receiveSnapshot(snap(9, 2), Buffer.from('leader state at 9'));
    expect(storage.hasSnapshot(snap(9, 2))).toBe(true);
    await storage.persist(ready({ snapshot: snap(9, 2), entries: entries(10, 10, 2) }));
    await storage.close();
    const { storage: again, persisted } = await reopen();
    expect(persisted.snapshot.index).toBe(9);
    expect(brief(persisted.entries)).toEqual(['10/2']);
    await again.close();
  });

  it('reports a commit index beyond the stored log', async () => {
    const first = await reopen();
    await first.storage.close();
    const { wal } = await Wal.open(fs, join(dir, 'wal'));
    await wal.append(entries(1, 2, 1), hs(1, 'a', 5));
    await wal.close();
    const error = await reopen().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftStorageError);
    expect((error as Error).message).toMatch(/commit index 5 is beyond the last stored entry 2/);
    // The lock was released: the directory can be opened by other means.
    const { wal: probe } = await Wal.open(fs, join(dir, 'wal'));
    await probe.close();
  });

  it('finishes an install cut short by a crash: snapshot durable, WAL not yet restarted', async () => {
    const first = await reopen();
    await first.storage.persist(ready({ entries: entries(1, 3, 1) }));
    await first.storage.close();
    const store = await SnapshotStore.open(fs, join(dir, 'snap'));
    await (await store.beginWrite(snap(10, 1))).finish();
    const { storage, persisted } = await reopen();
    expect(persisted.snapshot.index).toBe(10);
    expect(brief(persisted.entries)).toEqual([]);
    await storage.persist(ready({ entries: entries(11, 11, 1) }));
    await storage.close();
    const again = await reopen();
    expect(brief(again.persisted.entries)).toEqual(['11/1']);
    await again.storage.close();
  });

  it("adopts the log's term with no vote when a crash tore the hard state off an append", async () => {
    const first = await reopen();
    await first.storage.persist(ready({ entries: entries(1, 2, 1), hardState: hs(1, 'a', 1) }));
    await first.storage.close();
    // What a torn append leaves: the entries of term 3 durable, not the
    // hard state written after them in the same append.
    const { wal } = await Wal.open(fs, join(dir, 'wal'));
    await wal.append(entries(3, 4, 3), null);
    await wal.close();
    const { storage, persisted } = await reopen();
    expect(persisted.hardState).toEqual(hs(3, '', 1));
    expect(brief(persisted.entries)).toEqual(['1/1', '2/1', '3/3', '4/3']);
    await storage.close();
  });

  it("adopts a received snapshot's term when the Ready installing it was lost", async () => {
    const first = await reopen();
    await first.storage.persist(ready({ entries: entries(1, 2, 1), hardState: hs(1, 'a', 1) }));
    await first.storage.receiveSnapshot(snap(10, 4), Buffer.from('s'));
    await first.storage.close();
    const { storage, persisted } = await reopen();
    expect(persisted.hardState).toEqual(hs(4, '', 10));
    expect(persisted.snapshot.index).toBe(10);
    await storage.close();
  });

  it('reports a WAL restarted after a snapshot that is missing', async () => {
    const first = await reopen();
    await first.storage.persist(
      ready({ snapshot: snap(10, 1), entries: entries(11, 11, 1) }),
      Buffer.from('s'),
    );
    await first.storage.close();
    await rm(join(dir, 'snap'), { recursive: true });
    const error = await reopen().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftStorageError);
    expect((error as Error).message).toMatch(/restarted after a snapshot at index 10/);
  });

  it('reports a gap between the snapshot and the WAL', async () => {
    const first = await reopen({ wal: { segmentBytesMax: 150 } });
    for (let i = 1; i <= 20; i += 2) {
      await first.storage.persist(ready({ entries: entries(i, i + 1, 1) }));
    }
    await first.storage.saveSnapshot(snap(14, 1), Buffer.from('x'));
    await first.storage.close();
    // The snapshot is lost, an older one remains.
    await rm(join(dir, 'snap'), { recursive: true });
    const store = await SnapshotStore.open(fs, join(dir, 'snap'));
    const writer = await store.beginWrite(snap(1, 1));
    await writer.finish();
    const error = await reopen().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftStorageError);
    expect((error as Error).message).toMatch(/snapshot ends at index 1 but the write-ahead log/);
  });
});
