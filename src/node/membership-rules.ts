/**
 * The operator-facing rules of membership changes (issue 5), as pure
 * functions the leader applies before it proposes a change:
 *
 * - a change must leave a quorum of healthy voters (a majority of the new
 *   voter set that the leader hears from), else it is refused unless forced:
 *   removing a healthy voter while another is down, or adding a voter that
 *   is not caught up, could stop the cluster from committing anything;
 * - a learner is promoted automatically once it is caught up (its match
 *   index within `lagMax` entries of the leader's last index) and active,
 *   unless its registry record asks it to stay a learner.
 *
 * The Raft core enforces the safety rules (one change at a time, a leader's
 * own-term entry first); these only keep an operator from hurting
 * availability by mistake.
 */

import type { NodeId } from '../raft/types.js';

export interface VoterHealth {
  /** Current voters. */
  readonly voters: readonly NodeId[];
  /** Voters the leader hears from (itself included). */
  readonly healthy: ReadonlySet<NodeId>;
}

export interface FollowerHealthView {
  readonly id: NodeId;
  /** The follower's match index, as the leader tracks it. */
  readonly match: number;
  /** The leader heard from it within the last election timeout. */
  readonly active: boolean;
}

/**
 * The leader's view of which voters are healthy: itself, and each follower
 * it hears from that is a voter, or a learner caught up to within one entry
 * of `lastIndex` (a learner about to be promoted). `unfit` marks members
 * known to be unreliable (a disk that went bad), never counted healthy.
 */
export function voterHealth(
  leader: NodeId,
  voters: readonly NodeId[],
  followers: readonly FollowerHealthView[],
  lastIndex: number,
  unfit: (id: NodeId) => boolean = () => false,
): VoterHealth {
  const healthy = new Set<NodeId>([leader]);
  for (const f of followers) {
    if (!f.active || unfit(f.id)) continue;
    if (voters.includes(f.id) || f.match >= lastIndex - 1) healthy.add(f.id);
  }
  return { voters, healthy };
}

export type MembershipChange =
  | { readonly type: 'addVoter'; readonly node: NodeId }
  | { readonly type: 'removeNode'; readonly node: NodeId };

/** Why `change` would leave no healthy quorum, or null if it is safe for availability. */
export function quorumProblem(health: VoterHealth, change: MembershipChange): string | null {
  const after =
    change.type === 'addVoter'
      ? [...new Set([...health.voters, change.node])]
      : health.voters.filter((v) => v !== change.node);
  if (after.length === 0) return `removing ${change.node} would leave no voter`;
  const healthyAfter = after.filter((v) => health.healthy.has(v)).length;
  const majority = Math.floor(after.length / 2) + 1;
  if (healthyAfter >= majority) return null;
  const verb = change.type === 'addVoter' ? 'adding' : 'removing';
  return (
    `${verb} ${change.node} would leave ${after.length} voters of which ${healthyAfter} are ` +
    `reachable and caught up, short of the ${majority} a quorum needs, so the cluster could not ` +
    'commit anything: bring the unreachable voters back first, or pass --force if they are gone for good'
  );
}

export interface LearnerProgress {
  readonly id: NodeId;
  readonly match: number;
  readonly active: boolean;
}

/** The learner to promote now, or null: caught up, active, and not asked to stay a learner. */
export function learnerToPromote(
  learners: readonly LearnerProgress[],
  lastIndex: number,
  lagMax: number,
  staysLearner: (id: NodeId) => boolean,
): NodeId | null {
  for (const l of learners) {
    if (!l.active || staysLearner(l.id)) continue;
    if (lastIndex - l.match <= lagMax) return l.id;
  }
  return null;
}

export interface FollowerView {
  readonly id: NodeId;
  readonly match: number;
  readonly active: boolean;
}

/**
 * The voter to hand leadership to: active before inactive, then the most
 * caught-up; undefined with no other voter.
 */
export function bestTransferee(info: {
  readonly id: NodeId;
  readonly voters: readonly NodeId[];
  readonly followers: readonly FollowerView[];
}): NodeId | undefined {
  let best: FollowerView | undefined;
  for (const f of info.followers) {
    if (!info.voters.includes(f.id) || f.id === info.id) continue;
    if (
      best === undefined ||
      (f.active && !best.active) ||
      (f.active === best.active && f.match > best.match)
    )
      best = f;
  }
  return best?.id;
}
