import { describe, expect, it } from 'vitest';
import { describe as describeMessage, idx, TestCluster } from './cluster.test-util.js';
import { joiningState } from './config.js';
import { nodeId, term } from './types.js';

describe('leader election (§5.2, thesis §9.6)', () => {
  it('elects a leader through a pre-vote and a vote, then replicates the no-op', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    expect(c.takeTrace()).toEqual([
      'n1->n2 preVote t1 last=3/t0',
      'n1->n3 preVote t1 last=3/t0',
      'n2->n1 preVoteResponse t1 granted',
      'n3->n1 preVoteResponse t1 granted',
      'n1->n2 vote t1 last=3/t0',
      'n1->n3 vote t1 last=3/t0',
      'n2->n1 voteResponse t1 granted',
      'n3->n1 voteResponse t1 granted',
      'n1->n2 append t1 prev=3/t0 entries=[4/t1:-] commit=3',
      'n1->n3 append t1 prev=3/t0 entries=[4/t1:-] commit=3',
      'n2->n1 appendAccept t1 match=4',
      'n3->n1 appendAccept t1 match=4',
      // n2's ack makes a majority: both followers hold entry 4, so each gets
      // a commit notice (a heartbeat with seq 0), which nobody answers.
      'n1->n2 heartbeat t1 commit=4 seq=0',
      'n1->n3 heartbeat t1 commit=4 seq=0',
    ]);
    c.tick('n1');
    c.deliver();
    expect(c.takeTrace()).toEqual([
      'n1->n2 heartbeat t1 commit=4 seq=1',
      'n1->n3 heartbeat t1 commit=4 seq=1',
      'n2->n1 heartbeatResponse t1 seq=1',
      'n3->n1 heartbeatResponse t1 seq=1',
    ]);
    for (const n of ['n1', 'n2', 'n3']) expect(c.raft(n).status().commit).toBe(4);
    expect(c.raft('n2').status().leader).toBe('n1');
  });
});

