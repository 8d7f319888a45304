import { describe, expect, it } from 'vitest';
import { faultKinds } from './options.js';
import { type RunOverrides, runSeed } from './simulation.js';

/**
 * The simulator runs the real, asynchronous storage code over simulated
 * disks; its promise chains are drained between events, so a seed must still
 * replay exactly: same options, same trace (every line), same digest.
 */
describe('determinism with asynchronous storage', () => {
  const cases: Array<[string, number, RunOverrides]> = [
    ['swarm seed 1', 1, { faultPhaseMs: 6_000 }],
    ['swarm seed 2', 2, { faultPhaseMs: 6_000 }],
    ['swarm seed 3', 3, { faultPhaseMs: 6_000 }],
    [
      'every fault kind, disk faults included',
      4,
      { clusterSize: 5, faultPhaseMs: 6_000, faultIntervalMsMean: 150, faults: faultKinds },
    ],
    [
      'slow disks with failover on degradation',
      // A seed whose slow leader does find a close-behind, healthy follower
      // (the assertion below); which seeds do depends on the message flow.
      7,
      {
        clusterSize: 3,
        faultPhaseMs: 6_000,
        faultIntervalMsMean: 300,
        faults: ['diskSlow'],
        degradation: { fsyncP99Ms: 40, windowMs: 1_000, sustainMs: 500, minIntervalMs: 1_000 },
      },
    ],
  ];
  for (const [name, seed, overrides] of cases) {
    it(`replays ${name} exactly`, async () => {
      const linesA: string[] = [];
      const linesB: string[] = [];
      const a = await runSeed(seed, { ...overrides, traceSink: (l) => linesA.push(l) });
      const b = await runSeed(seed, { ...overrides, traceSink: (l) => linesB.push(l) });
      expect(a.violations).toEqual([]);
      expect(b.options).toEqual(a.options);
      expect(b.stats).toEqual(a.stats);
      expect(b.traceDigest).toBe(a.traceDigest);
      expect(linesB.length).toBe(linesA.length);
      expect(linesB).toEqual(linesA);
      // The nodes did recover from their simulated disks.
      expect(linesA.some((l) => /start \(\/n\d+\/data: snapshot/.test(l))).toBe(true);
      if (overrides.degradation !== undefined) {
        // The scenario exercises what it is for: a degraded leader did hand over.
        expect(linesA.some((l) => l.includes('handing leadership to'))).toBe(true);
      }
    });
  }

  it('different seeds give different traces', async () => {
    const a = await runSeed(1, { faultPhaseMs: 3_000 });
    const b = await runSeed(2, { faultPhaseMs: 3_000 });
    expect(b.traceDigest).not.toBe(a.traceDigest);
  });
});
