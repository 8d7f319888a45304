/**
 * `tandem restore` (issue 5): makes a new data directory the first node of
 * a new cluster from a backup file. The node keeps the backup's state as a
 * snapshot at the backup's index, with itself as the only voter; the member
 * registry starts empty (the old cluster's addresses and identities do not
 * apply), and other nodes join with `--join`.
 *
 * Nothing becomes durable before the whole backup verified: the snapshot is
 * renamed into place only after the last chunk, which is when the checksum
 * is checked.
 */

import type { Ready } from '../raft/ready.js';
import { type NodeId, noNode, type SnapshotMeta, type Term } from '../raft/types.js';
import type { FileSystem } from '../storage/fs.js';
import { RaftStorage, RaftStorageError } from '../storage/raft-storage.js';
import { type BackupMeta, readBackup } from './backup.js';
import { encodeSnapshotHeader, MemberRegistry, readSnapshotHeader } from './member-registry.js';

export async function restoreBackup(
  fs: FileSystem,
  dataDir: string,
  backup: AsyncIterable<Uint8Array>,
  self: NodeId,
): Promise<{ backup: BackupMeta; snapshot: SnapshotMeta }> {
  const { meta, data } = await readBackup(backup);
  const opened = await RaftStorage.open(fs, dataDir);
  try {
    const p = opened.persisted;
    if (p.snapshot.index !== 0 || p.entries.length > 0 || p.hardState.term !== 0) {
      throw new RaftStorageError(
        `data directory ${dataDir} already holds a node's state: restore needs a new, empty one`,
      );
    }
    const { rest } = await readSnapshotHeader(data);
    const image = (async function* () {
      yield encodeSnapshotHeader(new MemberRegistry());
      yield* rest;
    })();
    const snapshot: SnapshotMeta = {
      index: meta.snapshot.index,
      term: meta.snapshot.term,
      membership: { voters: [self], learners: [] },
    };
    await opened.storage.receiveSnapshot(snapshot, image);
    await opened.storage.persist(startFromSnapshot(snapshot, snapshot.term));
    return { backup: meta, snapshot };
  } finally {
    await opened.storage.close();
  }
}

/**
 * The Ready that makes a stored snapshot the whole state: the log restarts
 * after it, committed up to it, in `hardTerm` (at least the snapshot's term)
 * with no vote.
 */
export function startFromSnapshot(snapshot: SnapshotMeta, hardTerm: Term): Ready {
  return {
    softState: null,
    hardState: { term: hardTerm, vote: noNode, commit: snapshot.index },
    snapshot,
    entries: [],
    mustSync: true,
    messages: [],
    messagesAfterPersist: [],
    committedEntries: [],
    readStates: [],
  };
}
