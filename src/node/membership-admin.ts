/**
 * Membership operations an operator asks the leader for (issue 5): add a
 * member as a learner (registering its addresses first), promote a learner,
 * remove a member, and the leader's automatic promotion of caught-up
 * learners. Each checks the availability rules of membership-rules.ts,
 * then proposes through the log; the Raft core enforces one change at a
 * time. Answers say what happened or why not, for the HTTP API to relay.
 */

import type { Logger } from 'pino';
import type { Reply } from '../kv/reply.js';
import type { ConfChange, NodeId } from '../raft/types.js';
import { nodeId } from '../raft/types.js';
import {
  type MemberEntry,
  type MemberRecord,
  type MemberRegistry,
  sameRecord,
} from './member-registry.js';
import {
  learnerToPromote,
  quorumProblem,
  type VoterHealth,
  voterHealth,
} from './membership-rules.js';
import { RaftRefusedError } from './raft-driver.js';

/** What the operations need from the node. */
export interface MembershipHost {
  readonly id: NodeId;
  readonly isLeader: boolean;
  readonly registry: MemberRegistry;
  view(): MembershipView;
  proposeMember(entry: MemberEntry): Promise<Reply>;
  proposeConfChange(change: ConfChange): Promise<void>;
  readonly log: Logger;
}

export interface MembershipView {
  readonly leader: NodeId;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly lastIndex: number;
  /** The leader's view of each follower. */
  readonly followers: readonly { id: NodeId; match: number; active: boolean }[];
}

export type AdminAnswer =
  | { readonly ok: true; readonly message: string }
  | {
      readonly ok: false;
      /** HTTP status: 404 unknown, 409 refused, 421 not the leader, 503 try again. */
      readonly status: 404 | 409 | 421 | 503;
      readonly error: string;
    };

const notLeader = (host: MembershipHost): AdminAnswer => ({
  ok: false,
  status: 421,
  error: `${host.id} is not the leader (leader: ${host.view().leader || 'none yet'}); ask the leader`,
});

/**
 * Adds `record`'s node as a learner, registering its addresses first.
 * Repeating it is harmless; a member known by another data directory is
 * refused (it must be removed first).
 */
export async function addMember(host: MembershipHost, given: MemberRecord): Promise<AdminAnswer> {
  if (!host.isLeader) return notLeader(host);
  const id = nodeId(given.id);
  const view = host.view();
  const member = view.voters.includes(id) || view.learners.includes(id);
  const known = host.registry.get(given.id);
  // An operator's `members add` names no incarnation, and a joining node does
  // not say whether it was added as a learner to stay one: keep what is known.
  let record = given;
  if (known !== undefined && given.incarnation === '') {
    record = { ...record, incarnation: known.incarnation };
  }
  if (known?.learner === true && given.learner === undefined) record = { ...record, learner: true };
  if (
    member &&
    known !== undefined &&
    known.incarnation !== '' &&
    known.incarnation !== record.incarnation
  ) {
    return {
      ok: false,
      status: 409,
      error:
        `${record.id} is a member known by another data directory (incarnation ${known.incarnation}); ` +
        `remove it first (tandem members remove ${record.id}), then add it again`,
    };
  }
  if (known === undefined || !sameRecord(known, record)) {
    const reply = await host.proposeMember({ kind: 'set', record });
    if (reply.kind === 'error') return { ok: false, status: 503, error: reply.message };
  }
  if (member)
    return { ok: true, message: `${record.id} is already a member; addresses up to date` };
  return change(host, { type: 'addLearner', node: id }, `${record.id} added as a learner`);
}

/** Makes learner `id` a voter; refused if that would leave no healthy quorum, unless forced. */
export async function promoteMember(
  host: MembershipHost,
  id: NodeId,
  force: boolean,
): Promise<AdminAnswer> {
  if (!host.isLeader) return notLeader(host);
  const view = host.view();
  if (view.voters.includes(id)) return { ok: true, message: `${id} is already a voter` };
  if (!view.learners.includes(id)) {
    return { ok: false, status: 404, error: `${id} is not a member; add it first` };
  }
  const problem = force ? null : quorumProblem(health(host, view), { type: 'addVoter', node: id });
  if (problem !== null) return { ok: false, status: 409, error: problem };
  return change(host, { type: 'addVoter', node: id }, `${id} promoted to voter`);
}

/**
 * Removes member `id` and its registry record. The leader does not remove
 * itself (hand leadership over first); a removal that would leave no healthy
 * quorum is refused unless forced.
 */
export async function removeMember(
  host: MembershipHost,
  id: NodeId,
  force: boolean,
): Promise<AdminAnswer> {
  if (!host.isLeader) return notLeader(host);
  const view = host.view();
  const voter = view.voters.includes(id);
  const member = voter || view.learners.includes(id);
  if (!member && host.registry.get(id) === undefined) {
    return { ok: false, status: 404, error: `${id} is not a member` };
  }
  if (member && id === host.id) {
    return {
      ok: false,
      status: 409,
      error: `${id} is the leader: hand leadership over first (tandem failover), then remove it`,
    };
  }
  const problem =
    force || !voter ? null : quorumProblem(health(host, view), { type: 'removeNode', node: id });
  if (problem !== null) return { ok: false, status: 409, error: problem };
  if (member) {
    const removed = await change(host, { type: 'removeNode', node: id }, `${id} removed`);
    if (!removed.ok) return removed;
  }
  const reply = await host.proposeMember({ kind: 'delete', id });
  if (reply.kind === 'error') return { ok: false, status: 503, error: reply.message };
  return { ok: true, message: `${id} removed` };
}

/** On the leader: promotes one caught-up learner, if any; returns its id. */
export async function autoPromote(host: MembershipHost, lagMax: number): Promise<NodeId | null> {
  if (!host.isLeader) return null;
  const view = host.view();
  const learners = view.followers.filter((f) => view.learners.includes(f.id));
  const candidate = learnerToPromote(
    learners,
    view.lastIndex,
    lagMax,
    (id) => host.registry.get(id)?.learner === true,
  );
  if (candidate === null) return null;
  if (quorumProblem(health(host, view), { type: 'addVoter', node: candidate }) !== null)
    return null;
  const answer = await change(
    host,
    { type: 'addVoter', node: candidate },
    `${candidate} promoted to voter`,
  );
  if (!answer.ok) return null;
  host.log.info({ member: candidate, lagMax }, 'promoted a caught-up learner to voter');
  return candidate;
}

function health(host: MembershipHost, view: MembershipView): VoterHealth {
  return voterHealth(host.id, view.voters, view.followers, view.lastIndex);
}

async function change(host: MembershipHost, c: ConfChange, done: string): Promise<AdminAnswer> {
  try {
    await host.proposeConfChange(c);
    host.log.info({ change: c }, done);
    return { ok: true, message: done };
  } catch (failure) {
    if (!(failure instanceof RaftRefusedError)) throw failure;
    return { ok: false, status: 503, error: `TRYAGAIN ${failure.message}` };
  }
}
