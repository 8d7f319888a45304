/**
 * An in-memory `FileSystem` that models a disk behind a page cache, for the
 * simulator and crash-consistency tests (DESIGN.md §4, issue 3).
 *
 * The model:
 * - Each file (an inode) has durable content and the writes and truncations
 *   made since its last sync (`pending`). Reads see the current content: the
 *   durable content with the pending operations applied. `datasync`/`sync`
 *   replay the pending operations onto the durable content.
 * - Directory entries (creation, rename, unlink) are volatile until `syncDir`
 *   of the parent directory; a crash may keep an in-order prefix of the
 *   unsynced ones, as a journaling file system commits metadata in order. Directories themselves (`mkdir`) are durable at
 *   once: a simplification, since storage creates its directory before use.
 * - `crash()` keeps only what is durable, except that the last pending write
 *   of each file may survive torn: a prefix of it, with the length chosen by
 *   the seeded PRNG or by the caller, or some of its sectors (`SectorTear`).
 *   Handles opened before the crash go dead, and directory locks are released.
 * - A failed sync drops the file's pending operations from what a later sync
 *   would persist while reads still see them (the "fsyncgate" behaviour), so
 *   code that retries a failed fsync is caught.
 *
 * Faults, each switchable: one-shot EIO/ENOSPC on a write or a sync
 * (`failNext`), a capacity limit (ENOSPC), sticky corruption of a byte range
 * (`corrupt`: every later read of it returns flipped bits, across crashes),
 * latency (`latency` hook delivering completions through a `scheduler`), and
 * a halt after a given number of mutating operations (`haltAfter`), after
 * which every operation fails, to freeze a workload at an exact boundary
 * before `crash()`.
 *
 * Operations take effect synchronously when called (the write lands in the
 * cache at once); only the completion is delivered asynchronously. Given the
 * same seed and the same calls, everything is deterministic.
 */

import { posix } from 'node:path';
import type { Prng } from '../../src/raft/prng.js';
import {
  type DirLock,
  type FileSystem,
  FsError,
  type FsErrorCode,
  type FsFile,
  type FsOperation,
  type OpenMode,
} from '../../src/storage/fs.js';
import { sectorBytes } from '../../src/storage/wal-recovery.js';

/** Operations that change the disk or the cache; each is one crash boundary. */
export type SimMutation =
  | 'create'
  | 'write'
  | 'truncate'
  | 'datasync'
  | 'sync'
  | 'syncDir'
  | 'rename'
  | 'unlink';

/** One mutating operation, as recorded in `SimFileSystem.operations`. */
export interface SimOperation {
  /** 1-based position among the mutating operations since the file system was made. */
  readonly seq: number;
  readonly op: SimMutation;
  readonly path: string;
  /** For writes: where and how much. */
  readonly positionBytes?: number;
  readonly lengthBytes?: number;
}

/** Which operations `failNext` can fail. */
export type SimFaultOperation = 'write' | 'datasync' | 'sync' | 'syncDir';

/**
 * How much of each file's last pending write survives a crash:
 * `none` loses it, `all` keeps it whole, `prng` picks a length in
 * [0, length] with the PRNG, a function picks it from the write's length
 * (clamped to [0, length]); those keep a prefix. A `SectorTear` keeps some
 * of its sectors instead.
 */
export type TearMode = 'none' | 'all' | 'prng' | ((writeBytes: number) => number) | SectorTear;

/**
 * A tear by sectors, as a disk may leave a write over space the file already
 * has: each `simSectorBytes` sector the write touches (aligned in the file)
 * is kept whole or not at all, by the PRNG or by `keep(sector, sectors)`
 * (sector counts from 0 within the write); a sector not kept keeps its old
 * bytes.
 */
export interface SectorTear {
  readonly sectors: 'prng' | ((sector: number, sectors: number) => boolean);
}

/** The sector size of sector tears: what a disk writes whole, as WAL recovery assumes. */
export const simSectorBytes = sectorBytes;

