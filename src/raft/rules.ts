import type { MessageType } from './messages.js';
import { quorumValue } from './quorum.js';
import type { NodeId, Term } from './types.js';

/**
 * The decision rules of Raft that safety rests on, as small pure functions.
 * The core calls them through this table so the test suite can substitute a
 * deliberately broken rule and show that the checkers catch it; production
 * code always uses `raftRules`.
 */
export interface Rules {
  /** §5.1: a message from an older term is stale and must be ignored. */
  isStale(type: MessageType, messageTerm: Term, currentTerm: Term): boolean;
  /**
   * §5.2: a node grants at most one vote per term. A pre-vote (thesis §9.6)
   * changes nothing, so it may be granted for a future term regardless.
   */
  mayVoteFor(
    candidate: NodeId,
    vote: NodeId,
    leader: NodeId,
    isPreVoteForLaterTerm: boolean,
  ): boolean;
  /** §5.4.1: only a candidate whose log is at least as up-to-date may win. */
  isUpToDate(
    candidateLastIndex: number,
    candidateLastTerm: Term,
    lastIndex: number,
    lastTerm: Term,
  ): boolean;
  /** §5.3: the consistency check of AppendEntries. */
  logMatches(termAtPrevIndex: Term | undefined, prevTerm: Term): boolean;
  /** The highest value a majority of voters has reached (commit and read confirmation). */
  quorumValue(values: readonly number[]): number;
  /** §5.4.2: only entries of the leader's current term are committed by counting replicas. */
  mayCommitByCounting(entryTerm: Term, currentTerm: Term): boolean;
}

export const raftRules: Rules = Object.freeze({
  isStale: (_type, messageTerm, currentTerm) => messageTerm < currentTerm,
  mayVoteFor: (candidate, vote, leader, isPreVoteForLaterTerm) =>
    vote === candidate || (vote === '' && leader === '') || isPreVoteForLaterTerm,
  isUpToDate: (candidateLastIndex, candidateLastTerm, lastIndex, lastTerm) =>
    candidateLastTerm > lastTerm ||
    (candidateLastTerm === lastTerm && candidateLastIndex >= lastIndex),
  logMatches: (termAtPrevIndex, prevTerm) => termAtPrevIndex === prevTerm,
  quorumValue,
  mayCommitByCounting: (entryTerm, currentTerm) => entryTerm === currentTerm,
} satisfies Rules);
