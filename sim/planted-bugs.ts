/**
 * Deliberately broken Raft rules, for showing that the simulator's checkers
 * (and the core's own assertions) catch real consensus bugs. Each bug swaps
 * one rule of `raftRules` through the core's `Rules` parameter; production
 * code never sees these.
 */
import { RaftNode } from '../src/raft/raft.js';
import { type Rules, raftRules } from '../src/raft/rules.js';
import type { SimOptions } from './options.js';
import type { MakeNode } from './raft-core.js';
import { type RunOverrides, runSeed } from './simulation.js';

export interface PlantedBug {
  readonly name: string;
  /** The rule it breaks, and where that rule comes from. */
  readonly breaks: string;
  readonly rules: Rules;
  /**
   * The swarm narrowed to the scenario the bug needs, when the default swarm
   * rarely produces it (Figure 8 needs leaders that crash right after
   * replicating to a minority). Merged into each seed's random options.
   */
  readonly aimed?: Partial<SimOptions>;
}

export const plantedBugs: readonly PlantedBug[] = [
  {
    name: 'votes-across-terms',
    breaks: 'a candidate counts vote responses from earlier terms (§5.1 stale messages)',
    rules: {
      ...raftRules,
      isStale: (type, messageTerm, currentTerm) =>
        type === 'voteResponse' ? false : messageTerm < currentTerm,
    },
    aimed: { preVote: false, faults: ['pause'], reactiveFaultRate: 0.5, clusterSize: 3 },
  },
  {
    name: 'commit-old-term-by-counting',
    breaks: 'a leader commits an earlier term’s entry by counting replicas (§5.4.2, Figure 8)',
    rules: { ...raftRules, mayCommitByCounting: () => true },
    aimed: {
      clusterSize: 3,
      faults: ['crashLeader', 'crash', 'partition'],
      reactiveFaultRate: 0.6,
      appendEntriesMax: 1,
      inflightMessagesMax: 1,
      lossRate: 0.3,
      preVote: false,
      checkQuorum: false,
      readMode: 'readIndex',
      faultIntervalMsMean: 300,
    },
  },
  {
    name: 'skip-append-consistency-check',
    breaks: 'a follower appends without checking prevIndex/prevTerm (§5.3)',
    rules: { ...raftRules, logMatches: () => true },
  },
  {
    name: 'two-votes-per-term',
    breaks: 'a node grants a second vote in a term while it knows no leader (§5.2)',
    rules: {
      ...raftRules,
      mayVoteFor: (candidate, vote, leader, isPreVote) =>
        vote === candidate || leader === '' || isPreVote,
    },
  },
  {
    name: 'skip-up-to-date-check',
    breaks: 'a node votes for a candidate whose log is behind its own (§5.4.1)',
    rules: { ...raftRules, isUpToDate: () => true },
  },
  {
    name: 'half-is-a-quorum',
    breaks:
      'half of the voters (rounded down) count as a majority, for commits and read confirmation',
    rules: {
      ...raftRules,
      quorumValue: (values) => {
        if (values.length === 0) return 0;
        const sorted = [...values].sort((a, b) => b - a);
        return sorted[Math.max(0, Math.floor(values.length / 2) - 1)] ?? 0;
      },
    },
  },
];

export function makeNodeWith(rules: Rules): MakeNode {
  return (config, persisted) => new RaftNode(config, persisted, rules);
}

export interface Detection {
  readonly bug: string;
  /** Seeds run until the first violation, or null if none was found within the budget. */
  readonly seedsRun: number;
  readonly caughtAtSeed: number | null;
  /** The first violation's message (shortened). */
  readonly violation: string | null;
}

/**
 * Runs seeds `start`, `start+1`, ... with `bug` planted until a violation or
 * `seedsMax`; `aimed` narrows the swarm to the bug's scenario.
 */
export async function hunt(
  bug: PlantedBug,
  seedsMax: number,
  start = 1,
  aimed = false,
  overrides: RunOverrides = {},
): Promise<Detection> {
  const makeNode = makeNodeWith(bug.rules);
  if (aimed && bug.aimed !== undefined) overrides = { ...bug.aimed, ...overrides };
  for (let i = 0; i < seedsMax; i++) {
    const seed = start + i;
    const result = await runSeed(seed, { ...overrides, makeNode, traceLines: 0 });
    const first = result.violations[0];
    if (first !== undefined) {
      return { bug: bug.name, seedsRun: i + 1, caughtAtSeed: seed, violation: first.slice(0, 200) };
    }
  }
  return { bug: bug.name, seedsRun: seedsMax, caughtAtSeed: null, violation: null };
}