export interface SimFileSystemOptions {
  /** Seeded randomness for torn lengths and corruption masks. */
  readonly prng: Prng;
  /** Total bytes of file content the disk holds; writes past it fail with ENOSPC. */
  readonly capacityBytes?: number;
  /** Milliseconds each operation takes; only used with `scheduler`. */
  readonly latency?: (op: FsOperation, path: string) => number;
  /**
   * Delivers a completion after `delayMs` (e.g. the simulator's event
   * queue). Without it, or when the latency is 0, operations complete
   * immediately (a resolved promise).
   */
  readonly scheduler?: (delayMs: number, callback: () => void) => void;
  /** Keep every mutating operation in `operations` (default true; the simulator's long runs do not). */
  readonly recordOperations?: boolean;
}

type PendingOp =
  | { readonly kind: 'write'; readonly positionBytes: number; readonly data: Buffer }
  | { readonly kind: 'truncate'; readonly sizeBytes: number };

interface Corruption {
  readonly offsetBytes: number;
  /** XORed onto the bytes read from offsetBytes on. */
  readonly mask: Buffer;
}

/**
 * A file's bytes in a buffer that grows by doubling, so appends copy only
 * the new bytes (copying the whole file per write made long WAL segments
 * quadratic). Bytes past `length` are kept zero.
 */
class Content {
  private data: Buffer;
  length: number;

  constructor(data: Buffer = Buffer.alloc(0), length: number = data.length) {
    this.data = data;
    this.length = length;
  }

  /** The bytes, without copying (valid until the next change). */
  view(): Buffer {
    return this.data.subarray(0, this.length);
  }

  clone(): Content {
    return new Content(Buffer.from(this.view()));
  }

  apply(op: PendingOp): void {
    if (op.kind === 'truncate') {
      this.truncate(op.sizeBytes);
      return;
    }
    this.write(op.positionBytes, op.data);
  }

  write(positionBytes: number, bytes: Uint8Array): void {
    const end = positionBytes + bytes.length;
    if (end > this.data.length) {
      const grown = Buffer.alloc(Math.max(end, 2 * this.data.length, 256));
      this.data.copy(grown, 0, 0, this.length);
      this.data = grown;
    }
    this.data.set(bytes, positionBytes);
    if (end > this.length) this.length = end;
  }

  truncate(sizeBytes: number): void {
    if (sizeBytes < this.length) this.data.fill(0, sizeBytes, this.length);
    this.length = Math.min(this.length, sizeBytes);
  }
}

interface Inode {
  readonly id: number;
  durable: Content;
  current: Content;
  /** Operations since the last sync that a sync would persist. */
  pending: PendingOp[];
  readonly corruptions: Corruption[];
}

/** One directory operation's entry changes (a rename has two); null removes the name. */
interface DirChange {
  changes: Array<readonly [string, number | null]>;
}

/**
 * How many of the directory operations not yet synced survive a crash, in
 * order (a journaling file system commits metadata in order): `lost` keeps
 * none, `prng` a PRNG-chosen count, a number that many.
 */
export type DirOpsMode = 'lost' | 'prng' | number;

interface Fault {
  readonly op: SimFaultOperation;
  readonly code: 'EIO' | 'ENOSPC';
  readonly path: string | undefined;
}

function normalize(path: string): string {
  if (!posix.isAbsolute(path)) throw new Error(`SimFileSystem: path must be absolute: ${path}`);
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
}

export class SimFileSystem implements FileSystem {
  private readonly prng: Prng;
  private readonly capacityBytes: number;
  private readonly latency: ((op: FsOperation, path: string) => number) | undefined;
  private readonly scheduler: ((delayMs: number, callback: () => void) => void) | undefined;
  private readonly dirs = new Set<string>(['/']);
  /** Current directory entries: path to inode id. */
  private entries = new Map<string, number>();
  /** Directory entries as they would be after a crash. */
  private durableEntries = new Map<string, number>();
  /** Directory operations not yet made durable by `syncDir`, in order. */
  private dirJournal: DirChange[] = [];
  private inodes = new Map<number, Inode>();
  private nextInode = 1;
  private readonly locks = new Set<string>();
  private faults: Fault[] = [];
  private readonly log: SimOperation[] = [];
  private readonly recordOperations: boolean;
  private mutations = 0;
  private haltAt: number | null = null;
  /** Bumped by every crash; handles of an older generation are dead. */
  private generation = 0;

