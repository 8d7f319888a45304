/**
 * The child process of wal-sigkill.test.ts: takes the data directory's lock,
 * recovers the WAL, checks what it recovered, then appends forever (until
 * SIGKILLed), reporting on stdout each index that became durable.
 *
 *   node --import tsx test/wal-child.ts DATA_DIR
 *
 * Lines written (stdout to a pipe is synchronous on Linux, so a line written
 * is the parent's to read even if SIGKILL follows at once):
 *   recovered <firstIndex> <lastIndex> <commit>  after recovery was verified
 *   durable <index>                               each time an append resolves
 *   error <message>                               then exit code 1
 */

import { join } from 'node:path';
import type { Entry, HardState } from '../src/raft/types.js';
import { logIndex, nodeId, term } from '../src/raft/types.js';
import { NodeFileSystem } from '../src/storage/node-fs.js';
import { Wal } from '../src/storage/wal.js';
import { runAsChild, say } from './kill-loop.js';

/** Small segments, so kills also land on rotations. */
export const childSegmentBytesMax = 256 * 1024;
/** Appends in flight at once, so group commit gathers several per fdatasync. */
const appendersInFlight = 4;
const entriesPerAppendMax = 8;
/** The child ends itself if the parent never kills it. */
const lifetimeMsMax = 30_000;

/** The payload of the entry at `index`: its length and bytes follow from the index alone. */
export function payloadFor(index: number): Buffer {
  const lengthBytes = 8 + ((index * 7919) % 1000);
  const data = Buffer.alloc(lengthBytes);
  data.writeUInt32LE(index >>> 0, 0);
  data.writeUInt32LE(Math.floor(index / 2 ** 32), 4);
  for (let i = 8; i < lengthBytes; i++) data[i] = (index * 31 + i) & 0xff;
  return data;
}

/** `count` entries of term 1 from `first` on, with their payloads. */
export function entriesFrom(first: number, count: number): Entry[] {
  return Array.from({ length: count }, (_, i) => ({
    kind: 'normal' as const,
    index: logIndex(first + i),
    term: term(1),
    data: payloadFor(first + i),
  }));
}

/** Why the recovered log is wrong, or null when it is contiguous from 1 with the right payloads. */
export function checkRecovered(entries: readonly Entry[]): string | null {
  for (const [i, entry] of entries.entries()) {
    if (entry.index !== i + 1) return `entry at position ${i} has index ${entry.index}`;
    if (entry.kind !== 'normal') return `entry ${entry.index} is a ${entry.kind} entry`;
    if (!payloadFor(entry.index).equals(entry.data)) return `entry ${entry.index} payload differs`;
  }
  return null;
}

export function walDir(dataDir: string): string {
  return join(dataDir, 'wal');
}

async function main(dataDir: string): Promise<void> {
  const fs = new NodeFileSystem();
  await fs.mkdir(dataDir);
  await fs.lock(dataDir); // held until the process dies
  const { wal, entries, hardState } = await Wal.open(fs, walDir(dataDir), {
    segmentBytesMax: childSegmentBytesMax,
    onFatal: (error) => {
      say(`error ${error.message}`);
      process.exit(1);
    },
  });
  const problem = checkRecovered(entries);
  const lastIndex = entries.length;
  const commit = hardState?.commit ?? 0;
  if (problem === null && commit > lastIndex) {
    throw new Error(`hard state commit ${commit} beyond last index ${lastIndex}`);
  }
  if (problem !== null) throw new Error(problem);
  say(`recovered ${entries[0]?.index ?? 0} ${lastIndex} ${commit}`);

  let nextIndex = lastIndex + 1;
  let appends = 0;
  const appender = async (): Promise<never> => {
    for (;;) {
      const count = 1 + (appends++ % entriesPerAppendMax);
      const batch = entriesFrom(nextIndex, count);
      nextIndex += count;
      const last = batch[batch.length - 1] as Entry;
      // Now and then a hard state rides along, committing what is already durable.
      const hs: HardState | null =
        appends % 16 === 0
          ? { term: term(1), vote: nodeId('n1'), commit: logIndex(last.index - count) }
          : null;
      await wal.append(batch, hs);
      say(`durable ${last.index}`);
    }
  };
  await Promise.all(Array.from({ length: appendersInFlight }, appender));
}

runAsChild(import.meta.url, lifetimeMsMax, main);
