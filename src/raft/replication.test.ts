import { describe, expect, it } from 'vitest';
import {
  bytes,
  describe as describeMessage,
  FixedRandom,
  ids,
  idx,
  TestCluster,
} from './cluster.test-util.js';
import type { PersistedState } from './config.js';
import { RaftNode } from './raft.js';
import { type Rules, raftRules } from './rules.js';
import type { Entry } from './types.js';
import { logIndex, nodeId, term } from './types.js';

const voters = ['s1', 's2', 's3', 's4', 's5', 's6', 's7'];

/** A persisted log whose entry k has term terms[k-1]. */
function logOf(terms: readonly number[], currentTerm?: number): PersistedState {
  // Membership comes from the snapshot here, so entry k sits at index k.
  const base = {
    hardState: { term: term(0), vote: nodeId(''), commit: logIndex(0) },
    snapshot: {
      index: logIndex(0),
      term: term(0),
      membership: { voters: ids(...voters), learners: [] },
    },
  };
  const entries: Entry[] = terms.map((t, i) => ({
    kind: 'normal',
    term: term(t),
    index: logIndex(i + 1),
    data: bytes(`e${i + 1}`),
  }));
  return {
    ...base,
    hardState: { ...base.hardState, term: term(currentTerm ?? terms.at(-1) ?? 0) },
    entries,
  };
}

function termsOf(c: TestCluster, name: string): number[] {
  const s = c.raft(name).status();
  const out: number[] = [];
  for (let i = s.firstIndex; i <= s.lastIndex; i++)
    out.push(c.raft(name).entry(logIndex(i))?.term ?? -1);
  return out;
}

