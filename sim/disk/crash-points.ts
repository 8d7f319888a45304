/**
 * The crash sweep the storage crash tests share: replay a workload on a fresh
 * simulated disk halted after each mutating operation of a reference run,
 * crash it with every tear of the last write (when that operation was a
 * write) and every in-order prefix of the directory operations not yet
 * synced, and hand each crashed disk to a checker.
 */
import { Prng } from '../../src/raft/prng.js';
import { SimFileSystem, type SimOperation, type TearMode } from './sim-fs.js';

export type NamedTears = ReadonlyArray<readonly [string, TearMode]>;

export const tearModes: NamedTears = [
  ['lost', 'none'],
  ['1 byte', () => 1],
  ['half', (bytes) => bytes / 2],
  ['all but 1 byte', (bytes) => bytes - 1],
  ['whole', 'all'],
];

export interface CrashSweep<O> {
  /** The mutating operations of the reference run. */
  readonly reference: readonly SimOperation[];
  readonly tears: NamedTears;
  /** The seed of the disk's PRNG for crash point `k` with `kept` directory operations kept. */
  readonly seed: (k: number, kept: number) => number;
  readonly run: (fs: SimFileSystem) => Promise<O>;
  readonly check: (fs: SimFileSystem, outcome: O, label: string) => Promise<void>;
}

/** Returns how many crashes were checked, and how many of them kept directory operations. */
export async function crashAtEveryOperation<O>(
  sweep: CrashSweep<O>,
): Promise<{ runs: number; withDirOps: number }> {
  const { reference, tears, seed, run, check } = sweep;
  let runs = 0;
  let withDirOps = 0;
  for (let k = 0; k <= reference.length; k++) {
    const op = reference[k - 1];
    const where = op === undefined ? 'start' : `${op.op} of ${op.path}`;
    // Tearing only matters when the last operation was a write.
    const modes = op?.op === 'write' ? tears : tears.slice(0, 1);
    for (const [tearName, tear] of modes) {
      for (let kept = 0, unsynced = 0; kept <= unsynced; kept++) {
        const fs = new SimFileSystem({ prng: new Prng(seed(k, kept)) });
        fs.haltAfter(k);
        const outcome = await run(fs);
        unsynced = fs.unsyncedDirOps;
        fs.crash(tear, kept);
        await check(
          fs,
          outcome,
          `boundary ${k} (${where}), last write ${tearName}, ${kept} dir ops kept`,
        );
        runs++;
        if (kept > 0) withDirOps++;
      }
    }
  }
  return { runs, withDirOps };
}
