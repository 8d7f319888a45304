/**
 * One simulated server's disk: a `SimFileSystem` the node's real
 * `RaftStorage` runs over, a view of it per process incarnation, and the
 * data directory layout.
 *
 * Process incarnations: a crash kills the incarnation's view. A dead view
 * never settles another operation (the process no longer exists to see it),
 * and completions of operations it issued before the crash are dropped by
 * the scheduler, so code of a dead process can neither observe nor change
 * the disk of its successor.
 *
 * The data directory is `<root>/data`.
 */

import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { Prng } from '../../src/raft/prng.js';
import { DelegatingFileSystem } from '../../src/storage/delegating-fs.js';
import type { DirLock, FileSystem, FsFile, FsOperation, OpenMode } from '../../src/storage/fs.js';
import {
  RaftStorage,
  type RaftStorageOpenResult,
  type RaftStorageOptions,
} from '../../src/storage/raft-storage.js';
import { SimFileSystem, type TearMode } from './sim-fs.js';

/** Where the disk's completions are delivered (the simulation's event queue). */
export interface DiskClock {
  /** Simulated time now, in ms. */
  now(): number;
  /** Runs `callback` after `delayMs` of simulated time (at once if 0). */
  schedule(delayMs: number, callback: () => void): void;
}

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

/**
 * A process's view of the disk; once killed, every call hangs forever. Its
 * open files need no wrapping: a crash kills their handles in the
 * `SimFileSystem` (no operation of theirs changes anything), and completions
 * issued before the crash are dropped by the scheduler.
 */
class IncarnationFs extends DelegatingFileSystem {
  private alive = true;

  kill(): void {
    this.alive = false;
  }

  private guard<T>(call: () => Promise<T>): Promise<T> {
    return this.alive ? call() : never();
  }

  override open(path: string, mode: OpenMode): Promise<FsFile> {
    return this.guard(() => super.open(path, mode));
  }
  override rename(from: string, to: string): Promise<void> {
    return this.guard(() => super.rename(from, to));
  }
  override unlink(path: string): Promise<void> {
    return this.guard(() => super.unlink(path));
  }
  override readdir(path: string): Promise<string[]> {
    return this.guard(() => super.readdir(path));
  }
  override mkdir(path: string): Promise<void> {
    return this.guard(() => super.mkdir(path));
  }
  override exists(path: string): Promise<boolean> {
    return this.guard(() => super.exists(path));
  }
  override syncDir(path: string): Promise<void> {
    return this.guard(() => super.syncDir(path));
  }
  override lock(dir: string): Promise<DirLock> {
    return this.guard(() => super.lock(dir));
  }
}

/** What `NodeDisk.open` returns: the storage, its start state and where it lives. */
export interface OpenedStorage extends RaftStorageOpenResult {
  readonly dir: string;
}

export class NodeDisk {
  readonly fs: SimFileSystem;
  /** Latency spikes (`diskSlow`): extra delay of up to `slowExtraMsMax` until `slowUntilMs`. */
  slowUntilMs = 0;
  slowExtraMsMax = 0;
  /** A sticky corruption was ever injected: damage found at a start is expected from now on. */
  everCorrupted = false;
  /** A `failNext` fault was injected into this incarnation: a storage failure is expected. */
  faultInjected = false;
  private view: IncarnationFs | null = null;
  /** Bumped by every crash: completions of earlier incarnations are dropped. */
  private incarnation = 0;
  /** Data-directory incarnations made on this disk so far. */
  private incarnations = 0;
  readonly dataDir: string;

  constructor(
    readonly root: string,
    prng: Prng,
    private readonly latencyRandom: Prng,
    private readonly clock: DiskClock,
    private readonly syncLatencyMsMax: number,
    private readonly storageOptions: RaftStorageOptions,
    /** How a crash tears each file's last write (see `TearMode`). */
    private readonly crashTear: TearMode = 'prng',
  ) {
    this.dataDir = dataDir(root);
    this.fs = new SimFileSystem({
      prng,
      recordOperations: false,
      latency: (op) => this.latencyMs(op),
      scheduler: (delayMs, callback) => {
        const incarnation = this.incarnation;
        const deliver = (): void => {
          if (incarnation === this.incarnation) callback();
        };
        if (delayMs <= 0) deliver();
        else this.clock.schedule(delayMs, deliver);
      },
    });
  }

  /** A new process starts: its own view of the disk (the previous one must be dead). */
  attach(): FileSystem {
    this.view?.kill();
    this.view = new IncarnationFs(this.fs);
    return this.view;
  }

  /**
   * The machine crashes: the incarnation's view dies and the disk keeps only
   * what was durable, with the last in-flight write of each file torn (by
   * `crashTear`) and a prefix of the unsynced directory operations kept, both
   * as the seed says.
   */
  crash(): void {
    this.view?.kill();
    this.view = null;
    this.incarnation++;
    this.faultInjected = false;
    this.fs.crash(this.crashTear, 'prng');
  }

  /** Opens the node's storage (creating the data directory on the first start). */
  async open(fs: FileSystem): Promise<OpenedStorage> {
    const opened = await RaftStorage.open(fs, this.dataDir, {
      ...this.storageOptions,
      // Deterministic, unlike the default random one: a seed must replay exactly.
      dataDir: { newIncarnation: () => this.nextIncarnation() },
    });
    return { ...opened, dir: this.dataDir };
  }

  /** A new data-directory incarnation: 32 hex digits derived from the disk and a counter. */
  private nextIncarnation(): string {
    this.incarnations++;
    return createHash('sha256')
      .update(`${this.root}#${this.incarnations}`)
      .digest('hex')
      .slice(0, 32);
  }

  /** Files of the data directory in use that a bad sector may hit: WAL segments and snapshots. */
  damageableFiles(): string[] {
    const prefix = `${this.dataDir}/`;
    return this.fs
      .files()
      .filter((p) => p.startsWith(prefix) && (p.endsWith('.wal') || p.endsWith('.snap')))
      .filter((p) => this.fs.sizeOf(p) > 0);
  }

  private latencyMs(op: FsOperation): number {
    let ms = 0;
    if (op === 'datasync' || op === 'sync' || op === 'syncDir') {
      ms = this.latencyRandom.float() * this.syncLatencyMsMax;
    }
    if (this.clock.now() < this.slowUntilMs) ms += this.latencyRandom.float() * this.slowExtraMsMax;
    return ms;
  }
}

/** The node's data directory. */
function dataDir(root: string): string {
  return posix.join(root, 'data');
}