  constructor(options: SimFileSystemOptions) {
    this.prng = options.prng;
    this.capacityBytes = options.capacityBytes ?? Number.POSITIVE_INFINITY;
    this.latency = options.latency;
    this.scheduler = options.scheduler;
    this.recordOperations = options.recordOperations ?? true;
  }

  // --- Control and inspection ----------------------------------------------

  /** The mutating operations so far, in order (empty unless `recordOperations`). */
  get operations(): readonly SimOperation[] {
    return this.log;
  }

  /** Directory operations (create, rename, unlink) not yet made durable. */
  get unsyncedDirOps(): number {
    return this.dirJournal.length;
  }

  /** Number of mutating operations so far. */
  get mutationCount(): number {
    return this.mutations;
  }

  /** True once the halt point has been reached: every operation now fails. */
  get halted(): boolean {
    return this.haltAt !== null && this.mutations >= this.haltAt;
  }

  /**
   * Lets the mutating operations up to number `count` (counting from the
   * file system's creation) happen, then fails every later operation (of any
   * kind) with `EUNKNOWN`, as if the process had frozen there. `null` lifts
   * the halt, and so does `crash()`.
   */
  haltAfter(count: number | null): void {
    this.haltAt = count;
  }

  /** Fails the next `op` (of `path`, if given) with `code`; one shot, queued in order. */
  failNext(op: SimFaultOperation, code: 'EIO' | 'ENOSPC', path?: string): void {
    this.faults.push({ op, code, path: path === undefined ? undefined : normalize(path) });
  }

  /**
   * Sticky corruption of `lengthBytes` at `offsetBytes` of the file now at
   * `path` (a bad sector): every later read of those bytes returns them with
   * bits flipped, across crashes and rewrites, for as long as the file lives.
   */
  corrupt(path: string, offsetBytes: number, lengthBytes: number): void {
    const inode = this.inodeAt(normalize(path), 'read');
    const mask = Buffer.alloc(lengthBytes);
    for (let i = 0; i < lengthBytes; i++) mask[i] = 1 + this.prng.int(255); // never 0
    inode.corruptions.push({ offsetBytes, mask });
  }

  /**
   * The process and the machine crash: only durable state is kept, except a
   * torn prefix of each file's last pending write (see `TearMode`) and, if
   * asked, a prefix of the unsynced directory operations (see `DirOpsMode`).
   * Locks are released, open handles die, and a halt is lifted.
   */
  crash(tear: TearMode = 'prng', dirOps: DirOpsMode = 'lost'): void {
    const journal = this.dirJournal;
    const kept =
      dirOps === 'lost' ? 0 : dirOps === 'prng' ? this.prng.int(journal.length + 1) : dirOps;
    for (const { changes } of journal.slice(0, Math.max(0, kept))) {
      for (const [name, id] of changes) {
        if (id === null) this.durableEntries.delete(name);
        else this.durableEntries.set(name, id);
      }
    }
    this.dirJournal = [];
    const survivors = new Map<number, Inode>();
    for (const [path, id] of this.durableEntries) {
      const inode = this.inodes.get(id);
      if (inode === undefined) throw new Error(`SimFileSystem: lost inode of ${path}`);
      survivors.set(id, inode);
    }
    for (const inode of survivors.values()) {
      const content = inode.durable;
      const last = inode.pending[inode.pending.length - 1];
      if (last !== undefined && last.kind === 'write') {
        if (typeof tear === 'object') this.tearBySectors(tear, content, last);
        else {
          const keepBytes = this.tornLength(tear, last.data.length);
          if (keepBytes > 0) content.write(last.positionBytes, last.data.subarray(0, keepBytes));
        }
      }
      inode.current = content.clone();
      inode.pending = [];
    }
    this.inodes = survivors;
    this.entries = new Map(this.durableEntries);
    this.locks.clear();
    this.faults = [];
    this.haltAt = null;
    this.generation++;
  }

