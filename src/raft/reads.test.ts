import { describe, expect, it } from 'vitest';
import { TestCluster } from './cluster.test-util.js';
import { nodeId } from './types.js';

const contexts = (c: TestCluster, name: string) =>
  c.node(name).readStates.map((r) => `${r.context}@${r.index}`);

describe('linearizable reads (thesis §6.4)', () => {
  it('confirms a batch of reads with one heartbeat round', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.propose('n1', 'x');
    c.takeTrace();
    for (const ctx of ['r1', 'r2', 'r3']) expect(c.raft('n1').readIndex(ctx).ok).toBe(true);
    c.deliver();
    expect(c.takeTrace().filter((l) => l.includes('heartbeat t1'))).toHaveLength(2);
    expect(contexts(c, 'n1')).toEqual(['r1@5', 'r2@5', 'r3@5']);
  });

  it('does not answer until a quorum confirmed the leadership', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n1');
    c.raft('n1').readIndex('r1');
    c.deliver();
    c.tick('n1', 3);
    c.deliver();
    expect(contexts(c, 'n1')).toEqual([]);
    // Meanwhile n2 takes over and commits a write: the stale read must never be served.
    c.elect('n2');
    c.propose('n2', 'y');
    c.heal();
    c.tick('n1');
    c.deliver();
    expect(contexts(c, 'n1')).toEqual([]);
    expect(c.raft('n1').status().role).toBe('follower');
  });

  it('waits for the new leader to commit an entry of its term', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.propose('n1', 'a');
    c.isolate('n1');
    c.elect('n2');
    // n2 is leader but its no-op is not committed: n2 and n3 are cut off.
    c.isolate('n2');
    expect(c.raft('n2').readIndex('r').ok).toBe(true);
    c.deliver();
    expect(contexts(c, 'n2')).toEqual([]);
    c.heal();
    c.tick('n2');
    c.deliver();
    expect(contexts(c, 'n2')).toEqual([`r@${c.raft('n2').status().commit}`]);
  });

  it('serves follower reads through the leader', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.propose('n1', 'x');
    c.takeTrace();
    expect(c.raft('n3').readIndex('f1').ok).toBe(true);
    c.deliver();
    expect(c.takeTrace()).toContain('n1->n3 readIndexResponse t1 ctx=f1 index=5');
    expect(contexts(c, 'n3')).toEqual(['f1@5']);
  });

  it('tells a follower the commit index along with the answer to its lease read', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { config: { readMode: 'lease' } });
    c.elect('n1');
    c.tick('n1');
    c.deliver();
    // Entry 5 commits on n1 and no commit notice has gone out yet.
    const n1 = c.raft('n1');
    c.replicateByHand('n1', 'x');
    n1.advance(n1.ready());
    expect(c.raft('n3').status().commit).toBe(4);
    c.takeTrace();
    c.raft('n3').readIndex('f');
    c.deliver();
    // Without the notice, n3 would wait for the next append or heartbeat to apply 5.
    expect(c.takeTrace()).toEqual([
      'n3->n1 readIndex t1 ctx=f',
      'n1->n3 heartbeat t1 commit=5 seq=0',
      'n1->n3 readIndexResponse t1 ctx=f index=5',
      'n1->n2 heartbeat t1 commit=5 seq=0',
    ]);
    expect(contexts(c, 'n3')).toEqual(['f@5']);
    expect(c.raft('n3').status().commit).toBe(5);
  });

  it('refuses a follower read when no leader is known', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    const r = c.raft('n2').readIndex('x');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.refusal.kind).toBe('notLeader');
  });

  it('lease reads answer without a round trip while the lease holds, then stop', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], {
      config: { readMode: 'lease', leaseMarginTicks: 2 },
    });
    c.elect('n1');
    c.tick('n1');
    c.deliver();
    c.takeTrace();
    c.raft('n1').readIndex('fast');
    c.processReadys();
    expect(contexts(c, 'n1')).toEqual(['fast@4']);
    expect(c.takeTrace()).toEqual([]);
    // Cut off, the lease runs out before the followers' election timeout.
    c.isolate('n1');
    c.tick('n1', 8);
    c.raft('n1').readIndex('late');
    c.deliver();
    expect(contexts(c, 'n1')).toEqual(['fast@4']);
  });

  it('lease reads stop once a leadership transfer begins', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { config: { readMode: 'lease' } });
    c.elect('n1');
    c.tick('n1');
    c.deliver();
    c.isolate('n1');
    c.cut.delete('n1>n2');
    c.raft('n1').transferLeadership(nodeId('n2'));
    c.deliver();
    c.raft('n1').readIndex('after-transfer');
    c.deliver();
    expect(contexts(c, 'n1')).toEqual([]);
  });

  it('rejects the lease read mode without CheckQuorum', () => {
    expect(
      () => new TestCluster(['n1'], { config: { readMode: 'lease', checkQuorum: false } }),
    ).toThrow(/readMode 'lease' requires checkQuorum/);
  });

  it('bounds the number of waiting reads', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { config: { pendingReadsMax: 2 } });
    c.elect('n1');
    c.isolate('n1');
    const results = ['a', 'b', 'c'].map((ctx) => c.raft('n1').readIndex(ctx));
    expect(results.map((r) => (r.ok ? 'ok' : r.refusal.kind))).toEqual(['ok', 'ok', 'overloaded']);
  });
});

