/**
 * Fault injection for tests and drills on real processes: a `FileSystem`
 * whose `datasync` and `sync` wait `delayMs` longer than the disk does, the
 * way a failing or overloaded disk would. `tandem node --fault-fsync-delay-ms`
 * uses it to show failover on degradation (issue 5); nothing else does.
 * The delay can change at run time (`setDelay`).
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { DelegatingFileSystem, overrideFile } from './delegating-fs.js';
import type { FileSystem, FsFile } from './fs.js';

export class SlowSyncFileSystem extends DelegatingFileSystem {
  constructor(
    inner: FileSystem,
    private delayMs: number,
  ) {
    super(inner);
  }

  setDelay(ms: number): void {
    this.delayMs = Math.max(0, ms);
  }

  protected override wrapFile(file: FsFile): FsFile {
    const slow = async (): Promise<void> => {
      if (this.delayMs > 0) await sleep(this.delayMs);
    };
    return overrideFile(file, {
      datasync: async () => {
        await slow();
        await file.datasync();
      },
      sync: async () => {
        await slow();
        await file.sync();
      },
    });
  }
}