  /** The current content of a file (what a read sees, without corruption); for tests. */
  contentOf(path: string): Buffer {
    return Buffer.from(this.inodeAt(normalize(path), 'read').current.view());
  }

  /** Paths of the files that exist now, sorted; for the simulator's fault injection. */
  files(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** The current size of the file at `path` (0 if there is none); for fault injection. */
  sizeOf(path: string): number {
    const id = this.entries.get(normalize(path));
    return id === undefined ? 0 : (this.inodes.get(id)?.current.length ?? 0);
  }

  /** Drops the faults queued by `failNext` that have not fired. */
  clearFaults(): void {
    this.faults = [];
  }

  /** The durable content of a file, or null if its name is not durable; for tests. */
  durableContentOf(path: string): Buffer | null {
    const id = this.durableEntries.get(normalize(path));
    const inode = id === undefined ? undefined : this.inodes.get(id);
    return inode === undefined ? null : Buffer.from(inode.durable.view());
  }

  // --- FileSystem -------------------------------------------------------------

  open(path: string, mode: OpenMode): Promise<FsFile> {
    return this.run('open', path, () => {
      const p = normalize(path);
      this.checkParent('open', p);
      if (this.dirs.has(p)) throw new FsError('EISDIR', 'open', p, `open of ${p}: a directory`);
      let id = this.entries.get(p);
      if (mode === 'create' && id !== undefined) {
        throw new FsError('EEXIST', 'open', p, `open of ${p} failed: EEXIST: file exists`);
      }
      if (id === undefined) {
        if (mode === 'read' || mode === 'write') {
          throw new FsError('ENOENT', 'open', p, `open of ${p} failed: ENOENT: no such file`);
        }
        this.mutation('create', p);
        id = this.nextInode++;
        this.inodes.set(id, {
          id,
          durable: new Content(),
          current: new Content(),
          pending: [],
          corruptions: [],
        });
        this.entries.set(p, id);
        this.dirJournal.push({ changes: [[p, id]] });
      }
      const inode = this.inodes.get(id);
      if (inode === undefined) throw new Error(`SimFileSystem: lost inode of ${p}`);
      return new SimFile(this, p, inode, mode !== 'read', this.generation);
    });
  }

  rename(from: string, to: string): Promise<void> {
    return this.run('rename', `${from} -> ${to}`, () => {
      const f = normalize(from);
      const t = normalize(to);
      const id = this.entries.get(f);
      if (id === undefined) {
        throw new FsError('ENOENT', 'rename', f, `rename of ${f} failed: ENOENT: no such file`);
      }
      this.checkParent('rename', t);
      if (this.dirs.has(t)) throw new FsError('EISDIR', 'rename', t, `rename to ${t}: a directory`);
      this.mutation('rename', `${f} -> ${t}`);
      this.entries.delete(f);
      this.entries.set(t, id);
      this.dirJournal.push({
        changes: [
          [f, null],
          [t, id],
        ],
      });
    });
  }

  unlink(path: string): Promise<void> {
    return this.run('unlink', path, () => {
      const p = normalize(path);
      if (!this.entries.has(p)) {
        const code: FsErrorCode = this.dirs.has(p) ? 'EISDIR' : 'ENOENT';
        throw new FsError(code, 'unlink', p, `unlink of ${p} failed: ${code}`);
      }
      this.mutation('unlink', p);
      this.entries.delete(p);
      this.dirJournal.push({ changes: [[p, null]] });
    });
  }

  readdir(path: string): Promise<string[]> {
    return this.run('readdir', path, () => {
      const p = normalize(path);
      if (!this.dirs.has(p)) {
        const code: FsErrorCode = this.entries.has(p) ? 'ENOTDIR' : 'ENOENT';
        throw new FsError(code, 'readdir', p, `readdir of ${p} failed: ${code}`);
      }
      const names: string[] = [];
      for (const name of [...this.entries.keys(), ...this.dirs]) {
        if (name !== p && posix.dirname(name) === p) names.push(posix.basename(name));
      }
      // Byte order, as NodeFileSystem sorts (all names here are strings).
      return names.sort();
    });
  }

  mkdir(path: string): Promise<void> {
    return this.run('mkdir', path, () => {
      const p = normalize(path);
      const chain: string[] = [];
      for (let at = p; !this.dirs.has(at); at = posix.dirname(at)) {
        if (this.entries.has(at)) {
          throw new FsError('ENOTDIR', 'mkdir', at, `mkdir of ${p} failed: ${at} is a file`);
        }
        chain.push(at);
      }
      for (const dir of chain) this.dirs.add(dir);
    });
  }

  exists(path: string): Promise<boolean> {
    return this.run('exists', path, () => {
      const p = normalize(path);
      return this.dirs.has(p) || this.entries.has(p);
    });
  }

  syncDir(path: string): Promise<void> {
    return this.run('syncDir', path, () => {
      const p = normalize(path);
      if (!this.dirs.has(p)) throw new FsError('ENOENT', 'syncDir', p, `syncDir of ${p}: ENOENT`);
      this.checkFault('syncDir', p);
      this.mutation('syncDir', p);
      for (const name of [...this.durableEntries.keys()]) {
        if (posix.dirname(name) === p && !this.entries.has(name)) this.durableEntries.delete(name);
      }
      for (const [name, id] of this.entries) {
        if (posix.dirname(name) === p) this.durableEntries.set(name, id);
      }
      for (const item of this.dirJournal) {
        item.changes = item.changes.filter(([name]) => posix.dirname(name) !== p);
      }
      this.dirJournal = this.dirJournal.filter((item) => item.changes.length > 0);
      this.collectGarbage();
    });
  }

  lock(dir: string): Promise<DirLock> {
    return this.run('lock', dir, () => {
      const p = normalize(dir);
      if (!this.dirs.has(p)) throw new FsError('ENOENT', 'lock', p, `lock of ${p}: ENOENT`);
      if (this.locks.has(p)) {
        throw new FsError(
          'ELOCKED',
          'lock',
          p,
          `data directory ${p} is locked by another process of this simulated machine`,
        );
      }
      this.locks.add(p);
      const generation = this.generation;
      let released = false;
      return {
        dir: p,
        release: () =>
          this.run('lock', p, () => {
            // A lock from before a crash died with its process.
            if (released || generation !== this.generation) return;
            released = true;
            this.locks.delete(p);
          }),
      };
    });
  }

  // --- Used by SimFile ----------------------------------------------------------

  /** Runs an operation: halt check, body, then completion (immediate or scheduled). */
  run<T>(op: FsOperation, path: string, body: () => T): Promise<T> {
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      if (this.halted) {
        throw new FsError('EUNKNOWN', op, path, `${op} of ${path}: the simulated process halted`);
      }
      outcome = { ok: true, value: body() };
    } catch (error) {
      outcome = { ok: false, error };
    }
    const settle = (): Promise<T> =>
      outcome.ok ? Promise.resolve(outcome.value) : Promise.reject(outcome.error);
    if (this.scheduler === undefined) return settle();
    const delayMs = this.latency?.(op, path) ?? 0;
    // Nothing to wait for: settle now (saves a scheduled completion per operation).
    if (delayMs <= 0) return settle();
    const scheduler = this.scheduler;
    return new Promise<T>((resolve, reject) => {
      scheduler(delayMs, () => {
        if (outcome.ok) resolve(outcome.value);
        else reject(outcome.error);
      });
    });
  }

