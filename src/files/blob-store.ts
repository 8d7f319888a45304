/**
 * The on-disk blob store of file chunks (issue 6): content-addressed by
 * sha256, one file per chunk under a 256-way fan-out (`ab/abcd…`).
 *
 * - Writes are atomic and durable: temp file, fsync, rename, fsync of the
 *   directory. A blob either exists whole under its name or not at all, so
 *   applying a chunk entry again (WAL replay) is idempotent.
 * - Reads verify the sha256: a blob that does not match its name is never
 *   returned (`CorruptBlobError`), so a caller can fetch a good copy.
 * - Chunk entries are applied synchronously (the state machine's apply is
 *   synchronous) and without fsync: until a snapshot covers them the WAL
 *   holds their entries, and replaying it writes them again. `syncPending`
 *   makes them durable before a snapshot lets the WAL drop those entries.
 *   (An fsync per chunk at apply, times three nodes sharing a disk, made
 *   uploads wait on disk flushes, not bandwidth.) A blob torn by a crash
 *   before its sync is rewritten by the replay if its size is wrong, and is
 *   caught by the verification on read otherwise.
 */

import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** A chunk is at most this big: bounds every read into memory. */
export const blobBytesMax = 4 * 1024 * 1024;
const hashPattern = /^[0-9a-f]{64}$/;

export class CorruptBlobError extends Error {
  override readonly name = 'CorruptBlobError';
}

export class MissingBlobError extends Error {
  override readonly name = 'MissingBlobError';
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function isBlobHash(hash: string): boolean {
  return hashPattern.test(hash);
}

export interface BlobInfo {
  readonly hash: string;
  readonly mtimeMs: number;
}

export class BlobStore {
  /** Blobs written by putSync and not yet fsynced; Invariant: each exists under its name. */
  private readonly unsynced = new Set<string>();

  private constructor(readonly dir: string) {}

  /** Creates the store's folders if needed (fsynced, so a crash keeps them). */
  static openSync(dir: string): BlobStore {
    mkdirSync(dir, { recursive: true });
    let created = false;
    for (let i = 0; i < 256; i++) {
      const sub = join(dir, i.toString(16).padStart(2, '0'));
      try {
        mkdirSync(sub);
        created = true;
      } catch (failure) {
        if ((failure as NodeJS.ErrnoException).code !== 'EEXIST') throw failure;
      }
    }
    if (created) fsyncDirSync(dir);
    return new BlobStore(dir);
  }

  pathOf(hash: string): string {
    if (!isBlobHash(hash)) throw new RangeError(`not a blob hash: ${JSON.stringify(hash)}`);
    return join(this.dir, hash.slice(0, 2), hash);
  }

