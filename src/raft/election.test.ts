import { describe, expect, it } from 'vitest';
import { TestCluster } from './cluster.test-util.js';

describe('leader election (§5.2, thesis §9.6)', () => {
  it('elects a leader through a pre-vote and a vote, then replicates the no-op', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    expect(c.takeTrace()).toEqual([
      'n1->n2 preVote t1 last=0/t0',
      'n1->n3 preVote t1 last=0/t0',
      'n2->n1 preVoteResponse t1 granted',
      'n3->n1 preVoteResponse t1 granted',
      'n1->n2 vote t1 last=0/t0',
      'n1->n3 vote t1 last=0/t0',
      'n2->n1 voteResponse t1 granted',
      'n3->n1 voteResponse t1 granted',
      'n1->n2 append t1 prev=0/t0 entries=[1/t1:-] commit=0',
      'n1->n3 append t1 prev=0/t0 entries=[1/t1:-] commit=0',
      'n2->n1 appendAccept t1 match=1',
      // n2's ack makes a majority: the commit goes out at once to n2; n3's
      // probe is still outstanding, so it learns the commit index later.
      'n3->n1 appendAccept t1 match=1',
      'n1->n2 append t1 prev=1/t1 entries=[] commit=1',
      'n2->n1 appendAccept t1 match=1',
    ]);
    c.tick('n1');
    c.deliver();
    expect(c.takeTrace()).toEqual([
      'n1->n2 heartbeat t1 commit=1 seq=1',
      'n1->n3 heartbeat t1 commit=1 seq=1',
      'n2->n1 heartbeatResponse t1 seq=1',
      'n3->n1 heartbeatResponse t1 seq=1',
    ]);
    for (const n of ['n1', 'n2', 'n3']) expect(c.raft(n).status().commit).toBe(1);
    expect(c.raft('n2').status().leader).toBe('n1');
  });
});