  checkAlive(file: SimFile, op: FsOperation): void {
    if (file.generation !== this.generation) {
      throw new FsError(
        'EUNKNOWN',
        op,
        file.path,
        `${op} of ${file.path}: handle from before a crash`,
      );
    }
  }

  checkFault(op: SimFaultOperation, path: string): void {
    const at = this.faults.findIndex(
      (f) => f.op === op && (f.path === undefined || f.path === path),
    );
    if (at < 0) return;
    const fault = this.faults[at] as Fault;
    this.faults.splice(at, 1);
    throw new FsError(fault.code, op, path, `${op} of ${path} failed: ${fault.code} (injected)`);
  }

  mutation(op: SimMutation, path: string, positionBytes?: number, lengthBytes?: number): void {
    const seq = ++this.mutations;
    if (!this.recordOperations) return;
    this.log.push(
      positionBytes === undefined || lengthBytes === undefined
        ? { seq, op, path }
        : { seq, op, path, positionBytes, lengthBytes },
    );
  }

  /** Bytes of content the disk holds: each live file's current content. */
  usedBytes(): number {
    let bytes = 0;
    for (const inode of this.inodes.values()) bytes += inode.current.length;
    return bytes;
  }

  get capacity(): number {
    return this.capacityBytes;
  }

  /** Reads with sticky corruption applied. */
  readCorrupted(inode: Inode, positionBytes: number, lengthBytes: number): Buffer {
    const end = Math.min(inode.current.length, positionBytes + lengthBytes);
    const out = Buffer.from(inode.current.view().subarray(Math.min(positionBytes, end), end));
    for (const { offsetBytes, mask } of inode.corruptions) {
      for (let i = 0; i < mask.length; i++) {
        const at = offsetBytes + i - positionBytes;
        if (at >= 0 && at < out.length) out[at] = (out[at] as number) ^ (mask[i] as number);
      }
    }
    return out;
  }

