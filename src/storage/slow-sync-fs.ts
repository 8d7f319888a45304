/**
 * Fault injection for tests and drills on real processes: a `FileSystem`
 * whose `datasync` and `sync` wait `delayMs` longer than the disk does, the
 * way a failing or overloaded disk would. `tandem node --fault-fsync-delay-ms`
 * uses it to show failover on degradation (issue 5); nothing else does.
 * The delay can change at run time (`setDelay`).
 */

import { setTimeout as sleep } from 'node:timers/promises';
import type { DirLock, FileSystem, FsFile, OpenMode } from './fs.js';

export class SlowSyncFileSystem implements FileSystem {
  constructor(
    private readonly inner: FileSystem,
    private delayMs: number,
  ) {}

  setDelay(ms: number): void {
    this.delayMs = Math.max(0, ms);
  }

  async open(path: string, mode: OpenMode): Promise<FsFile> {
    const file = await this.inner.open(path, mode);
    const slow = async (): Promise<void> => {
      if (this.delayMs > 0) await sleep(this.delayMs);
    };
    return {
      path: file.path,
      read: (position, length) => file.read(position, length),
      write: (position, data) => file.write(position, data),
      append: (data) => file.append(data),
      size: () => file.size(),
      truncate: (size) => file.truncate(size),
      datasync: async () => {
        await slow();
        await file.datasync();
      },
      sync: async () => {
        await slow();
        await file.sync();
      },
      close: () => file.close(),
    };
  }

  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return this.inner.unlink(path);
  }

  readdir(path: string): Promise<string[]> {
    return this.inner.readdir(path);
  }

  mkdir(path: string): Promise<void> {
    return this.inner.mkdir(path);
  }

  exists(path: string): Promise<boolean> {
    return this.inner.exists(path);
  }

  syncDir(path: string): Promise<void> {
    return this.inner.syncDir(path);
  }

  lock(dir: string): Promise<DirLock> {
    return this.inner.lock(dir);
  }
}
