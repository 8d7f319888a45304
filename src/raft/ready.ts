import type { Message } from './messages.js';
import type { Entry, HardState, ReadState, SnapshotMeta, SoftState } from './types.js';

/**
 * Everything the core wants done, handed out by `RaftNode.ready()` and
 * acknowledged, in order, by `RaftNode.advance(ready)`. The runtime:
 * 1. persists `snapshot` (if any), then `entries` (the first entry's index may
 *    be at or below what is already stored: truncate from there first), then
 *    `hardState`; syncs when `mustSync`;
 * 2. sends `messages` at once (they do not depend on this persist; the leader
 *    may thus replicate in parallel with its own fsync, thesis §10.2.1), and
 *    `messagesAfterPersist` only once step 1 is durable (all messages wait
 *    while the node's current term is not yet durable);
 * 3. installs the snapshot into the state machine, applies `committedEntries`
 *    in order, and serves `readStates` once applied reaches their index;
 * 4. calls `advance(ready)`.
 * Several Readys may be in flight; they must be persisted and advanced in the
 * order they were handed out.
 */
export interface Ready {
  /** Set when role or leader changed since the last Ready. */
  readonly softState: SoftState | null;
  /** Set when term, vote or commit changed since the last Ready. */
  readonly hardState: HardState | null;
  readonly snapshot: SnapshotMeta | null;
  readonly entries: readonly Entry[];
  /** True when entries, term or vote changed: commit alone needs no fsync. */
  readonly mustSync: boolean;
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
}
