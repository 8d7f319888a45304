/**
 * `tandem node ... --force-new-cluster` (issue 5): after the permanent loss
 * of a majority, start a one-node cluster from this node's data.
 *
 * Before the node starts: the state machine is rebuilt from the newest
 * snapshot and every entry of the log (entries this node never saw
 * committed are kept too: they were never acknowledged as committed, so
 * taking effect is allowed, and if the lost majority did commit them this
 * keeps them), then saved as a snapshot at the log's last index whose
 * membership is this node alone; the WAL restarts after it. The member
 * registry keeps only this node's record. The node then starts, elects
 * itself, and others join with `--join` (with new data directories).
 *
 * This throws away the lost members' votes: it is safe only if they are
 * truly gone. The caller logs it loudly.
 */

import { join } from 'node:path';
import type { Logger } from 'pino';
import { applyConfChange } from '../raft/membership.js';
import { logIndex, type NodeId, type SnapshotMeta, term } from '../raft/types.js';
import type { FileSystem } from '../storage/fs.js';
import { RaftStorage } from '../storage/raft-storage.js';
import { NodeMachine } from './node-machine.js';
import { startFromSnapshot } from './restore.js';

export async function forceNewCluster(
  fs: FileSystem,
  dataDir: string,
  self: NodeId,
  log: Logger,
): Promise<SnapshotMeta> {
  const opened = await RaftStorage.open(fs, dataDir);
  try {
    const { storage, persisted } = opened;
    const machine = new NodeMachine(join(dataDir, 'blobs'));
    let membership = persisted.snapshot.membership;
    if (persisted.snapshot.index > 0) {
      await machine.restore(await storage.openSnapshot(persisted.snapshot));
    }
    let index = persisted.snapshot.index;
    let lastTerm = persisted.snapshot.term;
    for (const entry of persisted.entries) {
      if (entry.kind === 'conf') membership = applyConfChange(membership, entry.change);
      else if (entry.data.length > 0) machine.apply(entry.index, entry.data);
      index = entry.index;
      lastTerm = entry.term;
    }
    if (index === 0) {
      throw new Error(`data directory ${dataDir} holds no state to start a new cluster from`);
    }
    // Only this node's own record stays (if it has one); alarms go too.
    for (const record of machine.registry.all()) {
      if (record.id !== self) machine.registry.delete(record.id);
    }
    for (const alarm of machine.registry.alarms()) machine.registry.clear(alarm.id);
    const snapshot: SnapshotMeta = {
      index: logIndex(index),
      term: term(lastTerm),
      membership: { voters: [self], learners: [] },
    };
    log.warn(
      {
        previousVoters: membership.voters,
        previousLearners: membership.learners,
        index,
        term: lastTerm,
      },
      `FORCE-NEW-CLUSTER: ${self} now forms a one-node cluster from its own data; every other ` +
        'member is dropped and must rejoin with a new data directory (--join)',
    );
    await storage.receiveSnapshot(snapshot, machine.snapshot('fresh'));
    const hardTerm = Math.max(persisted.hardState.term, lastTerm);
    await storage.persist(startFromSnapshot(snapshot, term(hardTerm)));
    return snapshot;
  } finally {
    await opened.storage.close();
  }
}
