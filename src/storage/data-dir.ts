/**
 * The data directory of a node (issue 3): locked so two processes cannot open
 * it, and carrying a `FORMAT` file so future formats are recognized.
 *
 *   <path>/LOCK         the lock (see `FileSystem.lock`)
 *   <path>/FORMAT       "tandem-data 1\n"
 *   <path>/INCARNATION  32 hex digits: this directory's random identity
 *   <path>/wal/         write-ahead log segments
 *   <path>/snap/        snapshots
 *
 * `FORMAT` is written through a temporary file, fdatasynced, renamed and the
 * directory fsynced, before the subdirectories are made: so a directory with
 * `wal/` or `snap/` always has a durable `FORMAT`, and a directory without
 * `FORMAT` holding anything else is not one of ours.
 *
 * `INCARNATION` tells this directory apart from any other the same node id
 * ever had: a node that lost its disk comes back with a new one, and its
 * peers can refuse it (issue 5). Written like `FORMAT`, before the
 * subdirectories; a directory from before it existed gets one at open.
 */

import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { DirLock, FileSystem } from './fs.js';

export const dataFormatVersion = 1;
export const formatFileName = 'FORMAT';
const formatContent = `tandem-data ${dataFormatVersion}\n`;
const formatPattern = /^tandem-data (\d+)\n$/;
/** Names that may be in a directory being initialized (left by a crashed initialization). */
const initNames = new Set(['LOCK', `${formatFileName}.tmp`]);
export const incarnationFileName = 'INCARNATION';
const incarnationPattern = /^([0-9a-f]{32})\n$/;

export interface DataDirOptions {
  /** Makes a new incarnation id (32 hex digits); random by default. */
  readonly newIncarnation?: () => string;
}

function randomIncarnation(): string {
  return randomBytes(16).toString('hex');
}

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
    /** This directory's random identity (see the file comment). */
    readonly incarnation: string,
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
  static async open(fs: FileSystem, path: string, options: DataDirOptions = {}): Promise<DataDir> {
    await fs.mkdir(path);
    const lock = await fs.lock(path);
    try {
      const created = await checkOrInitFormat(fs, path);
      const incarnation = await readOrInitIncarnation(
        fs,
        path,
        options.newIncarnation ?? randomIncarnation,
      );
      await fs.mkdir(posix.join(path, 'wal'));
      await fs.mkdir(posix.join(path, 'snap'));
      await fs.syncDir(path);
      // The directory's own entry, in case it was just made.
      if (created) await fs.syncDir(posix.dirname(path));
      return new DataDir(path, lock, created, incarnation);
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

/** Reads INCARNATION, or writes a new one if there is none. */
async function readOrInitIncarnation(
  fs: FileSystem,
  path: string,
  newIncarnation: () => string,
): Promise<string> {
  const filePath = posix.join(path, incarnationFileName);
  if (await fs.exists(filePath)) {
    const text = (await readSmall(fs, filePath)).toString('latin1');
    const match = incarnationPattern.exec(text);
    if (match === null) {
      throw new DataDirError(
        path,
        `data directory ${path} has a damaged ${incarnationFileName} file ` +
          `(expected 32 hex digits, found ${JSON.stringify(text.slice(0, 40))}): the node's ` +
          'identity is unknown; move the directory aside and let the node rejoin as a new member',
      );
    }
    return match[1] as string;
  }
  const incarnation = newIncarnation();
  if (incarnationPattern.exec(`${incarnation}\n`) === null) {
    throw new RangeError(`an incarnation is 32 hex digits, got '${incarnation}'`);
  }
  await writeDurably(fs, path, incarnationFileName, `${incarnation}\n`);
  return incarnation;
}

async function readSmall(fs: FileSystem, filePath: string): Promise<Buffer> {
  const file = await fs.open(filePath, 'read');
  try {
    return await file.read(0, 256);
  } finally {
    await file.close();
  }
}

/** Writes `name` through a temporary file, fdatasynced, renamed, directory synced. */
async function writeDurably(
  fs: FileSystem,
  dir: string,
  name: string,
  content: string,
): Promise<void> {
  const finalPath = posix.join(dir, name);
  const tempPath = `${finalPath}.tmp`;
  if (await fs.exists(tempPath)) await fs.unlink(tempPath);
  const file = await fs.open(tempPath, 'create');
  try {
    await file.write(0, Buffer.from(content, 'latin1'));
    await file.datasync();
  } finally {
    await file.close();
  }
  await fs.rename(tempPath, finalPath);
  await fs.syncDir(dir);
}

/** Validates FORMAT, or writes it if the directory is new; true if written. */
async function checkOrInitFormat(fs: FileSystem, path: string): Promise<boolean> {
  const formatPath = posix.join(path, formatFileName);
  if (await fs.exists(formatPath)) {
    const text = (await readSmall(fs, formatPath)).toString('latin1');
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
  await writeDurably(fs, path, formatFileName, formatContent);
  return true;
}
