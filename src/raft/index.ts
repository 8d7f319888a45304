/**
 * Tandem's Raft consensus core: a deterministic state machine with no I/O.
 * See `RaftNode` for the driving loop and `Ready` for the runtime contract.
 */
export { AssertionError, assert } from './assert.js';
export type { PersistedState, RaftConfig, RaftConfigInput, ReadMode } from './config.js';
export { bootstrapState, defaultConfig, joiningState, resolveConfig } from './config.js';
export {
  applyConfChange,
  isLearner,
  isMember,
  isVoter,
  members,
  validateConfChange,
} from './membership.js';
export type * from './messages.js';
export type { Random } from './prng.js';
export { Prng } from './prng.js';
export { majority, quorumValue, voteOutcome } from './quorum.js';
export type { FollowerStatus, Status } from './raft.js';
export { RaftNode } from './raft.js';
export type { Ready } from './ready.js';
export type { ProposeResult, Refusal, RequestResult } from './results.js';
export type { Rules } from './rules.js';
export { raftRules } from './rules.js';
export type * from './types.js';
export { entryBytes, logIndex, nodeId, noNode, term } from './types.js';