describe('leadership transfer (thesis §3.10)', () => {
  it('hands over to an up-to-date follower at once', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.takeTrace();
    expect(c.raft('n1').transferLeadership(nodeId('n2')).ok).toBe(true);
    c.deliver();
    const trace = c.takeTrace();
    expect(trace[0]).toBe('n1->n2 timeoutNow t1');
    expect(trace[1]).toBe('n2->n1 vote t2 last=4/t1 transfer');
    expect(c.raft('n2').status().role).toBe('leader');
    expect(c.raft('n1').status().role).toBe('follower');
  });

  it('brings a lagging target up to date first, refusing proposals meanwhile', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n3');
    c.propose('n1', 'x');
    c.heal();
    c.takeTrace();
    c.raft('n1').transferLeadership(nodeId('n3'));
    const refused = c.raft('n1').propose(new Uint8Array(1));
    expect(refused.ok ? 'ok' : refused.refusal.kind).toBe('transferInProgress');
    c.deliver();
    const trace = c.takeTrace();
    const catchUp = trace.findIndex((l) => l.startsWith('n1->n3 append'));
    const timeoutNow = trace.indexOf('n1->n3 timeoutNow t1');
    expect(catchUp).toBeGreaterThanOrEqual(0);
    expect(timeoutNow).toBeGreaterThan(catchUp);
    expect(c.raft('n3').status().role).toBe('leader');
  });

  it('abandons a transfer after an election timeout', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n3');
    c.propose('n1', 'x');
    c.raft('n1').transferLeadership(nodeId('n3'));
    c.deliver();
    expect(c.raft('n1').status().leadTransferee).toBe('n3');
    c.cut.delete('n3>n1');
    c.cut.delete('n1>n2');
    c.cut.delete('n2>n1');
    c.tick('n1', 10);
    c.deliver();
    expect(c.raft('n1').status().leadTransferee).toBe('');
    expect(c.raft('n1').propose(new Uint8Array(1)).ok).toBe(true);
  });

  it('refuses a transfer to a non-voter or to itself', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    for (const to of ['n1', 'n9']) {
      const r = c.raft('n1').transferLeadership(nodeId(to));
      expect(r.ok ? 'ok' : r.refusal.kind).toBe('invalidTransfer');
    }
    const r = c.raft('n2').transferLeadership(nodeId('n3'));
    expect(r.ok ? 'ok' : r.refusal.kind).toBe('notLeader');
  });
});

describe('reads on a leader that is being removed', () => {
  it('are confirmed by the remaining voter, never answered alone', () => {
    const c = new TestCluster(['n1', 'n2']);
    c.elect('n1');
    // n2 stores n1's removal, but n1 never learns that it committed.
    c.dropIf = (m) => m.type === 'appendAccept' && m.from === 'n2';
    c.raft('n1').proposeConfChange({ type: 'removeNode', node: nodeId('n1') });
    c.deliver();
    expect(c.raft('n1').status().membership.voters).toEqual(['n2']);
    expect(c.raft('n1').status().role).toBe('leader');
    c.raft('n1').readIndex('r');
    c.processReadys();
    // n2 alone is now a quorum and may elect itself: n1 must not answer by itself.
    expect(contexts(c, 'n1')).toEqual([]);
  });
});