  private tearBySectors(
    tear: SectorTear,
    content: Content,
    write: { readonly positionBytes: number; readonly data: Uint8Array },
  ): void {
    const start = write.positionBytes;
    const end = start + write.data.length;
    const first = Math.floor(start / simSectorBytes);
    const sectors = Math.ceil(end / simSectorBytes) - first;
    for (let i = 0; i < sectors; i++) {
      const keep = tear.sectors === 'prng' ? this.prng.int(2) === 1 : tear.sectors(i, sectors);
      if (!keep) continue;
      const from = Math.max(start, (first + i) * simSectorBytes);
      const to = Math.min(end, (first + i + 1) * simSectorBytes);
      content.write(from, write.data.subarray(from - start, to - start));
    }
  }

  private tornLength(tear: Exclude<TearMode, SectorTear>, writeBytes: number): number {
    if (tear === 'none') return 0;
    if (tear === 'all') return writeBytes;
    const chosen = tear === 'prng' ? this.prng.int(writeBytes + 1) : tear(writeBytes);
    return Math.max(0, Math.min(writeBytes, Math.floor(chosen)));
  }

  private inodeAt(path: string, op: FsOperation): Inode {
    const id = this.entries.get(path);
    const inode = id === undefined ? undefined : this.inodes.get(id);
    if (inode === undefined) throw new FsError('ENOENT', op, path, `${op} of ${path}: ENOENT`);
    return inode;
  }

  private checkParent(op: FsOperation, path: string): void {
    const parent = posix.dirname(path);
    if (!this.dirs.has(parent)) {
      throw new FsError(
        'ENOENT',
        op,
        path,
        `${op} of ${path} failed: ENOENT: no directory ${parent}`,
      );
    }
  }

  /**
   * Inodes with no name now and none that would survive a crash are gone for
   * good, except while a handle is open (their handles keep working, as on
   * POSIX; they are simply not found by a crash).
   */
  private collectGarbage(): void {
    const live = new Set<number>([...this.entries.values(), ...this.durableEntries.values()]);
    for (const { changes } of this.dirJournal) {
      for (const [, id] of changes) if (id !== null) live.add(id);
    }
    for (const id of [...this.inodes.keys()]) if (!live.has(id)) this.inodes.delete(id);
  }
}

class SimFile implements FsFile {
  private closed = false;

  constructor(
    private readonly fs: SimFileSystem,
    readonly path: string,
    private readonly inode: Inode,
    private readonly writable: boolean,
    readonly generation: number,
  ) {}

