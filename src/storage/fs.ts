/**
 * The file-system interface through which storage reaches the disk. All disk
 * access in `src/storage/` goes through it, so the simulator can run the real
 * WAL and snapshot code over a simulated disk (unsynced writes lost on crash,
 * torn last write, sticky sector corruption, EIO/ENOSPC, slowness).
 *
 * Deliberately small: positional reads and writes instead of a file cursor
 * (a simulated disk is a byte array per file, and a cursor shared by
 * concurrent appenders would be a race), and durability only through the
 * explicit `datasync`/`sync`/`syncDir` calls, which is exactly what the
 * simulated disk models.
 */

/**
 * Error codes storage can see. `ELOCKED`: the data directory lock is held.
 * `EUNKNOWN`: anything else (the original code is kept in the message).
 */
export type FsErrorCode =
  | 'ENOENT'
  | 'EEXIST'
  | 'EIO'
  | 'ENOSPC'
  | 'EDQUOT'
  | 'EROFS'
  | 'EACCES'
  | 'EPERM'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'ENOTEMPTY'
  | 'EMFILE'
  | 'ELOCKED'
  | 'EUNKNOWN';

/** Which operation failed; kept so a log line can say "fdatasync of ...". */
export type FsOperation =
  | 'open'
  | 'read'
  | 'write'
  | 'truncate'
  | 'size'
  | 'datasync'
  | 'sync'
  | 'close'
  | 'syncDir'
  | 'rename'
  | 'unlink'
  | 'readdir'
  | 'mkdir'
  | 'exists'
  | 'lock';

/**
 * An expected failure of the disk or of the environment, with a typed code.
 * Storage treats EIO and ENOSPC from `write` or any sync as fatal for the
 * process (DESIGN.md §2): after a failed fsync the page cache may have dropped
 * the dirty pages, so retrying could report data durable that is not.
 */
export class FsError extends Error {
  override readonly name = 'FsError';
  constructor(
    readonly code: FsErrorCode,
    readonly operation: FsOperation,
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * How to open a file. Every mode but `read` opens for reading and writing.
 * - `read`: the file must exist.
 * - `write`: the file must exist.
 * - `create`: the file must not exist (EEXIST otherwise): new segments and
 *   temporary snapshot files, so a stale file is never silently reused.
 * - `append`: created empty if missing; `append` writes go to its end.
 */
export type OpenMode = 'read' | 'write' | 'create' | 'append';

/** How a writable file will be used; a hint the real disk acts on. */
export interface OpenOptions {
  /**
   * Most writes will go through `writeDurable`: the real file system opens
   * the file with O_DSYNC, so such a write and its flush are one system call
   * (one trip to libuv's thread pool instead of two, pwrite then fdatasync).
   * Plain `write`s to the file are then durable on return as well.
   */
  readonly syncWrites?: boolean;
}

/** An open file. Offsets and lengths are in bytes. */
export interface FsFile {
  readonly path: string;
  /**
   * Reads up to `lengthBytes` at `positionBytes`; returns fewer bytes only
   * when the file ends first (never a short read in the middle).
   */
  read(positionBytes: number, lengthBytes: number): Promise<Buffer>;
  /** Writes all of `data` at `positionBytes`, extending the file if needed. */
  write(positionBytes: number, data: Uint8Array): Promise<void>;
  /**
   * Writes all of `data` at the end of the file. The position is taken when
   * the call is made, so concurrent appends land in call order without gaps.
   */
  append(data: Uint8Array): Promise<void>;
  /**
   * Writes all of `data` at `positionBytes` and resolves once it is as
   * durable as after a following `datasync` (with every earlier write to the
   * file). A crash during the call may leave any prefix of it, like a write
   * and a sync. One system call on a file opened with `syncWrites`.
   */
  writeDurable(positionBytes: number, data: Uint8Array): Promise<void>;
  /** The file's size, including writes not yet synced. */
  size(): Promise<number>;
  /** Cuts the file to `sizeBytes` (which must not exceed its size). */
  truncate(sizeBytes: number): Promise<void>;
  /** fdatasync: data and the metadata needed to read it back (the size). */
  datasync(): Promise<void>;
  /** fsync: data and all metadata. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** Proof that this process holds a data directory's exclusive lock. */
export interface DirLock {
  readonly dir: string;
  release(): Promise<void>;
}

/** Directory operations and the entry point for files. Paths are absolute. */
export interface FileSystem {
  open(path: string, mode: OpenMode, options?: OpenOptions): Promise<FsFile>;
  /**
   * Atomically replaces `to` with `from`. Durable only after `syncDir` of the
   * directory (both directories, if they differ).
   */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file. Durable only after `syncDir` of its directory. */
  unlink(path: string): Promise<void>;
  /** Names of the entries of a directory, sorted (byte order). */
  readdir(path: string): Promise<string[]>;
  /** Creates a directory and its parents; succeeds if it exists. */
  mkdir(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** Makes the directory's entries (creations, renames, unlinks) durable. */
  syncDir(path: string): Promise<void>;
  /**
   * Takes the exclusive lock of a data directory, so two processes never
   * open the same log. Fails with code `ELOCKED` and a message naming the
   * holder when another process has it.
   */
  lock(dir: string): Promise<DirLock>;
}
