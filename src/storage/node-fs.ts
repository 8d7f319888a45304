/**
 * The real `FileSystem`, over `node:fs/promises`.
 */

import { constants } from 'node:fs';
import {
  access,
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rename,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { assert } from '../raft/assert.js';
import {
  type DirLock,
  type FileSystem,
  FsError,
  type FsErrorCode,
  type FsFile,
  type FsOperation,
  type OpenMode,
  type OpenOptions,
} from './fs.js';

const knownCodes: ReadonlySet<string> = new Set<FsErrorCode>([
  'ENOENT',
  'EEXIST',
  'EIO',
  'ENOSPC',
  'EDQUOT',
  'EROFS',
  'EACCES',
  'EPERM',
  'ENOTDIR',
  'EISDIR',
  'ENOTEMPTY',
  'EMFILE',
]);

/** Converts whatever Node threw into an `FsError`, keeping the original code in the message. */
export function toFsError(error: unknown, operation: FsOperation, path: string): FsError {
  if (error instanceof FsError) return error;
  const raw = (error as { code?: unknown } | null)?.code;
  const rawCode = typeof raw === 'string' ? raw : 'unknown';
  const code = knownCodes.has(rawCode) ? (rawCode as FsErrorCode) : 'EUNKNOWN';
  const detail = error instanceof Error ? error.message : String(error);
  return new FsError(code, operation, path, `${operation} of ${path} failed: ${detail}`);
}

async function attempt<T>(
  operation: FsOperation,
  path: string,
  body: () => Promise<T>,
): Promise<T> {
  try {
    return await body();
  } catch (error) {
    throw toFsError(error, operation, path);
  }
}

// O_APPEND is avoided on purpose: on Linux it makes pwrite ignore the offset.
const openFlags: Readonly<Record<OpenMode, number>> = {
  read: constants.O_RDONLY,
  write: constants.O_RDWR,
  create: constants.O_RDWR | constants.O_CREAT | constants.O_EXCL,
  append: constants.O_RDWR | constants.O_CREAT,
};

class NodeFile implements FsFile {
  /**
   * Where the next `append` goes: the size plus appends issued but not yet
   * finished. Invariant: endBytes >= the size on disk while no call fails.
   */
  private endBytes: number;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    sizeBytes: number,
    /** Opened with O_DSYNC: every write is durable on return. */
    private readonly syncWrites: boolean,
  ) {
    this.endBytes = sizeBytes;
  }

  read(positionBytes: number, lengthBytes: number): Promise<Buffer> {
    assert(Number.isSafeInteger(positionBytes) && positionBytes >= 0, 'read position');
    assert(Number.isSafeInteger(lengthBytes) && lengthBytes >= 0, 'read length');
    return attempt('read', this.path, async () => {
      const buffer = Buffer.allocUnsafe(lengthBytes);
      let doneBytes = 0;
      while (doneBytes < lengthBytes) {
        const { bytesRead } = await this.handle.read(
          buffer,
          doneBytes,
          lengthBytes - doneBytes,
          positionBytes + doneBytes,
        );
        if (bytesRead === 0) break; // end of file
        doneBytes += bytesRead;
      }
      return doneBytes === lengthBytes ? buffer : buffer.subarray(0, doneBytes);
    });
  }

  write(positionBytes: number, data: Uint8Array): Promise<void> {
    assert(Number.isSafeInteger(positionBytes) && positionBytes >= 0, 'write position');
    this.endBytes = Math.max(this.endBytes, positionBytes + data.byteLength);
    return attempt('write', this.path, async () => {
      let doneBytes = 0;
      // pwrite may write less than asked (a signal, a nearly full disk).
      while (doneBytes < data.byteLength) {
        const { bytesWritten } = await this.handle.write(
          data,
          doneBytes,
          data.byteLength - doneBytes,
          positionBytes + doneBytes,
        );
        assert(bytesWritten > 0, 'pwrite made no progress without an error');
        doneBytes += bytesWritten;
      }
    });
  }

  async writeDurable(positionBytes: number, data: Uint8Array): Promise<void> {
    await this.write(positionBytes, data);
    if (!this.syncWrites) await this.datasync();
  }

  append(data: Uint8Array): Promise<void> {
    // Taken synchronously so concurrent appends get disjoint, ordered ranges.
    return this.write(this.endBytes, data);
  }

  size(): Promise<number> {
    return attempt('size', this.path, async () => (await this.handle.stat()).size);
  }

  truncate(sizeBytes: number): Promise<void> {
    assert(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0, 'truncate size');
    assert(sizeBytes <= this.endBytes, `truncate to ${sizeBytes} past the end ${this.endBytes}`);
    this.endBytes = sizeBytes;
    return attempt('truncate', this.path, () => this.handle.truncate(sizeBytes));
  }

  datasync(): Promise<void> {
    return attempt('datasync', this.path, () => this.handle.datasync());
  }

  sync(): Promise<void> {
    return attempt('sync', this.path, () => this.handle.sync());
  }

  close(): Promise<void> {
    return attempt('close', this.path, () => this.handle.close());
  }
}

