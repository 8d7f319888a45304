import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { logIndex, nodeId, term } from '../../src/raft/types.js';
import { entryDigest, SafetyChecker } from './safety.js';

const normal = (index: number, t: number, text: string): Entry => ({
  kind: 'normal',
  index: logIndex(index),
  term: term(t),
  data: new TextEncoder().encode(text),
});

describe('SafetyChecker has teeth', () => {
  it('accepts a consistent story', () => {
    const c = new SafetyChecker();
    c.onLeader('n1', 1);
    c.onLeader('n1', 1);
    c.onLeader('n2', 2);
    for (const node of ['n1', 'n2', 'n3']) {
      c.onAppend(node, 1, 1, entryDigest(normal(1, 1, 'a')), 0);
      c.onAppend(node, 2, 1, entryDigest(normal(2, 1, 'b')), 1);
      c.onApply(node, 1, 1, entryDigest(normal(1, 1, 'a')), 2);
      c.onApply(node, 2, 1, entryDigest(normal(2, 1, 'b')), 2);
      c.onKvDigest(node, 2, 1234);
    }
    c.onLeaderLog('n3', 3, (i) => (i <= 2 ? 1 : undefined), { index: 0, term: 0 });
    c.onLeaderLog('n2', 4, () => undefined, { index: 2, term: 1 });
    expect(c.violations).toEqual([]);
  });

  it('flags two leaders in one term (election safety)', () => {
    const c = new SafetyChecker();
    c.onLeader('n1', 3);
    c.onLeader('n2', 3);
    expect(c.violations.join()).toMatch(/election safety: n2 and n1 are both leaders of term 3/);
  });

  it('flags different entries at the same index and term (log matching)', () => {
    const c = new SafetyChecker();
    c.onAppend('n1', 5, 2, entryDigest(normal(5, 2, 'x')), 2);
    c.onAppend('n2', 5, 2, entryDigest(normal(5, 2, 'y')), 2);
    expect(c.violations.join()).toMatch(
      /log matching: n2 and n1 hold different entries at index 5 term 2/,
    );
  });

  it('flags the same entry after different predecessors (log matching, by induction)', () => {
    const c = new SafetyChecker();
    const d = entryDigest(normal(5, 3, 'x'));
    c.onAppend('n1', 5, 3, d, 2);
    c.onAppend('n2', 5, 3, d, 1);
    expect(c.violations.join()).toMatch(/follows term 1 on n2 but term 2 on n1/);
  });

  it('flags a leader missing an entry committed in an earlier term (leader completeness)', () => {
    const c = new SafetyChecker();
    c.onApply('n1', 7, 2, entryDigest(normal(7, 2, 'x')), 2);
    c.onLeaderLog('n2', 3, (i) => (i === 7 ? 1 : undefined), { index: 0, term: 0 });
    c.onLeaderLog('n3', 3, () => undefined, { index: 0, term: 0 });
    c.onLeaderLog('n4', 3, () => undefined, { index: 7, term: 1 });
    expect(c.violations).toHaveLength(3);
    expect(c.violations[0]).toMatch(
      /leader completeness: n2 became leader of term 3 without entry 7@2, committed before that term \(its log has term 1/,
    );
    expect(c.violations[1]).toMatch(/its log has nothing there/);
  });

  it('does not owe a stale-term leader what a later term committed', () => {
    const c = new SafetyChecker();
    c.onApply('n1', 5, 2, entryDigest(normal(5, 2, 'a')), 2);
    // Entry 6 of term 4 was applied by nodes already in term 4.
    c.onApply('n1', 6, 4, entryDigest(normal(6, 4, 'b')), 4);
    // n3 wins term 3 on late votes: it must hold 5 but not 6.
    c.onLeaderLog('n3', 3, (i) => (i === 5 ? 2 : undefined), { index: 0, term: 0 });
    expect(c.violations).toEqual([]);
    c.onLeaderLog('n2', 5, (i) => (i === 5 ? 2 : undefined), { index: 0, term: 0 });
    expect(c.violations.join()).toMatch(/n2 became leader of term 5 without entry 6@4/);
  });

  it('a lower term at a later apply tightens what is owed', () => {
    const c = new SafetyChecker();
    c.onApply('n1', 6, 2, entryDigest(normal(6, 2, 'b')), 9);
    c.onLeaderLog('n3', 5, () => undefined, { index: 0, term: 0 });
    expect(c.violations).toEqual([]);
    c.onApply('n2', 6, 2, entryDigest(normal(6, 2, 'b')), 3);
    c.onLeaderLog('n4', 5, () => undefined, { index: 0, term: 0 });
    expect(c.violations.join()).toMatch(/n4 became leader of term 5 without entry 6@2/);
  });

  it('flags different entries applied at one index (state machine safety)', () => {
    const c = new SafetyChecker();
    c.onApply('n1', 4, 2, entryDigest(normal(4, 2, 'x')), 3);
    c.onApply('n2', 4, 3, entryDigest(normal(4, 3, 'x')), 3);
    c.onApply('n3', 4, 2, entryDigest(normal(4, 2, 'y')), 3);
    expect(c.violations).toHaveLength(2);
    expect(c.violations[1]).toMatch(/with different content/);
  });

  it('flags a snapshot that contradicts what was applied', () => {
    const c = new SafetyChecker();
    c.onApply('n1', 4, 2, entryDigest(normal(4, 2, 'x')), 2);
    c.onSnapshotInstalled('n2', 4, 1, 2);
    expect(c.violations.join()).toMatch(/installed a snapshot at 4@1 but n1 applied 4@2/);
  });

  it('learns content first seen inside a snapshot without a false alarm', () => {
    const c = new SafetyChecker();
    c.onSnapshotInstalled('n2', 9, 2, 2);
    c.onApply('n1', 9, 2, entryDigest(normal(9, 2, 'x')), 2);
    c.onApply('n3', 9, 2, entryDigest(normal(9, 2, 'y')), 2);
    expect(c.violations).toHaveLength(1);
  });

  it('flags replicas that differ at the same applied index', () => {
    const c = new SafetyChecker();
    c.onKvDigest('n1', 10, 0xabc);
    c.onKvDigest('n2', 11, 0xdef);
    expect(c.violations).toEqual([]);
    c.onKvDigest('n3', 10, 0xdef);
    expect(c.violations.join()).toMatch(/replica divergence: at applied index 10/);
  });

  it('keeps a bounded number of violations', () => {
    const c = new SafetyChecker(() => 0, 3);
    for (let t = 1; t <= 10; t++) {
      c.onLeader('n1', t);
      c.onLeader(String(nodeId('n2')), t);
    }
    expect(c.violations).toHaveLength(3);
    expect(c.violationsDropped).toBe(7);
  });
});
