import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { nodeId } from '../raft/types.js';
import type { HealthState } from './degradation.js';
import {
  decodeHealth,
  encodeHealth,
  LeaderHealth,
  type LeaderHealthHost,
} from './leader-health.js';

const healthy: HealthState = { fsyncP99Ms: 3, loopDelayP99Ms: 1, slow: '' };
const slow: HealthState = { fsyncP99Ms: 900, loopDelayP99Ms: 1, slow: 'fsync p99 900 ms > 500 ms' };
const limits = { windowMs: 2_000, sustainMs: 2_000, minIntervalMs: 10_000 };

/** A leader whose fsyncs take `fsyncMs`, checked every second for `seconds`. */
async function run(options: {
  fsyncMs: number;
  answers: Record<string, HealthState | null>;
  /** The voters close behind; a function of the clock (ms) when they change. */
  transferees?: string[] | ((clockMs: number) => string[]);
  seconds: number;
}): Promise<{ handovers: number; transfers: string[]; warnings: string[] }> {
  let clock = 0;
  const transfers: string[] = [];
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
  const host: LeaderHealthHost = {
    isLeader: () => true,
    transferees: () => {
      const t = options.transferees ?? [];
      return (typeof t === 'function' ? t(clock) : t).map(nodeId);
    },
    askHealth: async (to) => options.answers[to] ?? null,
    transfer: (to) => {
      transfers.push(to);
      return null;
    },
    log,
  };
  const health = new LeaderHealth(host, limits, () => clock);
  for (let t = 0; t < options.seconds * 10; t++) {
    clock += 100;
    health.recordFsync(options.fsyncMs);
    if (clock % 1000 === 0) await health.cycle();
  }
  return { handovers: health.handovers, transfers, warnings };
}

describe('LeaderHealth', () => {
  it('hands a slow leader over to a healthy follower, once per minimum interval', async () => {
    const result = await run({
      fsyncMs: 800,
      answers: { n2: healthy },
      transferees: ['n2'],
      seconds: 15,
    });
    // Slow from the start: sustained at 2 s, then again 10 s later.
    expect(result.transfers).toEqual(['n2', 'n2']);
    expect(result.handovers).toBe(2);
    expect(result.warnings[0]).toMatch(/handing leadership over/);
    expect(result.warnings[0]).toMatch(/"why":"fsync p99 800 ms > 500 ms for 2 s"/);
  });

  it('keeps leadership when the follower is as slow, and says so once', async () => {
    const result = await run({
      fsyncMs: 800,
      answers: { n2: slow },
      transferees: ['n2'],
      seconds: 15,
    });
    expect(result.transfers).toEqual([]);
    const refusals = result.warnings.filter((w) => w.includes('keeps leadership'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(/n2 is slow too: fsync p99 900 ms/);
  });

  it('keeps leadership when the follower does not answer or none is close behind', async () => {
    const silent = await run({
      fsyncMs: 800,
      answers: { n2: null },
      transferees: ['n2'],
      seconds: 5,
    });
    expect(silent.transfers).toEqual([]);
    expect(silent.warnings.join('')).toMatch(/n2 did not answer/);
    const none = await run({ fsyncMs: 800, answers: { n2: healthy }, seconds: 5 });
    expect(none.transfers).toEqual([]);
    expect(none.warnings.join('')).toMatch(/no follower is active and close behind/);
  });

  it('says why it keeps leadership once per reason when the reason changes', async () => {
    // No follower is close behind at first; then n2 catches up but is as slow.
    const result = await run({
      fsyncMs: 800,
      answers: { n2: slow },
      transferees: (clockMs) => (clockMs < 4_000 ? [] : ['n2']),
      seconds: 8,
    });
    expect(result.transfers).toEqual([]);
    const lines = result.warnings.filter((w) => /leader degraded, but/.test(w));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/no follower is active and close behind/);
    expect(lines[1]).toMatch(/keeps leadership: n2 is slow too/);
  });

  it('asks the next voter when the most caught-up one is slow too', async () => {
    const result = await run({
      fsyncMs: 800,
      answers: { n2: slow, n3: healthy },
      transferees: ['n2', 'n3'],
      seconds: 5,
    });
    expect(result.transfers).toEqual(['n3']);
  });

  it('passes over a voter that is only just under the threshold', async () => {
    const result = await run({
      fsyncMs: 800,
      answers: { n2: { ...healthy, fsyncP99Ms: 400 }, n3: healthy },
      transferees: ['n2', 'n3'],
      seconds: 5,
    });
    expect(result.transfers).toEqual(['n3']);
  });

  it('does nothing with a fast disk', async () => {
    const result = await run({
      fsyncMs: 4,
      answers: { n2: healthy },
      transferees: ['n2'],
      seconds: 15,
    });
    expect(result.transfers).toEqual([]);
    expect(result.warnings).toEqual([]);
  });

  it('encodes a health answer and refuses anything else', () => {
    expect(decodeHealth(encodeHealth(slow))).toEqual(slow);
    expect(decodeHealth({ kind: 'error', message: 'ERR unknown' })).toBeNull();
    expect(decodeHealth({ kind: 'array', items: [] })).toBeNull();
  });
});
