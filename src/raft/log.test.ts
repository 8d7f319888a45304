import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RaftLog } from './log.js';
import type { Entry, SnapshotMeta } from './types.js';
import { entryBytes, logIndex, term } from './types.js';

const snapshot: SnapshotMeta = {
  index: logIndex(0),
  term: term(0),
  membership: { voters: [], learners: [] },
};

function entries(terms: readonly number[], from = 1): Entry[] {
  return terms.map((t, i) => ({
    kind: 'normal',
    term: term(t),
    index: logIndex(from + i),
    data: new Uint8Array(i % 7),
  }));
}

/** Terms that never decrease, as a log's must. */
const termsArb = fc.array(fc.nat(3), { minLength: 0, maxLength: 30 }).map((steps) => {
  let t = 1;
  return steps.map((s) => (t += s === 0 ? 1 : 0));
});

describe('RaftLog', () => {
  it('slice respects its entry and byte bounds and always makes progress', () => {
    fc.assert(
      fc.property(
        termsArb,
        fc.nat(40),
        fc.integer({ min: 1, max: 10 }),
        fc.nat(200),
        (terms, lo, max, bytes) => {
          const log = new RaftLog(snapshot, entries(terms), logIndex(0));
          const from = logIndex(1 + (lo % (terms.length + 1)));
          const out = log.slice(from, logIndex(terms.length + 1), max, bytes);
          expect(out).toBeDefined();
          if (out === undefined) return;
          const available = terms.length + 1 - from;
          expect(out.length).toBeLessThanOrEqual(Math.min(max, available));
          if (available > 0) expect(out.length).toBeGreaterThan(0);
          const total = out.reduce((s, e) => s + entryBytes(e), 0);
          if (out.length > 1) expect(total).toBeLessThanOrEqual(bytes);
          out.forEach((e, i) => {
            expect(e.index).toBe(from + i);
          });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('accepting a leader’s entries yields exactly the leader’s suffix after the match point', () => {
    fc.assert(
      fc.property(termsArb, termsArb, fc.nat(30), (ours, theirs, cut) => {
        // A shared prefix, then each side's own suffix; the leader's terms are higher.
        const shared = Math.min(cut, ours.length, theirs.length);
        const follower = [...ours];
        const leaderTerms = [...ours.slice(0, shared), ...theirs.slice(shared).map((t) => t + 100)];
        const log = new RaftLog(snapshot, entries(follower), logIndex(0));
        const sent = entries(leaderTerms).slice(shared);
        const prev = logIndex(shared);
        log.acceptFromLeader(prev, sent);
        const got: number[] = [];
        const lastNew = shared + sent.length;
        for (let i = 1; i <= lastNew; i++) got.push(log.term(logIndex(i)) ?? -1);
        expect(got).toEqual(leaderTerms.slice(0, lastNew));
      }),
      { numRuns: 500 },
    );
  });

  it('refuses to truncate a committed entry', () => {
    const log = new RaftLog(snapshot, entries([1, 1, 2]), logIndex(3));
    expect(() => log.acceptFromLeader(logIndex(1), entries([3], 2))).toThrow(
      /would truncate committed/,
    );
  });

  it('compaction keeps terms, membership and the entries after the snapshot', () => {
    const conf: Entry = {
      kind: 'conf',
      term: term(1),
      index: logIndex(3),
      change: { type: 'addVoter', node: 'n1' as never },
    };
    const all = [...entries([1, 1]), conf, ...entries([2, 2], 4)];
    const log = new RaftLog(snapshot, all, logIndex(5));
    log.appliedTo(logIndex(4));
    const s = log.compact(logIndex(4));
    expect(s).toEqual({ index: 4, term: 2, membership: { voters: ['n1'], learners: [] } });
    expect(log.firstIndex()).toBe(5);
    expect(log.term(logIndex(4))).toBe(2);
    expect(log.term(logIndex(3))).toBeUndefined();
    expect(log.slice(logIndex(4), logIndex(6), 10, 1000)).toBeUndefined();
    expect(log.membership().voters).toEqual(['n1']);
  });

  it('the back-off hint finds the first index of the conflicting term', () => {
    const log = new RaftLog(snapshot, entries([1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]), logIndex(0));
    expect(log.firstIndexOfTermAt(logIndex(10))).toBe(7);
    expect(log.firstIndexOfTermAt(logIndex(5))).toBe(4);
    expect(log.lastIndexOfTerm(term(2), logIndex(10))).toBe(6);
    expect(log.lastIndexOfTerm(term(4), logIndex(10))).toBeUndefined();
  });

  it('rejects entries whose terms go backwards', () => {
    expect(() => new RaftLog(snapshot, entries([2, 1]), logIndex(0))).toThrow(/term 1 below 2/);
  });
});