  has(hash: string): boolean {
    try {
      statSync(this.pathOf(hash));
      return true;
    } catch (failure) {
      if ((failure as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw failure;
    }
  }

  /**
   * Stores `bytes` under `hash` (their sha256, checked), atomically but not
   * yet durably (see syncPending). A blob already there with the right size
   * is kept and its mtime refreshed, so the garbage collector does not take
   * it from an upload that is using it again.
   */
  putSync(hash: string, bytes: Uint8Array): void {
    checkBytes(hash, bytes);
    const path = this.pathOf(hash);
    const size = sizeOrNull(path);
    if (size === bytes.length) {
      const now = new Date();
      utimesSync(path, now, now);
      return;
    }
    const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    const fd = openSync(temp, 'wx');
    try {
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
    this.unsynced.add(hash);
  }

  /** How many blobs putSync wrote that are not durable yet. */
  get unsyncedCount(): number {
    return this.unsynced.size;
  }

  /**
   * Makes every blob putSync wrote so far durable: each file, then each
   * folder holding one, fsynced. Called before a snapshot is written.
   */
  async syncPending(): Promise<void> {
    const hashes = [...this.unsynced];
    const dirs = new Set<string>();
    // All at once (bounded by the unsynced count, about a snapshot's worth of
    // chunks): the file system batches concurrent fsyncs into few flushes.
    await Promise.all(
      hashes.map(async (hash) => {
        if (await syncFile(this.pathOf(hash))) dirs.add(join(this.dir, hash.slice(0, 2)));
      }),
    );
    await Promise.all([...dirs].map((dir) => syncFile(dir)));
    for (const hash of hashes) this.unsynced.delete(hash);
  }

  /** The async twin of putSync, for chunks fetched from a peer. */
  async put(hash: string, bytes: Uint8Array): Promise<void> {
    checkBytes(hash, bytes);
    const path = this.pathOf(hash);
    const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    const file = await open(temp, 'wx');
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
    const dir = await open(join(this.dir, hash.slice(0, 2)), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /**
   * The blob's bytes, verified against its name. Throws MissingBlobError
   * when absent and CorruptBlobError when its bytes do not match.
   */
  async read(hash: string): Promise<Buffer> {
    const path = this.pathOf(hash);
    let file: Awaited<ReturnType<typeof open>>;
    try {
      file = await open(path, 'r');
    } catch (failure) {
      if ((failure as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new MissingBlobError(`chunk ${hash} is not stored on this node`);
      }
      throw failure;
    }
    try {
      const size = (await file.stat()).size;
      if (size > blobBytesMax) throw new CorruptBlobError(`chunk ${hash}: ${size} bytes, too big`);
      const bytes = Buffer.allocUnsafe(size);
      let done = 0;
      while (done < size) {
        const { bytesRead } = await file.read(bytes, done, size - done, done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      const got = sha256Hex(bytes.subarray(0, done));
      if (got !== hash) {
        throw new CorruptBlobError(`chunk ${hash} is corrupt on this node (its sha256 is ${got})`);
      }
      return bytes;
    } finally {
      await file.close();
    }
  }

  /** Removes a blob (a corrupt one, or garbage); absent is fine. */
  async remove(hash: string): Promise<void> {
    try {
      await unlink(this.pathOf(hash));
    } catch (failure) {
      if ((failure as NodeJS.ErrnoException).code !== 'ENOENT') throw failure;
    }
  }

  /**
   * Every blob with its mtime, and temp files left by a crash (as hash ''),
   * one fan-out folder at a time.
   */
  async *list(): AsyncIterable<BlobInfo & { readonly path: string }> {
    for (let i = 0; i < 256; i++) {
      const sub = join(this.dir, i.toString(16).padStart(2, '0'));
      let names: string[];
      try {
        names = await readdir(sub);
      } catch (failure) {
        if ((failure as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw failure;
      }
      for (const name of names) {
        const path = join(sub, name);
        try {
          const s = await stat(path);
          yield { hash: isBlobHash(name) ? name : '', mtimeMs: s.mtimeMs, path };
        } catch (failure) {
          if ((failure as NodeJS.ErrnoException).code !== 'ENOENT') throw failure;
        }
      }
    }
  }

  /** Number of blobs (for tests and metrics; walks the folders). */
  countSync(): number {
    let n = 0;
    for (let i = 0; i < 256; i++) {
      const sub = join(this.dir, i.toString(16).padStart(2, '0'));
      n += readdirSync(sub).filter(isBlobHash).length;
    }
    return n;
  }

  /** Deletes a file found by list() (garbage or a stale temp file). */
  async unlinkPath(path: string): Promise<void> {
    try {
      await unlink(path);
    } catch (failure) {
      if ((failure as NodeJS.ErrnoException).code !== 'ENOENT') throw failure;
    }
  }
}

/** fsyncs `path`; false if it is gone (collected meanwhile: nothing to make durable). */
async function syncFile(path: string): Promise<boolean> {
  let file: Awaited<ReturnType<typeof open>>;
  try {
    file = await open(path, 'r');
  } catch (failure) {
    if ((failure as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw failure;
  }
  try {
    await file.sync();
    return true;
  } finally {
    await file.close();
  }
}

function sizeOrNull(path: string): number | null {
  try {
    return statSync(path).size;
  } catch (failure) {
    if ((failure as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw failure;
  }
}

function checkBytes(hash: string, bytes: Uint8Array): void {
  if (bytes.length > blobBytesMax) {
    throw new RangeError(`a chunk is limited to ${blobBytesMax} bytes, got ${bytes.length}`);
  }
  const got = sha256Hex(bytes);
  if (got !== hash) throw new CorruptBlobError(`chunk bytes hash to ${got}, not ${hash}`);
}

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
