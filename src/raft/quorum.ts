/** Quorum arithmetic, kept pure so it can be tested against naive versions. */

/** The size of a majority of `n` voters. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The largest value that at least a majority of `values` have reached: with
 * match indexes, the highest index stored on a majority (§5.3, §5.4.2).
 * Zero for no voters.
 */
export function quorumValue(values: readonly number[]): number {
  const need = majority(values.length);
  if (values.length > quorumByCountingMax) {
    return [...values].sort((a, b) => b - a)[need - 1] ?? 0;
  }
  // The largest value that at least `need` values reach; O(n²) without the
  // copy and comparator a sort allocates (the leader calls this per ack).
  let best = 0;
  for (const v of values) {
    if (v <= best) continue;
    let reached = 0;
    for (const w of values) if (w >= v) reached++;
    if (reached >= need) best = v;
  }
  return best;
}

/** Up to this many voters `quorumValue` counts instead of sorting. */
const quorumByCountingMax = 9;

export type VoteOutcome = 'won' | 'lost' | 'pending';

/** Tallies granted/rejected votes among `voters` (responses from others do not count). */
export function voteOutcome(
  voters: readonly string[],
  votes: ReadonlyMap<string, boolean>,
): VoteOutcome {
  let granted = 0;
  let rejected = 0;
  for (const v of voters) {
    const vote = votes.get(v);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const need = majority(voters.length);
  if (granted >= need) return 'won';
  if (voters.length - rejected < need) return 'lost';
  return 'pending';
}
