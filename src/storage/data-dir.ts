/**
 * The data directory of a node (issue 3): locked so two processes cannot open
 * it, and carrying a `FORMAT` file so future formats are recognized.
 *
 *   <path>/LOCK     the lock (see `FileSystem.lock`)
 *   <path>/FORMAT   "tandem-data 1\n"
 *   <path>/wal/     write-ahead log segments
 *   <path>/snap/    snapshots
 *
 * `FORMAT` is written through a temporary file, fdatasynced, renamed and the
 * directory fsynced, before the subdirectories are made: so a directory with
 * `wal/` or `snap/` always has a durable `FORMAT`, and a directory without
 * `FORMAT` holding anything else is not one of ours.
 */

import { posix } from 'node:path';
import type { DirLock, FileSystem } from './fs.js';

export const dataFormatVersion = 1;
export const formatFileName = 'FORMAT';
const formatContent = `tandem-data ${dataFormatVersion}\n`;
const formatPattern = /^tandem-data (\d+)\n$/;
/** Names that may be in a directory being initialized (left by a crashed initialization). */
const initNames = new Set(['LOCK', `${formatFileName}.tmp`]);

/** The data directory cannot be used; the message says why and what to do. */
export class DataDirError extends Error {
  override readonly name = 'DataDirError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

export class DataDir {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly lock: DirLock,
    /** True if this call initialized the directory. */
    readonly created: boolean,
  ) {}

  /** Where the WAL segments live. */
  get walDir(): string {
    return posix.join(this.path, 'wal');
  }

  /** Where the snapshots live. */
  get snapDir(): string {
    return posix.join(this.path, 'snap');
  }

  /**
   * Opens the data directory at `path`, creating and initializing it if
   * missing or empty. Takes its exclusive lock (an `FsError` with code
   * `ELOCKED` if another process holds it) and checks its format (a
   * `DataDirError` if it is another format or not a Tandem data directory).
   */
  static async open(fs: FileSystem, path: string): Promise<DataDir> {
    await fs.mkdir(path);
    const lock = await fs.lock(path);
    try {
      const created = await checkOrInitFormat(fs, path);
      await fs.mkdir(posix.join(path, 'wal'));
      await fs.mkdir(posix.join(path, 'snap'));
      await fs.syncDir(path);
      // The directory's own entry, in case it was just made.
      if (created) await fs.syncDir(posix.dirname(path));
      return new DataDir(path, lock, created);
    } catch (error) {
      await lock.release().catch(() => undefined);
      throw error;
    }
  }

  /** Releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lock.release();
  }
}

/** Validates FORMAT, or writes it if the directory is new; true if written. */
async function checkOrInitFormat(fs: FileSystem, path: string): Promise<boolean> {
  const formatPath = posix.join(path, formatFileName);
  if (await fs.exists(formatPath)) {
    const file = await fs.open(formatPath, 'read');
    let text: string;
    try {
      text = (await file.read(0, 256)).toString('latin1');
    } finally {
      await file.close();
    }
    if (text === formatContent) return false;
    const match = formatPattern.exec(text);
    if (match !== null) {
      const version = match[1] ?? '?';
      throw new DataDirError(
        path,
        `data directory ${path} was written by a newer or other Tandem format ${version} ` +
          `(this Tandem reads format ${dataFormatVersion}): run the Tandem version that wrote it, ` +
          'or give this node a different data directory; do not edit the FORMAT file',
      );
    }
    throw new DataDirError(
      path,
      `data directory ${path} has a damaged or foreign FORMAT file ` +
        `(expected ${JSON.stringify(formatContent)}, found ${JSON.stringify(text.slice(0, 40))}): ` +
        "check that this is the right directory; if it is this node's, move it aside and let the " +
        'node rejoin the cluster as a new member',
    );
  }
  const foreign = (await fs.readdir(path)).filter((name) => !initNames.has(name));
  if (foreign.length > 0) {
    throw new DataDirError(
      path,
      `directory ${path} is not empty (${foreign.slice(0, 5).join(', ')}) but has no ` +
        `${formatFileName} file, so it is not a Tandem data directory: refusing to use it; ` +
        'give this node an empty or new directory',
    );
  }
  const tempPath = `${formatPath}.tmp`;
  if (await fs.exists(tempPath)) await fs.unlink(tempPath);
  const file = await fs.open(tempPath, 'create');
  try {
    await file.write(0, Buffer.from(formatContent, 'latin1'));
    await file.datasync();
  } finally {
    await file.close();
  }
  await fs.rename(tempPath, formatPath);
  await fs.syncDir(path);
  return true;
}
