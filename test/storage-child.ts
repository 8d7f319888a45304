/**
 * The child process of storage-sigkill.test.ts: opens RaftStorage (data
 * directory lock, snapshots, WAL), checks what it recovered, then persists
 * entries and saves an application snapshot every so often, forever (until
 * SIGKILLed). Snapshots compact the WAL and retire older snapshots, so kills
 * land in every step of that too.
 *
 *   node --import tsx test/storage-child.ts DATA_DIR
 *
 * Lines written (stdout to a pipe is synchronous on Linux):
 *   recovered <snapshotIndex> <lastIndex> <commit>  after recovery was verified
 *   durable <index>                                  each time a persist resolves
 *   snapshot <index>                                 each time a snapshot is saved
 *   error <message>                                  then exit code 1
 */

import type { Entry, HardState, SnapshotMeta } from '../src/raft/types.js';
import { logIndex, nodeId, term } from '../src/raft/types.js';
import { NodeFileSystem } from '../src/storage/node-fs.js';
import { RaftStorage } from '../src/storage/raft-storage.js';
import { ready } from '../src/storage/raft-storage.test-util.js';
import { runAsChild, say } from './kill-loop.js';
import { entriesFrom, payloadFor } from './wal-child.js';

export const childSegmentBytesMax = 256 * 1024;
const appendersInFlight = 4;
const entriesPerPersistMax = 8;
/** A snapshot every this many durable entries. */
const snapshotEveryEntries = 300;
/** Snapshot images span several read chunks (64 KiB each here). */
const snapshotChunkBytes = 64 * 1024;
const lifetimeMsMax = 30_000;

/** The snapshot image at `index`: its bytes follow from the index alone. */
export function snapshotImageFor(index: number): Buffer {
  const lengthBytes = 200_000 + ((index * 104_729) % 100_000);
  const image = Buffer.alloc(lengthBytes);
  for (let i = 0; i < lengthBytes; i++) image[i] = (index * 13 + i * 7) & 0xff;
  image.writeUInt32LE(index >>> 0, 0);
  return image;
}

async function checkSnapshot(storage: RaftStorage, meta: SnapshotMeta): Promise<void> {
  if (meta.index === 0) return;
  const reader = await storage.openSnapshot(meta);
  const parts: Buffer[] = [];
  try {
    for await (const chunk of reader) parts.push(Buffer.from(chunk));
  } finally {
    await reader.close();
  }
  if (!Buffer.concat(parts).equals(snapshotImageFor(meta.index))) {
    throw new Error(`snapshot ${meta.index} holds the wrong image`);
  }
}

function checkEntries(entries: readonly Entry[], after: number): void {
  for (const [i, entry] of entries.entries()) {
    const expected = after + 1 + i;
    if (entry.index !== expected) throw new Error(`entry ${expected} is missing`);
    if (entry.kind !== 'normal' || !payloadFor(entry.index).equals(entry.data)) {
      throw new Error(`entry ${entry.index} payload differs`);
    }
  }
}

async function main(dataDir: string): Promise<void> {
  const fs = new NodeFileSystem();
  const { storage, persisted } = await RaftStorage.open(fs, dataDir, {
    wal: {
      segmentBytesMax: childSegmentBytesMax,
      onFatal: (error) => {
        say(`error ${error.message}`);
        process.exit(1);
      },
    },
    snapshots: { readChunkBytes: snapshotChunkBytes },
  });
  const { snapshot, entries, hardState } = persisted;
  await checkSnapshot(storage, snapshot);
  checkEntries(entries, snapshot.index);
  const lastIndex = snapshot.index + entries.length;
  say(`recovered ${snapshot.index} ${lastIndex} ${hardState.commit}`);

  let nextIndex = lastIndex + 1;
  let persists = 0;
  let snapshotAt: number = snapshot.index;
  let snapshotting = false;
  const maybeSnapshot = (durable: number): void => {
    if (snapshotting || durable - snapshotAt < snapshotEveryEntries) return;
    snapshotting = true;
    const meta: SnapshotMeta = {
      index: logIndex(durable),
      term: term(1),
      membership: { voters: [nodeId('n1')], learners: [] },
    };
    storage.saveSnapshot(meta, snapshotImageFor(durable)).then(
      () => {
        snapshotAt = durable;
        snapshotting = false;
        say(`snapshot ${durable}`);
      },
      (error: unknown) => {
        say(`error snapshot ${durable}: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  const persister = async (): Promise<never> => {
    for (;;) {
      const count = 1 + (persists++ % entriesPerPersistMax);
      const batch = entriesFrom(nextIndex, count);
      nextIndex += count;
      const last = (batch[batch.length - 1] as Entry).index;
      const hs: HardState = { term: term(1), vote: nodeId('n1'), commit: logIndex(last - count) };
      await storage.persist(ready({ entries: batch, hardState: hs }));
      say(`durable ${last}`);
      maybeSnapshot(last);
    }
  };
  await Promise.all(Array.from({ length: appendersInFlight }, persister));
}

runAsChild(import.meta.url, lifetimeMsMax, main);