/** The real file system. */
export class NodeFileSystem implements FileSystem {
  open(path: string, mode: OpenMode, options: OpenOptions = {}): Promise<FsFile> {
    const syncWrites = options.syncWrites === true && mode !== 'read';
    const flags = openFlags[mode] | (syncWrites ? constants.O_DSYNC : 0);
    return attempt('open', path, async () => {
      const handle = await open(path, flags, 0o644);
      try {
        const { size } = await handle.stat();
        return new NodeFile(path, handle, size, syncWrites);
      } catch (error) {
        await handle.close();
        throw error;
      }
    });
  }

  rename(from: string, to: string): Promise<void> {
    return attempt('rename', `${from} -> ${to}`, () => rename(from, to));
  }

  unlink(path: string): Promise<void> {
    return attempt('unlink', path, () => unlink(path));
  }

  readdir(path: string): Promise<string[]> {
    return attempt('readdir', path, async () => (await readdir(path)).sort());
  }

  mkdir(path: string): Promise<void> {
    return attempt('mkdir', path, async () => {
      await mkdir(path, { recursive: true });
    });
  }

  exists(path: string): Promise<boolean> {
    return attempt('exists', path, async () => {
      try {
        await access(path);
        return true;
      } catch (error) {
        if (toFsError(error, 'exists', path).code === 'ENOENT') return false;
        throw error;
      }
    });
  }

  syncDir(path: string): Promise<void> {
    // A directory's entries are made durable by fsync of the directory itself,
    // which Linux allows on a read-only descriptor.
    return attempt('syncDir', path, async () => {
      const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
  }

  lock(dir: string): Promise<DirLock> {
    return lockDataDir(dir);
  }
}

// --- The data directory lock -------------------------------------------------
//
// A lock file alone goes stale when its holder is killed (kill -9, power loss),
// and breaking a stale lock file safely needs a second lock. So on Linux the
// mutual exclusion is an abstract Unix socket named after the directory's
// device and inode: the kernel releases it when the process dies, whatever the
// death, and two binds of one name cannot both succeed. It is scoped to a
// network namespace, though, and two containers may share a volume; the LOCK
// file covers that case and names the holder in error messages. Whoever holds
// the socket may overwrite a LOCK file left by a dead process of its own
// namespace (or of an earlier boot), and must refuse one from elsewhere.

export const lockFileName = 'LOCK';

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly boot: string;
  readonly netns: string;
}

async function lockDataDir(dir: string): Promise<DirLock> {
  const lockPath = join(dir, lockFileName);
  const { dev, ino } = await attempt('lock', dir, () => stat(dir));
  const server = process.platform === 'linux' ? await bindLockSocket(dir, dev, ino) : null;
  try {
    const self = await currentOwner();
    await claimLockFile(dir, lockPath, self, server !== null);
  } catch (error) {
    server?.close();
    throw error;
  }
  let released = false;
  return {
    dir,
    release: async () => {
      if (released) return;
      released = true;
      // The file goes first: once the socket is free, the next holder's file
      // must not be the one we delete.
      await attempt('lock', lockPath, () => unlink(lockPath)).catch((error: FsError) => {
        if (error.code !== 'ENOENT') throw error;
      });
      server?.close();
    },
  };
}

async function bindLockSocket(dir: string, dev: number, ino: number): Promise<Server> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(`\0tandem-data-dir-lock:${dev}:${ino}`, () => resolve());
    });
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EADDRINUSE') throw toFsError(error, 'lock', dir);
    const owner = await readLockFile(join(dir, lockFileName));
    const who = owner === null ? 'a process whose pid is not recorded' : `pid ${owner.pid}`;
    throw lockedError(
      dir,
      `data directory ${dir} is locked by another running Tandem process (${who}): ` +
        'stop that process first, or give this node a different data directory',
    );
  }
  server.unref(); // the lock must not keep the process alive
  return server;
}

