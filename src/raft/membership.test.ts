import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TestCluster } from './cluster.test-util.js';
import { joiningState } from './config.js';
import { applyConfChange, validateConfChange } from './membership.js';
import type { ConfChange, Membership } from './types.js';
import { nodeId } from './types.js';

const change = (type: ConfChange['type'], node: string): ConfChange => ({
  type,
  node: nodeId(node),
});

describe('membership changes, one server at a time (thesis §4.1)', () => {
  it('adds a learner that receives the log but never votes or counts', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.propose('n1', 'a');
    c.addNode('n4', joiningState());
    expect(c.raft('n1').proposeConfChange(change('addLearner', 'n4')).ok).toBe(true);
    c.deliver();
    c.tick('n1');
    c.deliver();
    expect(c.node('n4').applied).toEqual(['a']);
    expect(c.raft('n4').status().membership).toEqual({
      voters: ['n1', 'n2', 'n3'],
      learners: ['n4'],
    });
    // A learner never campaigns.
    c.tick('n4', 100);
    expect(c.raft('n4').status().role).toBe('follower');
    expect(c.raft('n4').status().term).toBe(1);
  });

  it('promotes a learner, which then counts toward the quorum', () => {
    const c = new TestCluster(['n1']);
    c.elect('n1');
    c.addNode('n2', joiningState());
    c.raft('n1').proposeConfChange(change('addLearner', 'n2'));
    c.deliver();
    expect(c.raft('n1').proposeConfChange(change('addVoter', 'n2')).ok).toBe(true);
    c.deliver();
    expect(c.raft('n1').status().membership.voters).toEqual(['n1', 'n2']);
    // With two voters, a write needs n2.
    c.isolate('n2');
    c.raft('n1').propose(new Uint8Array([1]));
    c.deliver();
    const before = c.raft('n1').status().commit;
    expect(c.raft('n1').status().lastIndex).toBe(before + 1);
    c.heal();
    c.tick('n1');
    c.deliver();
    expect(c.raft('n1').status().commit).toBe(before + 1);
  });

  it('allows one uncommitted change at a time', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n1');
    expect(c.raft('n1').proposeConfChange(change('addLearner', 'n4')).ok).toBe(true);
    const second = c.raft('n1').proposeConfChange(change('addLearner', 'n5'));
    expect(second.ok ? 'ok' : second.refusal.kind).toBe('confChangeInProgress');
  });

  it('refuses a change before the new leader committed an entry of its term', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n1');
    // n2 wins, but its no-op does not reach anyone yet.
    c.dropIf = (m) => m.type === 'append';
    c.elect('n2');
    const r = c.raft('n2').proposeConfChange(change('addLearner', 'n4'));
    expect(r.ok ? 'ok' : r.refusal.kind).toBe('leaderNotReady');
    c.dropIf = null;
    c.tick('n2');
    c.deliver();
    expect(c.raft('n2').proposeConfChange(change('addLearner', 'n4')).ok).toBe(true);
  });

  it('refuses invalid changes with a reason', () => {
    const c = new TestCluster(['n1']);
    c.elect('n1');
    const messages = [
      change('addVoter', 'n1'),
      change('removeNode', 'n1'),
      change('removeNode', 'n7'),
    ].map((ch) => {
      const r = c.raft('n1').proposeConfChange(ch);
      return r.ok ? 'ok' : r.refusal.message;
    });
    expect(messages).toEqual([
      'n1 is already a voter',
      'n1 is the last voter; a cluster needs at least one',
      'n7 is not a member',
    ]);
  });

  it('removes a follower, which stops counting', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.raft('n1').proposeConfChange(change('removeNode', 'n3'));
    c.deliver();
    c.tick('n1');
    c.deliver();
    expect(c.raft('n1').status().membership.voters).toEqual(['n1', 'n2']);
    expect([...c.raft('n1').status().progress.keys()]).toEqual(['n2']);
  });

  it('a leader that removes itself steps down once the removal commits (thesis §4.2.2)', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    expect(c.raft('n1').proposeConfChange(change('removeNode', 'n1')).ok).toBe(true);
    c.deliver();
    expect(c.raft('n1').status().role).toBe('follower');
    for (
      let i = 0;
      i < 40 && c.raft('n2').status().role !== 'leader' && c.raft('n3').status().role !== 'leader';
      i++
    ) {
      c.tick('n2');
      c.tick('n3');
      c.deliver();
    }
    const leader = ['n2', 'n3'].find((n) => c.raft(n).status().role === 'leader');
    expect(leader).toBeDefined();
    expect(c.raft('n1').status().role).toBe('follower');
  });

  it('a follower drops an uncommitted change when its entry is overwritten', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n1');
    c.raft('n1').proposeConfChange(change('addLearner', 'n9'));
    c.deliver();
    expect(c.raft('n1').status().membership.learners).toEqual(['n9']);
    c.elect('n2');
    c.propose('n2', 'x');
    c.heal();
    c.tick('n2');
    c.deliver();
    expect(c.raft('n1').status().membership).toEqual({ voters: ['n1', 'n2', 'n3'], learners: [] });
  });

  it('validate/apply agree with a naive set model', () => {
    const node = fc.constantFrom('a', 'b', 'c', 'd');
    const ch = fc.record({ type: fc.constantFrom('addLearner', 'addVoter', 'removeNode'), node });
    fc.assert(
      fc.property(fc.array(ch, { maxLength: 20 }), (changes) => {
        let m: Membership = { voters: [nodeId('a')], learners: [] };
        for (const raw of changes) {
          const c = change(raw.type as ConfChange['type'], raw.node);
          if (validateConfChange(m, c) !== null) continue;
          const next = applyConfChange(m, c);
          const voters = new Set(next.voters);
          // Voters and learners stay disjoint; at least one voter; at most one voter changes.
          expect(next.learners.some((l) => voters.has(l))).toBe(false);
          expect(next.voters.length).toBeGreaterThanOrEqual(1);
          const before = new Set(m.voters);
          const diff =
            [...voters].filter((v) => !before.has(v)).length +
            [...before].filter((v) => !voters.has(v)).length;
          expect(diff).toBeLessThanOrEqual(1);
          m = next;
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('snapshots and compaction (§7)', () => {
  it('sends a snapshot to a follower that needs compacted entries', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n3');
    for (let i = 0; i < 5; i++) c.propose('n1', `v${i}`);
    const snap = c.snapshotAndCompact('n1');
    expect(snap.index).toBe(9);
    expect(c.raft('n1').status().firstIndex).toBe(10);
    c.propose('n1', 'after');
    c.heal();
    c.takeTrace();
    c.tick('n1');
    c.deliver();
    expect(c.takeTrace()).toContain('n1->n3 snapshot t1 index=9/t1');
    expect(c.node('n3').applied).toEqual(['v0', 'v1', 'v2', 'v3', 'v4', 'after']);
    expect(c.raft('n3').status().snapshot.index).toBe(9);
  });

  it('a new member catches up from a snapshot and learns the membership from it', () => {
    const c = new TestCluster(['n1']);
    c.elect('n1');
    for (let i = 0; i < 3; i++) c.propose('n1', `v${i}`);
    c.snapshotAndCompact('n1');
    c.addNode('n2', joiningState());
    c.raft('n1').proposeConfChange(change('addLearner', 'n2'));
    c.deliver();
    c.tick('n1');
    c.deliver();
    expect(c.node('n2').applied).toEqual(['v0', 'v1', 'v2']);
    expect(c.raft('n2').status().membership).toEqual({ voters: ['n1'], learners: ['n2'] });
  });

  it('retries after a failed snapshot transfer', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n3');
    c.propose('n1', 'a');
    c.snapshotAndCompact('n1');
    c.heal();
    // The first transfer is lost; the runtime reports the failure.
    c.dropIf = (m) => m.type === 'snapshot';
    c.tick('n1');
    c.deliver();
    expect(c.raft('n1').status().progress.get(nodeId('n3'))?.state).toBe('snapshot');
    c.raft('n1').reportSnapshot(nodeId('n3'), false);
    expect(c.raft('n1').status().progress.get(nodeId('n3'))?.state).toBe('probe');
    c.dropIf = null;
    c.tick('n1');
    c.deliver();
    expect(c.node('n3').applied).toEqual(['a']);
  });
});

describe('restart', () => {
  it('a restarted node recovers term, vote, log and commit from what it persisted', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.propose('n1', 'a');
    c.propose('n1', 'b');
    c.restart('n2');
    const s = c.raft('n2').status();
    expect([s.term, s.vote, s.lastIndex, s.role]).toEqual([1, 'n1', 6, 'follower']);
    c.tick('n1');
    c.deliver();
    expect(c.node('n2').applied).toEqual(['a', 'b']);
  });

  it('the whole cluster restarts and keeps every committed write', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.propose('n1', 'a');
    for (const n of ['n1', 'n2', 'n3']) c.restart(n);
    c.elect('n2');
    c.propose('n2', 'b');
    for (const n of ['n1', 'n2', 'n3']) expect(c.node(n).applied, n).toEqual(['a', 'b']);
  });
});

describe('membership liveness', () => {
  it('a removed leader that lost its term before the removal committed can still get it committed', () => {
    const c = new TestCluster(['n1', 'n2'], { config: { checkQuorum: false, preVote: false } });
    c.elect('n1');
    c.isolate('n1');
    expect(c.raft('n1').proposeConfChange(change('removeNode', 'n1')).ok).toBe(true);
    c.deliver();
    // n2 campaigns in a later term; its vote request deposes n1 (which rejects
    // it: n2 lacks the removal), before n2 ever sees the removal.
    c.tick('n2', 30);
    c.queue = [];
    c.heal();
    c.tick('n2', 30);
    c.deliver();
    expect(c.raft('n1').status().role).toBe('follower');
    expect(c.raft('n1').status().membership.voters).toEqual(['n2']);
    expect(c.raft('n2').status().membership.voters).toEqual(['n1', 'n2']);
    for (let i = 0; i < 200 && c.raft('n2').status().membership.voters.length !== 1; i++)
      c.tickAll();
    for (let i = 0; i < 100 && c.raft('n2').status().role !== 'leader'; i++) c.tickAll();
    expect(c.raft('n2').status().membership).toEqual({ voters: ['n2'], learners: [] });
    expect(c.raft('n2').status().role).toBe('leader');
    // Once its removal is committed, n1 never campaigns again.
    const term = c.raft('n2').status().term;
    c.tick('n1', 100);
    c.tickAll(5);
    expect(c.raft('n2').status().term).toBe(term);
  });
});
