/**
 * The part of the consensus core's API the simulator drives. `RaftNode`
 * (src/raft/raft.ts) satisfies it structurally; a test harness may pass any
 * other implementation (e.g. one with deliberately broken policies) through
 * `MakeNode`.
 */
import type { PersistedState, RaftConfigInput } from '../src/raft/config.js';
import type { Message } from '../src/raft/messages.js';
import type { Status } from '../src/raft/raft.js';
import type { Ready } from '../src/raft/ready.js';
import type { ProposeResult, RequestResult } from '../src/raft/results.js';
import type { ConfChange, Entry, LogIndex, NodeId } from '../src/raft/types.js';

/** The part of the core's `Status` the simulator reads. */
export type SimStatus = Pick<
  Status,
  | 'id'
  | 'role'
  | 'term'
  | 'vote'
  | 'leader'
  | 'commit'
  | 'applied'
  | 'firstIndex'
  | 'lastIndex'
  | 'membership'
  | 'snapshot'
  | 'progress'
>;

export interface SimRaft {
  tick(): void;
  step(m: Message): void;
  propose(data: Uint8Array): ProposeResult;
  proposeConfChange(change: ConfChange): ProposeResult;
  readIndex(context: string): RequestResult;
  transferLeadership(to: NodeId): RequestResult;
  spreadCommit(): void;
  hasUntoldCommit(): boolean;
  compact(index: LogIndex): void;
  reportSnapshot(to: NodeId, ok: boolean): void;
  reportUnreachable(to: NodeId): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(rd: Ready): void;
  status(): SimStatus;
  entry(index: LogIndex): Entry | undefined;
}

export type MakeNode = (config: RaftConfigInput, persisted: PersistedState) => SimRaft;
