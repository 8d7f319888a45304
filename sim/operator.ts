/**
 * The simulated operator: changes membership one server at a time, the way
 * a person with the admin commands would: add a brand-new node as a
 * learner, promote it once caught up, remove a voter or learner (never the
 * last voter), and shut a removed node down once its removal is committed.
 */
import type { Prng } from '../src/raft/prng.js';
import type { ConfChange, Entry, Membership, NodeId } from '../src/raft/types.js';
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
    const actions: (() => void)[] = [];
    if (this.world.nodesCreated < this.world.options.nodesMax) actions.push(() => this.add(leader));
    const promotable = status.membership.learners.filter((id) => this.caughtUp(id, status.commit));
    if (promotable.length > 0) actions.push(() => this.promote(leader, this.pick(promotable)));
    const removable = removableMembers(status.membership, (id) => {
      const node = this.world.node(id);
      return node === undefined || node.lost || node.disk.everCorrupted;
    });
    if (removable.length > 0) actions.push(() => this.remove(leader, this.pick(removable)));
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

  private promote(leader: SimNode, id: NodeId): void {
    this.propose(leader, { type: 'addVoter', node: id });
  }

  private remove(leader: SimNode, id: NodeId): void {
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

  private caughtUp(id: NodeId, commit: number): boolean {
    const node = this.world.node(id);
    // A node with a bad sector may lose its disk: never made a voter (see Nemesis.diskCorrupt).
    return (
      node?.up === true && !node.disk.everCorrupted && node.applied + caughtUpEntries >= commit
    );
  }

  private pick(ids: readonly NodeId[]): NodeId {
    return ids[this.random.int(ids.length)] as NodeId;
  }
}

/**
 * Learners, and voters as long as one voter remains. While some voters may
 * have lost their disk (`atRisk`), a healthy voter is removable only if the
 * healthy ones left still form a majority (else the lost ones could never be
 * removed).
 */
function removableMembers(m: Membership, atRisk: (id: NodeId) => boolean): NodeId[] {
  if (m.voters.length <= 1) return [...m.learners];
  const risky = m.voters.filter(atRisk).length;
  const voters = m.voters.filter((id) => atRisk(id) || 2 * risky < m.voters.length - 1);
  return [...voters, ...m.learners];
}
