import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { majority, quorumValue, voteOutcome } from './quorum.js';

/** Naive: the largest v such that at least a majority of values are >= v. */
function naiveQuorumValue(values: readonly number[]): number {
  if (values.length === 0) return 0;
  let best = 0;
  for (const v of values) {
    const atLeast = values.filter((x) => x >= v).length;
    if (atLeast * 2 > values.length && v > best) best = v;
  }
  return best;
}

describe('quorum arithmetic', () => {
  it('majority is more than half', () => {
    for (let n = 1; n <= 9; n++) {
      expect(majority(n) * 2).toBeGreaterThan(n);
      expect((majority(n) - 1) * 2).toBeLessThanOrEqual(n);
    }
  });

  it('quorumValue matches the naive definition', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(50), { maxLength: 15 }), (values) => {
        expect(quorumValue(values)).toBe(naiveQuorumValue(values));
      }),
      { numRuns: 2000 },
    );
  });

  it('voteOutcome matches counting, and ignores non-voters', () => {
    const voter = fc.constantFrom('a', 'b', 'c', 'd', 'e');
    fc.assert(
      fc.property(
        fc.uniqueArray(voter, { minLength: 1 }),
        fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'x'), fc.boolean())),
        (voters, responses) => {
          const votes = new Map<string, boolean>();
          for (const [id, granted] of responses) if (!votes.has(id)) votes.set(id, granted);
          const granted = voters.filter((v) => votes.get(v) === true).length;
          const rejected = voters.filter((v) => votes.get(v) === false).length;
          const q = Math.floor(voters.length / 2) + 1;
          const expected = granted >= q ? 'won' : rejected > voters.length - q ? 'lost' : 'pending';
          expect(voteOutcome(voters, votes)).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