async function claimLockFile(
  dir: string,
  lockPath: string,
  self: LockOwner,
  holdsSocket: boolean,
): Promise<void> {
  const text = formatOwner(self);
  try {
    await writeFile(lockPath, text, { flag: 'wx' });
    return;
  } catch (error) {
    if (toFsError(error, 'lock', lockPath).code !== 'EEXIST')
      throw toFsError(error, 'lock', lockPath);
  }
  const owner = await readLockFile(lockPath);
  const refusal = owner === null ? null : staleRefusal(dir, lockPath, owner, self, holdsSocket);
  if (refusal !== null) throw lockedError(dir, refusal);
  // Stale: replace it atomically so a reader never sees half a file.
  const tempPath = `${lockPath}.${self.pid}.tmp`;
  await attempt('lock', tempPath, () => writeFile(tempPath, text));
  await attempt('lock', lockPath, () => rename(tempPath, lockPath));
}

/** Why an existing LOCK file must be respected, or null when it is stale. */
function staleRefusal(
  dir: string,
  lockPath: string,
  owner: LockOwner,
  self: LockOwner,
  holdsSocket: boolean,
): string | null {
  const ifStale = `if no such process is running, the lock is stale: delete ${lockPath} and start again`;
  if (owner.host !== self.host) {
    return `data directory ${dir} is locked by pid ${owner.pid} on host ${owner.host}; ${ifStale}`;
  }
  if (owner.boot !== self.boot) return null; // the machine rebooted since
  if (holdsSocket && owner.netns === self.netns) return null; // its holder would hold the socket
  if (!holdsSocket && !processAlive(owner.pid)) return null;
  const where = owner.netns === self.netns ? '' : ` in another network namespace (${owner.netns})`;
  return `data directory ${dir} is locked by pid ${owner.pid}${where}; ${ifStale}`;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code !== 'ESRCH';
  }
}

function lockedError(dir: string, message: string): FsError {
  return new FsError('ELOCKED', 'lock', dir, message);
}

async function currentOwner(): Promise<LockOwner> {
  const [boot, netns] = await Promise.all([
    readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
      (s) => s.trim(),
      () => 'unknown',
    ),
    readlink('/proc/self/ns/net').catch(() => 'unknown'),
  ]);
  return { pid: process.pid, host: hostname(), boot, netns };
}

function formatOwner(owner: LockOwner): string {
  return `pid=${owner.pid}\nhost=${owner.host}\nboot=${owner.boot}\nnetns=${owner.netns}\n`;
}

/** The recorded holder, or null when the file is missing or unreadable (being written). */
async function readLockFile(lockPath: string): Promise<LockOwner | null> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch {
    return null;
  }
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const pid = Number(fields.get('pid'));
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  return {
    pid,
    host: fields.get('host') ?? 'unknown',
    boot: fields.get('boot') ?? 'unknown',
    netns: fields.get('netns') ?? 'unknown',
  };
}
