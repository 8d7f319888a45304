import { describe, expect, it } from 'vitest';
import { type RunOverrides, runSeed } from './simulation.js';

/**
 * Join, promote and remove under faults (issue 5): the simulated operator
 * changes membership with the admin commands' rules (quorum protection, the
 * automatic promotion of a caught-up learner, the leader handing over before
 * its removal) while nodes crash and the network partitions. Every seed must
 * keep the safety checks and reach the liveness phase's progress; together
 * the seeds must have exercised every rule, so the test cannot pass by
 * doing nothing.
 */
const seeds = 60;

const overrides: RunOverrides = {
  clusterSize: 3,
  nodesMax: 7,
  faults: ['membership', 'crash', 'crashLeader', 'partition'],
  faultIntervalMsMean: 250,
  faultPhaseMsRange: [20_000, 30_000],
  lossRate: 0.05,
  preVote: true,
  checkQuorum: true,
};

const patterns = {
  learnerAdded: /operator: addLearner n\d+ via n\d+ proposed/,
  promoted: /operator: addVoter n\d+ via n\d+ proposed/,
  removed: /operator: removeNode n\d+ via n\d+ proposed/,
  leaderHandsOver: /operator: remove (n\d+): hand leadership to n\d+ first: started/,
  removalRefused:
    /operator: remove n\d+ refused: removing n\d+ would leave \d+ voters of which \d+ are reachable/,
  removalForced: /operator: remove n\d+ refused: .*\(forced\)/,
  removedShutDown: /shut down: its removal is committed/,
} as const;

describe('membership changes under faults in the simulator', () => {
  it(`keeps safety and liveness over ${seeds} seeds while the operator joins, promotes and removes nodes`, async () => {
    const seen = Object.fromEntries(Object.keys(patterns).map((k) => [k, 0])) as Record<
      keyof typeof patterns,
      number
    >;
    let nodesCreatedMax = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const result = await runSeed(seed, {
        ...overrides,
        traceSink: (line) => {
          for (const [name, re] of Object.entries(patterns)) {
            if (re.test(line)) seen[name as keyof typeof patterns]++;
          }
        },
      });
      expect(result.violations, `seed ${seed}`).toEqual([]);
      expect(result.stats.convergedAfterMs, `seed ${seed} converged`).not.toBeNull();
      nodesCreatedMax = Math.max(nodesCreatedMax, result.stats.nodesCreated);
    }
    console.log(`membership under faults, ${seeds} seeds: ${JSON.stringify(seen)}`);
    for (const [name, count] of Object.entries(seen)) {
      expect(count, `${name} never happened`).toBeGreaterThan(0);
    }
    expect(nodesCreatedMax).toBeGreaterThan(overrides.clusterSize as number);
  }, 300_000);
});