describe('log replication (§5.3)', () => {
  it('brings every follower of Figure 7 to the leader’s log with few round trips', () => {
    const c = new TestCluster(voters, { config: { preVote: false } });
    const logs: Record<string, number[]> = {
      s1: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6], // the leader for term 8
      s2: [1, 1, 1, 4, 4, 5, 5, 6, 6], // (a) missing an entry
      s3: [1, 1, 1, 4], // (b) missing many
      s4: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], // (c) an extra uncommitted entry
      s5: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], // (d) extra entries of a later term
      s6: [1, 1, 1, 4, 4, 4, 4], // (e) a conflicting run of term 4
      s7: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], // (f) a leader of terms 2 and 3 that failed
    };
    for (const [name, terms] of Object.entries(logs)) {
      c.addNode(name, logOf(terms, name === 's1' ? 7 : Math.max(...terms)));
    }
    c.elect('s1');
    c.tick('s1');
    c.deliver();
    const leaderTerms = termsOf(c, 's1');
    expect(leaderTerms).toEqual([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8]);
    for (const name of voters) expect(termsOf(c, name), name).toEqual(leaderTerms);
    const rejects = c.takeTrace().filter((l) => l.includes('appendReject'));
    // One probe per distinct divergence: the hint skips whole terms.
    const perFollower = new Map<string, number>();
    for (const l of rejects)
      perFollower.set(l.slice(0, 2), (perFollower.get(l.slice(0, 2)) ?? 0) + 1);
    for (const [follower, n] of perFollower) expect(n, follower).toBeLessThanOrEqual(2);
    expect(c.raft('s1').status().commit).toBe(11);
  });

  it('answers a rejection with the conflicting term and its first index', () => {
    const c = new TestCluster(voters);
    c.addNode('s7', logOf([1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]));
    const s7 = c.raft('s7');
    s7.step({
      type: 'append',
      from: nodeId('s1'),
      to: nodeId('s7'),
      term: term(8),
      prevIndex: idx(10),
      prevTerm: term(6),
      entries: [],
      commit: idx(0),
    });
    // s7 adopts term 8, so its answer waits until that term is durable.
    expect(s7.ready().messagesAfterPersist.map(describeMessage)).toEqual([
      's7->s1 appendReject t8 rejected=10 hint=7/t3',
    ]);
  });

  it('commits an entry of an earlier term only through one of the current term (§5.4.2, Figure 8)', () => {
    const run = (rules: Rules) => {
      // s1 led term 2 and wrote index 2; it is now leader of term 4.
      const persisted = logOf([1, 2], 3);
      const five = { voters: ids('s1', 's2', 's3', 's4', 's5'), learners: [] };
      const s1 = new RaftNode(
        { id: nodeId('s1'), random: new FixedRandom(0), preVote: false, checkQuorum: false },
        { ...persisted, snapshot: { ...persisted.snapshot, membership: five } },
        rules,
      );
      for (let i = 0; i < 10; i++) s1.tick();
      for (const v of ['s2', 's3']) {
        s1.step({
          type: 'voteResponse',
          from: nodeId(v),
          to: nodeId('s1'),
          term: term(4),
          granted: true,
        });
      }
      expect(s1.status().role).toBe('leader');
      s1.advance(s1.ready());
      // s2 and s3 now hold index 2 (term 2): a majority with s1, but not of term 4.
      for (const v of ['s2', 's3']) {
        s1.step({
          type: 'appendAccept',
          from: nodeId(v),
          to: nodeId('s1'),
          term: term(4),
          matchIndex: idx(2),
        });
      }
      return s1;
    };
    const s1 = run(raftRules);
    expect(s1.status().commit).toBe(0);
    for (const v of ['s2', 's3']) {
      s1.step({
        type: 'appendAccept',
        from: nodeId(v),
        to: nodeId('s1'),
        term: term(4),
        matchIndex: idx(3),
      });
    }
    expect(s1.status().commit).toBe(3);
    // The rule is what prevents it: counting replicas of an old term commits index 2.
    const broken = run({ ...raftRules, mayCommitByCounting: () => true });
    expect(broken.status().commit).toBe(2);
  });

  it('never truncates committed entries, and overwrites uncommitted conflicting ones', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.propose('n1', 'a');
    // n1 writes 'b' but only it has it; then n2 leads and writes 'c'.
    c.isolate('n1');
    c.raft('n1').propose(bytes('b'));
    c.deliver();
    c.elect('n2');
    c.propose('n2', 'c');
    c.heal();
    c.tick('n2');
    c.deliver();
    for (const n of ['n1', 'n2', 'n3']) expect(c.node(n).applied, n).toEqual(['a', 'c']);
  });

  it('spreads a new commit index by notices nobody answers, each up to what the follower holds', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n3');
    c.takeTrace();
    c.propose('n1', 'a');
    expect(c.takeTrace()).toEqual([
      'n1->n2 append t1 prev=4/t1 entries=[5/t1:a] commit=4',
      'n1->n3 append t1 prev=4/t1 entries=[5/t1:a] commit=4 (dropped)',
      'n2->n1 appendAccept t1 match=5',
      // n3 holds only up to 4, which it was told: no notice for it.
      'n1->n2 heartbeat t1 commit=5 seq=0',
    ]);
    expect(c.raft('n2').status().commit).toBe(5);
    // n3 comes back: the heartbeat tells it only what it holds (4); the append
    // that brings entry 5 tells it the rest.
    c.heal();
    c.tick('n1');
    c.deliver();
    expect(c.takeTrace()).toEqual([
      'n1->n2 heartbeat t1 commit=5 seq=1',
      'n1->n3 heartbeat t1 commit=4 seq=1',
      'n2->n1 heartbeatResponse t1 seq=1',
      'n3->n1 heartbeatResponse t1 seq=1',
      'n1->n3 append t1 prev=5/t1 entries=[] commit=5',
      'n3->n1 appendReject t1 rejected=5 hint=5/t0',
      // This append carries entry 5 and commit 5: it tells n3, no notice needed.
      'n1->n3 append t1 prev=4/t1 entries=[5/t1:a] commit=5',
      'n3->n1 appendAccept t1 match=5',
    ]);
    expect(c.raft('n3').status().commit).toBe(5);
  });

  it('sends no commit notice to a follower whose append already carries the commit', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    const n1 = c.raft('n1');
    // Both followers acknowledge entry 5 while entry 6 is being proposed.
    c.replicateByHand('n1', 'x');
    n1.propose(bytes('y'));
    const next = n1.ready();
    n1.advance(next);
    expect(next.messages.map(describeMessage)).toEqual([
      'n1->n2 append t1 prev=5/t1 entries=[6/t1:y] commit=5',
      'n1->n3 append t1 prev=5/t1 entries=[6/t1:y] commit=5',
    ]);
    // The runtime's notice timer then finds nothing left to tell.
    n1.spreadCommit();
    expect(n1.hasReady()).toBe(false);
  });

  it('holds commit notices until the runtime asks to spread the commit', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    const n1 = c.raft('n1');
    c.replicateByHand('n1', 'x');
    // Entry 5 commits; the followers are not told yet (the next append could tell them).
    const committed = n1.ready();
    n1.advance(committed);
    expect(committed.committedEntries.map((e) => e.index)).toEqual([5]);
    expect(committed.messages).toEqual([]);
    n1.spreadCommit();
    const notices = n1.ready();
    n1.advance(notices);
    expect(notices.messages.map(describeMessage)).toEqual([
      'n1->n2 heartbeat t1 commit=5 seq=0',
      'n1->n3 heartbeat t1 commit=5 seq=0',
    ]);
    // Told once: asking again sends nothing; a follower does nothing with it on its own.
    n1.spreadCommit();
    expect(n1.hasReady()).toBe(false);
    c.raft('n2').spreadCommit();
    expect(c.raft('n2').hasReady()).toBe(false);
  });

  it('retries an append on a heartbeat response only if the follower’s match stood still this tick', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    const n1 = c.raft('n1');
    n1.propose(bytes('a'));
    c.processReadys();
    n1.propose(bytes('b'));
    c.processReadys();
    // The appends of b are still on their way when a read round's heartbeats
    // come back: the followers' matches moved this tick (a), so the leader
    // waits for the pipeline instead of probing each follower's log end.
    const appendsOfB = c.queue.slice(2);
    c.queue = c.queue.slice(0, 2);
    c.deliver();
    c.takeTrace();
    expect(n1.readIndex('r1').ok).toBe(true);
    c.deliver();
    const traced = c.takeTrace();
    expect(traced).toContain('n2->n1 heartbeatResponse t1 seq=1');
    expect(traced.filter((l) => l.startsWith('n1->') && l.includes(' append '))).toEqual([]);
    c.queue.push(...appendsOfB);
    c.deliver();
    expect(c.raft('n2').status().lastIndex).toBe(6);
    // c's append to n2 is lost and nothing follows it. n2's match stands
    // still through the next tick, so its heartbeat response brings a retry.
    c.dropIf = (m) => m.type === 'append' && m.to === 'n2';
    c.propose('n1', 'c');
    c.dropIf = null;
    expect(c.raft('n2').status().lastIndex).toBe(6);
    c.takeTrace();
    c.tick('n1');
    c.deliver();
    expect(c.takeTrace()).toEqual([
      'n1->n2 heartbeat t1 commit=6 seq=2',
      'n1->n3 heartbeat t1 commit=7 seq=2',
      'n2->n1 heartbeatResponse t1 seq=2',
      'n3->n1 heartbeatResponse t1 seq=2',
      'n1->n2 append t1 prev=7/t1 entries=[] commit=7',
      'n2->n1 appendReject t1 rejected=7 hint=7/t0',
      'n1->n2 append t1 prev=6/t1 entries=[7/t1:c] commit=7',
      'n2->n1 appendAccept t1 match=7',
    ]);
    expect(c.raft('n2').status().lastIndex).toBe(7);
  });

  it('batches proposals made between two Readys into one append per follower', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.takeTrace();
    for (let i = 0; i < 10; i++) c.raft('n1').propose(bytes(`v${i}`));
    const rd = c.raft('n1').ready();
    expect(rd.entries).toHaveLength(10);
    expect(
      rd.messages.map((m) => `${m.to} ${m.type} ${m.type === 'append' ? m.entries.length : ''}`),
    ).toEqual(['n2 append 10', 'n3 append 10']);
  });

  it('pipelines appends without waiting for acknowledgements, up to the in-flight limit', () => {
    const c = new TestCluster(['n1', 'n2'], {
      config: { appendEntriesMax: 1, inflightMessagesMax: 4 },
    });
    c.elect('n1');
    for (let i = 0; i < 10; i++) c.raft('n1').propose(bytes(`v${i}`));
    const rd = c.raft('n1').ready();
    const appends = rd.messages.filter((m) => m.type === 'append');
    expect(appends.map((m) => (m.type === 'append' ? m.prevIndex : -1))).toEqual([3, 4, 5, 6]);
    c.raft('n1').advance(rd);
    c.queue.push(...rd.messages);
    c.deliver();
    expect(c.raft('n2').status().lastIndex).toBe(13);
    expect(c.raft('n1').status().commit).toBe(13);
  });

  it('bounds the bytes in flight to a follower', () => {
    const c = new TestCluster(['n1', 'n2'], {
      config: { appendBytesMax: 1, inflightBytesMax: 3000, inflightMessagesMax: 100 },
    });
    c.elect('n1');
    for (let i = 0; i < 10; i++) c.raft('n1').propose(new Uint8Array(1000));
    const appends = c
      .raft('n1')
      .ready()
      .messages.filter((m) => m.type === 'append');
    // Each append carries one ~1 KB entry; the window closes at 3,000 bytes.
    expect(appends).toHaveLength(3);
  });

  it('probes a follower one append at a time until it matches', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n3');
    for (let i = 0; i < 5; i++) c.propose('n1', `v${i}`);
    c.restart('n3');
    c.heal();
    c.takeTrace();
    c.raft('n1').reportUnreachable(nodeId('n3'));
    c.tick('n1');
    c.deliver();
    const toN3 = c.takeTrace().filter((l) => l.startsWith('n1->n3 append'));
    expect(toN3[0]).toContain('prev=4/t1 entries=[5/t1:v0 6/t1:v1 7/t1:v2 8/t1:v3 9/t1:v4]');
    expect(c.raft('n3').status().commit).toBe(9);
  });

  it('the leader sends while it persists, and counts itself only once durable (thesis §10.2.1)', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    const n1 = c.raft('n1');
    n1.propose(bytes('x'));
    const rd = n1.ready();
    expect(rd.mustSync).toBe(true);
    expect(rd.entries.map((e) => e.index)).toEqual([5]);
    expect(rd.messages.map((m) => m.type)).toEqual(['append', 'append']);
    // n2 acknowledges; n1 has not persisted yet: 1 of 3 durable copies plus n2 = 2, a majority.
    const n2 = c.raft('n2');
    const toN2 = rd.messages.find((m) => m.to === 'n2');
    if (toN2 === undefined) throw new Error('no append to n2');
    n2.step(toN2);
    const rd2 = n2.ready();
    expect(rd2.messages).toEqual([]);
    expect(rd2.messagesAfterPersist.map(describeMessage)).toEqual([
      'n2->n1 appendAccept t1 match=5',
    ]);
    const accept = rd2.messagesAfterPersist[0];
    if (accept === undefined) throw new Error('no accept');
    n1.step(accept);
    expect(n1.status().commit).toBe(4);
    n1.advance(rd);
    expect(n1.status().commit).toBe(5);
  });

  it('refuses proposals past the uncommitted-bytes limit, with a clear message', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { config: { uncommittedBytesMax: 5000 } });
    c.elect('n1');
    c.isolate('n1');
    let refused = '';
    for (let i = 0; i < 20 && refused === ''; i++) {
      const r = c.raft('n1').propose(new Uint8Array(1000));
      if (!r.ok) refused = `${r.refusal.kind}: ${r.refusal.message}`;
    }
    expect(refused).toMatch(/^overloaded: .*bytes are waiting to commit/);
  });

  it('a follower refuses proposals and names the leader', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    const r = c.raft('n2').propose(bytes('x'));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.refusal.kind).toBe('notLeader');
      expect(r.refusal.message).toContain('retry on n1');
    }
  });
});
