import type { ConfChange, Membership, NodeId } from './types.js';

/**
 * Membership changes one server at a time (Raft thesis §4.1): any majority
 * of the old voters overlaps any majority of the new, so no joint phase is
 * needed, provided only one change is in flight and a new leader first
 * commits an entry of its own term (the fix from the thesis errata).
 */

export function isVoter(m: Membership, id: NodeId): boolean {
  return m.voters.includes(id);
}

export function isLearner(m: Membership, id: NodeId): boolean {
  return m.learners.includes(id);
}

export function isMember(m: Membership, id: NodeId): boolean {
  return isVoter(m, id) || isLearner(m, id);
}

export function members(m: Membership): NodeId[] {
  return [...m.voters, ...m.learners];
}

/** Why `change` cannot apply to `m`, or null when it can. */
export function validateConfChange(m: Membership, change: ConfChange): string | null {
  const id = change.node;
  if (id === '') return 'the node id must not be empty';
  switch (change.type) {
    case 'addLearner':
      if (isVoter(m, id)) return `${id} is already a voter; remove it first to make it a learner`;
      if (isLearner(m, id)) return `${id} is already a learner`;
      return null;
    case 'addVoter':
      if (isVoter(m, id)) return `${id} is already a voter`;
      return null;
    case 'removeNode':
      if (!isMember(m, id)) return `${id} is not a member`;
      if (isVoter(m, id) && m.voters.length === 1) {
        return `${id} is the last voter; a cluster needs at least one`;
      }
      return null;
  }
}

/** Applies a change that `validateConfChange` accepted; applying a duplicate is a no-op. */
export function applyConfChange(m: Membership, change: ConfChange): Membership {
  const id = change.node;
  const voters = m.voters.filter((v) => v !== id);
  const learners = m.learners.filter((v) => v !== id);
  switch (change.type) {
    case 'addLearner':
      return isVoter(m, id) ? m : { voters, learners: [...learners, id] };
    case 'addVoter':
      return { voters: [...voters, id], learners };
    case 'removeNode':
      return { voters, learners };
  }
}
