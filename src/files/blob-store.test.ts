import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BlobStore, CorruptBlobError, MissingBlobError, sha256Hex } from './blob-store.js';

const dirs: string[] = [];
function store(): BlobStore {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-blobs-'));
  dirs.push(dir);
  return BlobStore.openSync(join(dir, 'blobs'));
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('BlobStore', () => {
  it('stores by sha256 and reads back verified bytes', async () => {
    const blobs = store();
    const bytes = Buffer.from('hello chunk');
    const hash = sha256Hex(bytes);
    expect(blobs.has(hash)).toBe(false);
    blobs.putSync(hash, bytes);
    expect(blobs.has(hash)).toBe(true);
    expect(readFileSync(blobs.pathOf(hash))).toEqual(bytes);
    expect(await blobs.read(hash)).toEqual(bytes);
    // Idempotent: a second put (WAL replay) keeps one blob.
    blobs.putSync(hash, bytes);
    expect(blobs.countSync()).toBe(1);
  });

  it('makes applied blobs durable on syncPending, and rewrites one torn by a crash', async () => {
    const blobs = store();
    const bytes = Buffer.alloc(10_000, 3);
    const hash = sha256Hex(bytes);
    blobs.putSync(hash, bytes);
    expect(blobs.unsyncedCount).toBe(1);
    await blobs.syncPending();
    expect(blobs.unsyncedCount).toBe(0);
    // A crash before the sync can leave a short file under the name; the WAL replay rewrites it.
    writeFileSync(blobs.pathOf(hash), bytes.subarray(0, 10));
    blobs.putSync(hash, bytes);
    expect(await blobs.read(hash)).toEqual(bytes);
  });

  it('refuses bytes that do not match the hash', () => {
    const blobs = store();
    expect(() => blobs.putSync(sha256Hex(Buffer.from('a')), Buffer.from('b'))).toThrow(
      CorruptBlobError,
    );
    expect(blobs.countSync()).toBe(0);
  });

  it('never returns a corrupt blob, and says which is missing', async () => {
    const blobs = store();
    const bytes = Buffer.alloc(100_000, 7);
    const hash = sha256Hex(bytes);
    await blobs.put(hash, bytes);
    const flipped = Buffer.from(bytes);
    flipped[5000] = 8;
    writeFileSync(blobs.pathOf(hash), flipped);
    await expect(blobs.read(hash)).rejects.toThrow(CorruptBlobError);
    await blobs.remove(hash);
    await expect(blobs.read(hash)).rejects.toThrow(MissingBlobError);
  });

  it('refreshes the mtime of a blob written again, and lists blobs', async () => {
    const blobs = store();
    const bytes = Buffer.from('x');
    const hash = sha256Hex(bytes);
    blobs.putSync(hash, bytes);
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(blobs.pathOf(hash), old, old);
    blobs.putSync(hash, bytes);
    const listed = [];
    for await (const b of blobs.list()) listed.push(b);
    expect(listed.map((b) => b.hash)).toEqual([hash]);
    expect(listed[0]?.mtimeMs).toBeGreaterThan(Date.now() - 60_000);
  });
});
