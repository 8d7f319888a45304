/**
 * Messages exchanged between members. A discriminated union: each kind
 * carries only its own fields. `term` is the sender's current term, except
 * where noted (§5.1: every RPC carries the sender's term).
 */
import type { Entry, LogIndex, NodeId, SnapshotMeta, Term } from './types.js';

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
}

/** AppendEntries (§5.3). */
export interface AppendMessage extends Envelope {
  readonly type: 'append';
  readonly prevIndex: LogIndex;
  readonly prevTerm: Term;
  readonly entries: readonly Entry[];
  readonly commit: LogIndex;
}

/** AppendEntries success: the follower's log matches the leader's up to `matchIndex`. */
export interface AppendAcceptMessage extends Envelope {
  readonly type: 'appendAccept';
  readonly matchIndex: LogIndex;
}

/**
 * AppendEntries failure with a back-off hint (§5.3, "the follower can include
 * the term of the conflicting entry and the first index it stores for that
 * term"). `hintTerm` is the term of the follower's entry at `hintIndex`, or 0
 * when the follower's log ends before `rejectedIndex` (then `hintIndex` is
 * its last index + 1). Term 0 is otherwise only the term of the bootstrap
 * entries, which are committed everywhere and so never conflict.
 */
export interface AppendRejectMessage extends Envelope {
  readonly type: 'appendReject';
  readonly rejectedIndex: LogIndex;
  readonly hintIndex: LogIndex;
  readonly hintTerm: Term;
}

/**
 * Leader liveness and commit propagation; `seq` identifies the round (§6.4).
 * `commit` is at most the receiver's known match, so no log check is needed.
 * A heartbeat with seq `commitNoticeSeq` only spreads the commit index and
 * wants no answer (see Raft.sendCommitNotices).
 */
export interface HeartbeatMessage extends Envelope {
  readonly type: 'heartbeat';
  readonly commit: LogIndex;
  readonly seq: number;
}

/** The seq of a commit notice; read rounds are numbered from 1. */
export const commitNoticeSeq = 0;

export interface HeartbeatResponseMessage extends Envelope {
  readonly type: 'heartbeatResponse';
  readonly seq: number;
}

/**
 * RequestVote (§5.2) and PreVote (thesis §9.6). For a pre-vote, `term` is the
 * term the sender would campaign in, not its current term.
 */
export interface VoteMessage extends Envelope {
  readonly type: 'vote' | 'preVote';
  readonly lastIndex: LogIndex;
  readonly lastTerm: Term;
  /** Set when campaigning because of a leadership transfer (§3.10): overrides the lease. */
  readonly transfer: boolean;
}

export interface VoteResponseMessage extends Envelope {
  readonly type: 'voteResponse' | 'preVoteResponse';
  readonly granted: boolean;
}

/** InstallSnapshot (§7); the runtime attaches and streams the bytes. */
export interface SnapshotMessage extends Envelope {
  readonly type: 'snapshot';
  readonly snapshot: SnapshotMeta;
}

/** Tells the transfer target to campaign at once (§3.10). */
export interface TimeoutNowMessage extends Envelope {
  readonly type: 'timeoutNow';
}

/** A follower asks the leader for a read index (§6.4). */
export interface ReadIndexMessage extends Envelope {
  readonly type: 'readIndex';
  readonly context: string;
}

export interface ReadIndexResponseMessage extends Envelope {
  readonly type: 'readIndexResponse';
  readonly context: string;
  readonly index: LogIndex;
}

export type Message =
  | AppendMessage
  | AppendAcceptMessage
  | AppendRejectMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | SnapshotMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage;

export type MessageType = Message['type'];
