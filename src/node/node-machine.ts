/**
 * The node's state machine: what the Raft driver applies committed entries
 * to. Kv entries go to the keyspace (src/kv), member entries to the member
 * registry (member-registry.ts); snapshots carry both.
 */

import { type ApplyResult, KvStateMachine } from '../kv/index.js';
import { simple } from '../kv/reply.js';
import type { LogIndex } from '../raft/types.js';
import {
  applyMemberEntry,
  decodeMemberEntry,
  encodeSnapshotHeader,
  isMemberEntry,
  MemberRegistry,
  readSnapshotHeader,
} from './member-registry.js';
import type { StateMachine } from './raft-driver.js';

const ok = simple('OK');

/**
 * The node's state machine behind the driver's interface: the kv keyspace,
 * and the member registry (member-registry.ts) whose entries share the log.
 * Restore swaps both.
 */
export class NodeMachine implements StateMachine<ApplyResult> {
  kv = new KvStateMachine();
  registry = new MemberRegistry();
  /** Called after the registry changed (an applied member entry, a restore). */
  onMembersChanged: () => void = () => undefined;

  apply(index: LogIndex, data: Uint8Array): ApplyResult {
    if (!isMemberEntry(data)) return this.kv.apply(index, data);
    applyMemberEntry(this.registry, decodeMemberEntry(data));
    this.onMembersChanged();
    return { reply: ok };
  }

  /** Captures the image now (copy-on-write); the chunks are produced as they are pulled. */
  snapshot(): AsyncIterable<Uint8Array> {
    const header = encodeSnapshotHeader(this.registry);
    const image = this.kv.snapshot();
    return (async function* () {
      try {
        yield header;
        for (const chunk of image) {
          yield chunk;
          // Let the event loop breathe between chunks; the image stays as of the capture.
          await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        image.close();
      }
    })();
  }

  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const { registry, rest } = await readSnapshotHeader(chunks);
    this.kv = await KvStateMachine.restoreAsync(rest);
    this.registry = registry;
    this.onMembersChanged();
  }
}
