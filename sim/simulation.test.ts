import { describe, expect, it } from 'vitest';
import { RaftNode } from '../src/raft/raft.js';
import type { Ready } from '../src/raft/ready.js';
import { raftRules } from '../src/raft/rules.js';
import { faultKinds } from './options.js';
import type { SimRaft } from './raft-core.js';
import { replayCommand, sweepFaultPhaseMsRange } from './seed-sweep.js';
import { type RunResult, runSeed } from './simulation.js';

describe('deterministic simulation', () => {
  it('a sweep run replays exactly from the command its failure report prints', async () => {
    const swept = await runSeed(11, { faultPhaseMsRange: sweepFaultPhaseMsRange });
    const replayed = await runSeed(11, { faultPhaseMs: swept.options.faultPhaseMs });
    expect(replayed.options).toEqual(swept.options);
    expect(replayed.traceDigest).toBe(swept.traceDigest);
    expect(replayCommand(swept)).toContain(
      `--options '{"faultPhaseMs":${swept.options.faultPhaseMs}}'`,
    );
  });

  it('replays a seed exactly: same options, same trace digest, same history size', async () => {
    const a = await runSeed(42, { faultPhaseMs: 3_000 });
    const b = await runSeed(42, { faultPhaseMs: 3_000 });
    expect(b.options).toEqual(a.options);
    expect(b.traceDigest).toBe(a.traceDigest);
    expect(b.stats).toEqual(a.stats);
    expect(b.trace).toEqual(a.trace);
    const c = await runSeed(43, { faultPhaseMs: 3_000 });
    expect(c.traceDigest).not.toBe(a.traceDigest);
  });

  it('runs every fault kind and still converges', async () => {
    const result = await runSeed(7, {
      clusterSize: 5,
      faultPhaseMs: 8_000,
      faultIntervalMsMean: 150,
      faults: faultKinds,
    });
    expect(result.violations).toEqual([]);
    expect(result.stats.faults).toBeGreaterThan(20);
    expect(result.stats.convergedAfterMs).not.toBeNull();
    expect(result.stats.ok).toBeGreaterThan(0);
  });

  // Regression: a single-voter leader wins without asking anyone; its appends to
  // learners used to leave before its new term was durable, so after a crash it
  // could win the same term again and write different entries at the same
  // (index, term). The core now holds all messages until the term is durable.
  it('a single voter with learners survives crashes of fresh leaders', async () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const result = await runSeed(seed, {
        clusterSize: 1,
        faults: ['membership', 'crashLeader'],
        reactiveFaultRate: 0.3,
        diskLatencyMsMax: 30,
        faultPhaseMs: 15_000,
        heartbeatTicks: 1,
        delayMsMin: 0.2,
        delayMsMax: 1.5,
        clients: 10,
        thinkMsMax: 5,
        faultIntervalMsMean: 300,
      });
      if (result.violations.length > 0) failures.push(describeFailure(result));
    }
    expect(failures.slice(0, 1).join('\n\n')).toBe('');
  });

  it('has teeth: a core that applies different data on one node is caught', async () => {
    const result = await runSeed(3, {
      clusterSize: 3,
      faultPhaseMs: 2_000,
      faults: [],
      makeNode: (config, persisted) => {
        const node = new RaftNode(config, persisted);
        return config.id === 'n2' ? corruptingApplies(node) : node;
      },
    });
    expect(result.violations.join('\n')).toMatch(/state machine safety|replica divergence/);
    expect(result.trace.length).toBeGreaterThan(0);
  });

  it('has teeth: a core that votes for candidates with stale logs is caught', async () => {
    const rules = { ...raftRules, isUpToDate: () => true };
    const found: string[] = [];
    for (let seed = 1; seed <= 10 && found.length === 0; seed++) {
      const result = await runSeed(seed, {
        clusterSize: 5,
        faultPhaseMs: 6_000,
        faultIntervalMsMean: 200,
        faults: ['crash', 'crashLeader', 'partition'],
        makeNode: (config, persisted) => new RaftNode(config, persisted, rules),
      });
      found.push(...result.violations.filter((v) => !v.includes('exception')));
    }
    expect(found.join('\n')).toMatch(/leader completeness|state machine safety|linearizability/);
  });
});

/** Flips the payload of every committed normal entry this node applies. */
function corruptingApplies(node: RaftNode): SimRaft {
  const wrapper: SimRaft = {
    tick: () => node.tick(),
    step: (m) => node.step(m),
    propose: (d) => node.propose(d),
    proposeConfChange: (c) => node.proposeConfChange(c),
    readIndex: (c) => node.readIndex(c),
    transferLeadership: (to) => node.transferLeadership(to),
    spreadCommit: () => node.spreadCommit(),
    hasUntoldCommit: () => node.hasUntoldCommit(),
    compact: (i) => node.compact(i),
    reportSnapshot: (to, ok) => node.reportSnapshot(to, ok),
    reportUnreachable: (to) => node.reportUnreachable(to),
    hasReady: () => node.hasReady(),
    ready: (): Ready => {
      const rd = node.ready();
      const committedEntries = rd.committedEntries.map((e) =>
        e.kind === 'normal' && e.data.length > 0 ? { ...e, data: flipLastByte(e.data) } : e,
      );
      return { ...rd, committedEntries };
    },
    advance: (rd) => node.advance(rd),
    status: () => node.status(),
    entry: (i) => node.entry(i),
  };
  return wrapper;
}

function flipLastByte(data: Uint8Array): Uint8Array {
  const copy = Uint8Array.from(data);
  const last = copy.length - 1;
  copy[last] = (copy[last] ?? 0) ^ 1;
  return copy;
}

function describeFailure(result: RunResult): string {
  return [
    `seed ${result.seed}: ${result.violations.join('\n  ')}`,
    ...result.trace.slice(-30),
    `replay: npm run sim -- --seed ${result.seed} --options '${JSON.stringify(result.options)}' --verbose`,
  ].join('\n');
}