  read(positionBytes: number, lengthBytes: number): Promise<Buffer> {
    return this.fs.run('read', this.path, () => {
      this.check('read', false);
      if (!(Number.isSafeInteger(positionBytes) && positionBytes >= 0)) {
        throw new RangeError(`read position ${positionBytes}`);
      }
      if (!(Number.isSafeInteger(lengthBytes) && lengthBytes >= 0)) {
        throw new RangeError(`read length ${lengthBytes}`);
      }
      return this.fs.readCorrupted(this.inode, positionBytes, lengthBytes);
    });
  }

  write(positionBytes: number, data: Uint8Array): Promise<void> {
    return this.fs.run('write', this.path, () => this.writeNow(positionBytes, data));
  }

  /**
   * A write then a datasync, as two operations: a crash may fall between
   * them (and tear the write), as one during an O_DSYNC pwrite may.
   */
  async writeDurable(positionBytes: number, data: Uint8Array): Promise<void> {
    await this.write(positionBytes, data);
    await this.datasync();
  }

  append(data: Uint8Array): Promise<void> {
    // The position is taken at the call: operations apply synchronously.
    return this.fs.run('write', this.path, () => this.writeNow(this.inode.current.length, data));
  }

  size(): Promise<number> {
    return this.fs.run('size', this.path, () => {
      this.check('size', false);
      return this.inode.current.length;
    });
  }

  truncate(sizeBytes: number): Promise<void> {
    return this.fs.run('truncate', this.path, () => {
      this.check('truncate', true);
      if (!(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0)) {
        throw new RangeError(`truncate size ${sizeBytes}`);
      }
      if (sizeBytes > this.inode.current.length) {
        throw new RangeError(`truncate to ${sizeBytes} past the end ${this.inode.current.length}`);
      }
      this.fs.mutation('truncate', this.path);
      const op: PendingOp = { kind: 'truncate', sizeBytes };
      this.inode.current.apply(op);
      this.inode.pending.push(op);
    });
  }

  datasync(): Promise<void> {
    return this.fs.run('datasync', this.path, () => this.syncNow('datasync'));
  }

  sync(): Promise<void> {
    return this.fs.run('sync', this.path, () => this.syncNow('sync'));
  }

  close(): Promise<void> {
    return this.fs.run('close', this.path, () => {
      this.check('close', false);
      this.closed = true;
    });
  }

  private writeNow(positionBytes: number, data: Uint8Array): void {
    this.check('write', true);
    if (!(Number.isSafeInteger(positionBytes) && positionBytes >= 0)) {
      throw new RangeError(`write position ${positionBytes}`);
    }
    this.fs.checkFault('write', this.path);
    const growthBytes = Math.max(0, positionBytes + data.length - this.inode.current.length);
    if (
      this.fs.capacity < Number.POSITIVE_INFINITY &&
      this.fs.usedBytes() + growthBytes > this.fs.capacity
    ) {
      throw new FsError('ENOSPC', 'write', this.path, `write of ${this.path} failed: ENOSPC`);
    }
    this.fs.mutation('write', this.path, positionBytes, data.length);
    // A copy: the caller may reuse its buffer (the WAL recycles batch buffers).
    const op: PendingOp = { kind: 'write', positionBytes, data: Buffer.from(data) };
    this.inode.current.apply(op);
    this.inode.pending.push(op);
  }

  private syncNow(op: 'datasync' | 'sync'): void {
    this.check(op, false);
    try {
      this.fs.checkFault(op, this.path);
    } catch (error) {
      // fsyncgate: the cache marks the pages clean although they never made
      // it; a later sync will not write them, though reads still see them.
      this.inode.pending = [];
      throw error;
    }
    this.fs.mutation(op, this.path);
    for (const pending of this.inode.pending) this.inode.durable.apply(pending);
    this.inode.pending = [];
  }

  private check(op: FsOperation, needsWrite: boolean): void {
    this.fs.checkAlive(this, op);
    if (this.closed) {
      throw new FsError('EUNKNOWN', op, this.path, `${op} of ${this.path}: EBADF: file closed`);
    }
    if (needsWrite && !this.writable) {
      throw new FsError(
        'EUNKNOWN',
        op,
        this.path,
        `${op} of ${this.path}: EBADF: opened read-only`,
      );
    }
  }
}
