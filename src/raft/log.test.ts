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

  it('hands out what was appended, through truncation, compaction and restore (model check)', () => {
    // Payloads are views into one buffer, so a handed-out view can be checked
    // for the very bytes it was appended with (same buffer, offset, length).
    const pool = new Uint8Array(4096).map((_, i) => i % 251);
    const op = fc.oneof(
      fc.record({ kind: fc.constant('append' as const), n: fc.integer({ min: 1, max: 6 }) }),
      fc.record({
        kind: fc.constant('accept' as const),
        back: fc.nat(6),
        n: fc.integer({ min: 0, max: 6 }),
      }),
      fc.record({ kind: fc.constant('compact' as const), back: fc.nat(6) }),
      fc.record({ kind: fc.constant('restore' as const), ahead: fc.integer({ min: 1, max: 5 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const log = new RaftLog(snapshot, [], logIndex(0));
        /** What each index in the log must hold: term and payload position. */
        const model = new Map<number, { term: number; offset: number; length: number }>();
        let currentTerm = 1;
        let offset = 0;
        const make = (index: number, t: number): Entry => {
          const length = (index * 7) % 13;
          offset = (offset + 17) % (pool.length - 16);
          model.set(index, { term: t, offset, length });
          return {
            kind: 'normal',
            term: term(t),
            index: logIndex(index),
            data: pool.subarray(offset, offset + length),
          };
        };
        for (const o of ops) {
          const last = log.lastIndex();
          if (o.kind === 'append') {
            const batch: Entry[] = [];
            for (let i = 1; i <= o.n; i++) batch.push(make(last + i, currentTerm));
            log.append(batch);
          } else if (o.kind === 'accept') {
            // A new leader's entries after a point at or past the commit: a conflict truncates.
            const prev = Math.max(log.committed, log.firstIndex() - 1, last - o.back);
            currentTerm++;
            const sent: Entry[] = [];
            for (let i = 1; i <= o.n; i++) sent.push(make(prev + i, currentTerm));
            for (let i = prev + o.n + 1; i <= last && o.n > 0; i++) model.delete(i);
            log.acceptFromLeader(logIndex(prev), sent);
          } else if (o.kind === 'compact') {
            const to = Math.max(log.firstIndex() - 1, last - o.back);
            log.commitTo(logIndex(Math.max(log.committed, to)));
            log.appliedTo(logIndex(to));
            log.compact(logIndex(to));
          } else {
            const at = Math.max(last, log.committed) + o.ahead;
            currentTerm++;
            log.restore({
              index: logIndex(at),
              term: term(currentTerm),
              membership: snapshot.membership,
            });
            model.clear();
          }
          for (let i = log.firstIndex(); i <= log.lastIndex(); i++) {
            const e = log.entry(logIndex(i));
            const want = model.get(i);
            expect(e?.kind === 'normal' && want !== undefined).toBe(true);
            if (e?.kind !== 'normal' || want === undefined) return;
            expect([e.index, e.term]).toEqual([i, want.term]);
            expect([e.data.buffer, e.data.byteOffset, e.data.byteLength]).toEqual([
              pool.buffer,
              want.offset,
              want.length,
            ]);
            expect(log.entryBytesAt(logIndex(i))).toBe(entryBytes(e));
          }
          expect(log.entry(logIndex(log.firstIndex() - 1))).toBeUndefined();
          expect(log.entry(logIndex(log.lastIndex() + 1))).toBeUndefined();
          expect(log.entryBytesAt(logIndex(log.lastIndex() + 1))).toBeUndefined();
        }
      }),
      { numRuns: 500 },
    );
  });

  it('keeps no entry object for older entries: it makes one viewing the same bytes', () => {
    const count = 5000;
    const appended = entries(
      Array.from({ length: count }, () => 1),
      1,
    );
    const log = new RaftLog(snapshot, [], logIndex(0));
    for (const e of appended) log.append([e]);
    // The last ones appended are handed out as they were, the old ones anew.
    expect(log.entry(logIndex(count))).toBe(appended[count - 1]);
    const old = log.entry(logIndex(1));
    expect(old).not.toBe(appended[0]);
    expect(old).toEqual(appended[0]);
    // A truncation and a new entry at an index the ring still holds are seen.
    const log2 = new RaftLog(snapshot, entries([1, 1, 1]), logIndex(0));
    log2.acceptFromLeader(logIndex(1), entries([2], 2));
    expect(log2.entry(logIndex(2))?.term).toBe(2);
    expect(log2.entry(logIndex(3))).toBeUndefined();
  });

  it('rejects entries whose terms go backwards', () => {
    expect(() => new RaftLog(snapshot, entries([2, 1]), logIndex(0))).toThrow(/term 1 below 2/);
  });
});
