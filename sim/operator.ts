/**
 * The simulated operator: changes membership one server at a time through
 * the leader, with the rules the real admin commands apply
 * (src/node/membership-rules.ts, as src/node/membership-admin.ts uses them):
 * add a brand-new node as a learner; promote a learner once the leader sees
 * it caught up and active (the automatic promotion), unless that would leave
 * no healthy quorum; remove a member, refused when that would leave no
 * healthy quorum (forced now and then, as an operator with `--force` would,
 * but never while a voter's disk is at risk); hand leadership over before
 * removing the leader; and shut a removed node down once its removal is
 * committed.
 */
import {
  bestTransferee,
  type FollowerHealthView,
  learnerToPromote,
  quorumProblem,
  type VoterHealth,
  voterHealth,
} from '../src/node/membership-rules.js';
import type { Prng } from '../src/raft/prng.js';
import type { ConfChange, Entry, NodeId } from '../src/raft/types.js';
import type { SimStatus as Status } from './raft-core.js';
import type { SimNode } from './sim-node.js';
import type { World } from './world.js';

interface PendingChange {
  readonly term: number;
  readonly change: ConfChange;
}

/** A learner this close to the leader's commit counts as caught up. */
const caughtUpEntries = 5;
/** Bound on tracked proposals whose fate is still unknown. */
const pendingMax = 64;

export class Operator {
  private readonly pending = new Map<number, PendingChange>();

  constructor(
    private readonly world: World,
    private readonly random: Prng,
  ) {}

  /** One membership action, chosen among those that make sense right now. */
  act(): void {
    const leader = this.world.leader();
    const raft = leader?.raft;
    if (leader === undefined || raft === undefined || raft === null) {
      this.world.note('operator: no leader to change membership through');
      return;
    }
    const status = raft.status();
    const followers = followerViews(status);
    const health = voterHealth(
      leader.id,
      status.membership.voters,
      followers,
      status.lastIndex,
      (id) => this.unfit(id),
    );
    const actions: (() => void)[] = [];
    if (this.world.nodesCreated < this.world.options.nodesMax) actions.push(() => this.add(leader));
    const learners = followers.filter((f) => status.membership.learners.includes(f.id));
    const promotable = learnerToPromote(learners, status.lastIndex, caughtUpEntries, (id) =>
      this.unfit(id),
    );
    if (promotable !== null) actions.push(() => this.promote(leader, health, promotable));
    const members = [...status.membership.voters, ...status.membership.learners];
    if (members.length > 1) {
      actions.push(() => this.remove(leader, status, health, this.pick(members)));
    }
    if (actions.length === 0) return;
    const action = actions[this.random.int(actions.length)];
    action?.();
  }

  /** Every applied membership entry passes here: it is committed. */
  onConfApplied(entry: Entry): void {
    if (entry.kind !== 'conf') return;
    const pending = this.pending.get(entry.index);
    if (pending !== undefined) {
      this.pending.delete(entry.index);
      if (pending.term !== entry.term) this.onFailed(pending.change);
    }
    if (entry.change.type === 'removeNode') {
      const removed = this.world.node(entry.change.node);
      if (removed !== undefined && !removed.stopped) {
        // Not from inside the applying node's own callback: on the next event.
        this.world.later(this.world.nowMs, () => {
          if (!removed.stopped) this.world.stopNode(removed, 'shut down: its removal is committed');
        });
      }
    }
  }

  private add(leader: SimNode): void {
    const node = this.world.createJoiningNode();
    if (node === undefined) return;
    this.propose(leader, { type: 'addLearner', node: node.id });
  }

  /** The automatic promotion's rule: no promotion that leaves no healthy quorum. */
  private promote(leader: SimNode, health: VoterHealth, id: NodeId): void {
    const problem = quorumProblem(health, { type: 'addVoter', node: id });
    if (problem !== null) {
      this.world.note(`operator: promote ${id} refused: ${problem}`);
      return;
    }
    this.propose(leader, { type: 'addVoter', node: id });
  }

  /**
   * `tandem members remove`: the leader hands leadership over first; a voter
   * whose removal leaves no healthy quorum is refused, unless the operator
   * forces it (a disk lost for good, or now and then when no voter's disk
   * is at risk: forcing then could strand the cluster for good).
   */
  private remove(leader: SimNode, status: Status, health: VoterHealth, id: NodeId): void {
    if (id === leader.id) {
      const to = bestTransferee({
        id: leader.id,
        voters: status.membership.voters,
        followers: followerViews(status),
      });
      if (to === undefined) return;
      const result = leader.transferLeadership(to);
      const outcome = result.ok ? 'started' : `refused: ${result.refusal.message}`;
      this.world.note(`operator: remove ${id}: hand leadership to ${to} first: ${outcome}`);
      return;
    }
    const voter = status.membership.voters.includes(id);
    const problem = voter ? quorumProblem(health, { type: 'removeNode', node: id }) : null;
    if (problem !== null) {
      const atRisk = status.membership.voters.some((v) => this.unfit(v));
      const force = this.unfit(id) || (!atRisk && this.random.int(4) === 0);
      this.world.note(`operator: remove ${id} refused: ${problem}${force ? ' (forced)' : ''}`);
      if (!force) return;
    }
    this.propose(leader, { type: 'removeNode', node: id });
  }

  private propose(leader: SimNode, change: ConfChange): void {
    const result = leader.proposeConfChange(change);
    const what = `${change.type} ${change.node} via ${leader.id}`;
    if (!result.ok) {
      this.world.note(`operator: ${what} refused: ${result.refusal.message}`);
      this.onFailed(change);
      return;
    }
    this.world.note(`operator: ${what} proposed at ${result.index}@${result.term}`);
    if (this.pending.size >= pendingMax) {
      const oldest = this.pending.keys().next().value;
      if (oldest !== undefined) this.pending.delete(oldest);
    }
    this.pending.set(result.index, { term: result.term, change });
  }

  /** The change can never take effect: a node created for it is shut down again. */
  private onFailed(change: ConfChange): void {
    if (change.type !== 'addLearner') return;
    const node = this.world.node(change.node);
    if (node !== undefined && !node.stopped) {
      this.world.later(this.world.nowMs, () => {
        if (!node.stopped) this.world.stopNode(node, 'shut down: its addition failed');
      });
    }
  }

  /** Never to be counted on: its disk was lost or went bad (see Nemesis.diskCorrupt). */
  private unfit(id: NodeId): boolean {
    const node = this.world.node(id);
    return node === undefined || node.lost || node.disk.everCorrupted;
  }

  private pick(ids: readonly NodeId[]): NodeId {
    return ids[this.random.int(ids.length)] as NodeId;
  }
}

/** The leader's view of each follower, as the admin rules read it. */
function followerViews(status: Status): FollowerHealthView[] {
  const views: FollowerHealthView[] = [];
  for (const [id, pr] of status.progress) {
    if (id !== status.id) views.push({ id, match: pr.match, active: pr.recentActive });
  }
  return views;
}