describe('election rules', () => {
  it('a candidate with a stale log cannot win', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], {
      config: { preVote: false, checkQuorum: false },
    });
    c.elect('n1');
    c.isolate('n3');
    c.propose('n1', 'x');
    c.heal();
    c.isolate('n1');
    c.takeTrace();
    for (let i = 0; i < 30; i++) c.tick('n3');
    c.deliver();
    const trace = c.takeTrace();
    expect(trace).toContain('n2->n3 voteResponse t2 rejected');
    expect(c.raft('n3').status().role).not.toBe('leader');
  });

  it('grants at most one vote per term (§5.2)', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], {
      config: { preVote: false, checkQuorum: false },
    });
    const n3 = c.raft('n3');
    n3.step({
      type: 'vote',
      from: nodeId('n1'),
      to: nodeId('n3'),
      term: term(1),
      lastIndex: idx(3),
      lastTerm: term(0),
      transfer: false,
    });
    n3.step({
      type: 'vote',
      from: nodeId('n2'),
      to: nodeId('n3'),
      term: term(1),
      lastIndex: idx(3),
      lastTerm: term(0),
      transfer: false,
    });
    const rd = n3.ready();
    expect(rd.hardState?.vote).toBe('n1');
    expect(rd.mustSync).toBe(true);
    // Vote grants wait for the vote to be durable.
    expect(rd.messages).toEqual([]);
    expect(rd.messagesAfterPersist.map(describeMessage)).toEqual([
      'n3->n1 voteResponse t1 granted',
      'n3->n2 voteResponse t1 rejected',
    ]);
  });

  it('a restarted node keeps its vote', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], {
      config: { preVote: false, checkQuorum: false },
    });
    const vote = (from: string) =>
      c.raft('n3').step({
        type: 'vote',
        from: nodeId(from),
        to: nodeId('n3'),
        term: term(1),
        lastIndex: idx(3),
        lastTerm: term(0),
        transfer: false,
      });
    vote('n1');
    c.processReadys();
    c.restart('n3');
    vote('n2');
    vote('n1');
    const rd = c.raft('n3').ready();
    expect(rd.messagesAfterPersist.map(describeMessage)).toEqual([
      'n3->n2 voteResponse t1 rejected',
      'n3->n1 voteResponse t1 granted',
    ]);
  });

  it('pre-vote keeps a partitioned node from inflating its term (thesis §9.6)', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n3');
    for (let i = 0; i < 100; i++) c.tick('n3');
    c.deliver();
    expect(c.raft('n3').status().term).toBe(1);
    expect(c.raft('n3').status().role).toBe('preCandidate');
    c.heal();
    c.tick('n1');
    c.deliver();
    expect(c.raft('n1').status().role).toBe('leader');
    expect(c.raft('n3').status().role).toBe('follower');
    expect(c.raft('n3').status().leader).toBe('n1');
  });

  it('without pre-vote a rejoining node with a higher term deposes the leader', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], {
      config: { preVote: false, checkQuorum: false },
    });
    c.elect('n1');
    c.isolate('n3');
    for (let i = 0; i < 100; i++) c.tick('n3');
    c.deliver();
    const inflated = c.raft('n3').status().term;
    expect(inflated).toBeGreaterThan(2);
    c.heal();
    // n3's next campaign carries its inflated term: n1 must step down.
    c.tick('n3', 20);
    c.deliver();
    expect(c.raft('n1').status().term).toBeGreaterThanOrEqual(inflated);
    expect(c.raft('n1').status().leader).not.toBe('n1');
  });

  it('followers that heard from the leader recently ignore candidates (thesis §4.2.3)', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { config: { preVote: false } });
    c.elect('n1');
    c.takeTrace();
    // n3 lost contact only with n1 (an asymmetric partition) and campaigns.
    c.cut.add('n1>n3');
    c.cut.add('n3>n1');
    for (let i = 0; i < 25; i++) {
      c.tick('n1');
      c.tick('n2');
      c.tick('n3');
      c.deliver();
    }
    expect(c.raft('n1').status().role).toBe('leader');
    expect(c.raft('n2').status().term).toBe(1);
    expect(c.takeTrace().filter((l) => l.startsWith('n2->n3 vote'))).toEqual([]);
  });

  it('CheckQuorum: a leader without a quorum steps down within an election timeout (thesis §6.2)', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n1');
    let ticks = 0;
    while (c.raft('n1').status().role === 'leader' && ticks < 100) {
      c.tick('n1');
      c.deliver();
      ticks++;
    }
    expect(c.raft('n1').status().role).toBe('follower');
    expect(ticks).toBeLessThanOrEqual(20);
  });

  it('a freshly started node ignores candidates for an election timeout (keeps leases safe)', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.restart('n2');
    const request = {
      type: 'preVote' as const,
      from: nodeId('n3'),
      to: nodeId('n2'),
      term: term(2),
      lastIndex: idx(4),
      lastTerm: term(1),
      transfer: false,
    };
    c.raft('n2').step(request);
    expect(c.raft('n2').ready().messages).toEqual([]);
    for (let i = 0; i < 10; i++) c.raft('n2').tick();
    c.raft('n2').step(request);
    expect(c.raft('n2').ready().messages.map(describeMessage)).toEqual([
      'n2->n3 preVoteResponse t2 granted',
    ]);
  });

  it('a split vote is retried after a new randomized timeout', () => {
    const c = new TestCluster(['n1', 'n2', 'n3', 'n4'], {
      config: { preVote: false, checkQuorum: false },
    });
    // n1 and n2 campaign at once, each votes for itself; n3 votes n1, n4 votes n2.
    c.cut.add('n2>n3').add('n1>n4');
    c.tick('n1', 11);
    c.tick('n2', 12);
    c.tick('n3', 5);
    c.tick('n4', 5);
    c.deliver();
    expect(c.raft('n1').status().role).toBe('candidate');
    expect(c.raft('n2').status().role).toBe('candidate');
    c.heal();
    for (
      let i = 0;
      i < 30 && ![...c.nodes.values()].some((n) => n.raft.status().role === 'leader');
      i++
    ) {
      c.tickAll();
    }
    const leaders = [...c.nodes.values()].filter((n) => n.raft.status().role === 'leader');
    expect(leaders).toHaveLength(1);
  });

  it('a single-voter cluster elects itself without messages', () => {
    const c = new TestCluster(['n1']);
    c.tick('n1', 30);
    expect(c.raft('n1').status().role).toBe('leader');
    expect(c.raft('n1').status().commit).toBe(2);
    expect(c.takeTrace()).toEqual([]);
  });
});

describe('durability of the term before any message', () => {
  it('a single voter that wins alone sends nothing until its new term is durable', () => {
    const c = new TestCluster(['n1']);
    c.elect('n1');
    c.addNode('n2', joiningState());
    c.raft('n1').proposeConfChange({ type: 'addLearner', node: nodeId('n2') });
    c.deliver();
    c.restart('n1');
    const n1 = c.raft('n1');
    for (let i = 0; i < 30 && n1.status().role !== 'leader'; i++) n1.tick();
    expect(n1.status().role).toBe('leader');
    const first = n1.ready();
    expect(first.hardState?.term).toBe(2);
    // The appends to the learner carry term 2, which is not on disk yet.
    expect(first.messages).toEqual([]);
    expect(first.messagesAfterPersist.map((m) => m.type)).toContain('append');
    // A second Ready taken before the first is durable still holds its messages.
    n1.propose(new Uint8Array([1]));
    const second = n1.ready();
    expect(second.messages).toEqual([]);
    n1.advance(first);
    n1.advance(second);
    n1.tick();
    expect(n1.ready().messages.map((m) => m.type)).toEqual(['heartbeat']);
  });
});
