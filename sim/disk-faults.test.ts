import { describe, expect, it } from 'vitest';
import type { FaultKind } from './options.js';
import { runSeed } from './simulation.js';

/** Runs seeds with one disk fault kind, collecting every trace line. */
async function runWith(
  faults: FaultKind[],
  seeds: number,
): Promise<{ lines: string[]; violations: string[] }> {
  const lines: string[] = [];
  const violations: string[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const result = await runSeed(seed, {
      clusterSize: 5,
      faults,
      faultPhaseMs: 8_000,
      faultIntervalMsMean: 200,
      traceSink: (line) => lines.push(line),
    });
    violations.push(...result.violations.map((v) => `seed ${seed}: ${v}`));
  }
  return { lines, violations };
}

describe('disk faults through the real storage code', () => {
  it('diskFail: a failed write or fdatasync makes the process exit and recover from its disk', async () => {
    const { lines, violations } = await runWith(['diskFail'], 4);
    expect(violations).toEqual([]);
    expect(lines.some((l) => l.includes('exited: storage'))).toBe(true);
    expect(lines.some((l) => /(EIO|ENOSPC) \(injected\)/.test(l))).toBe(true);
  });

  it('diskCorrupt: a node whose disk is damaged either recovers or is removed, never a violation', async () => {
    const { lines, violations } = await runWith(['diskCorrupt', 'crash'], 6);
    expect(violations).toEqual([]);
    expect(lines.some((l) => l.includes('bad sector'))).toBe(true);
    expect(lines.some((l) => l.includes('lost its disk'))).toBe(true);
  });

  it('diskSlow: latency spikes only slow the cluster down', async () => {
    const { lines, violations } = await runWith(['diskSlow', 'crashLeader'], 3);
    expect(violations).toEqual([]);
    expect(lines.some((l) => l.includes('disk slow'))).toBe(true);
  });
});
