import { describe, expect, it } from 'vitest';
import { heapGrowthPercentFor, heapSlackMinBytes } from './heap-growth.js';

const MiB = 1024 * 1024;

describe('heapGrowthPercentFor', () => {
  it('gives a small heap at least the minimum slack, in 5% steps, up to 300%', () => {
    expect(heapGrowthPercentFor(40 * MiB, 15)).toBe(80); // 32/40 = 80%
    expect(heapGrowthPercentFor(100 * MiB, 15)).toBe(35); // 32% rounded up
    expect(heapGrowthPercentFor(4 * MiB, 15)).toBe(300);
    expect(heapGrowthPercentFor(0, 15)).toBe(300);
  });

  it('keeps the configured percent once that gives more than the minimum slack', () => {
    expect(heapGrowthPercentFor(250 * MiB, 15)).toBe(15);
    expect(heapGrowthPercentFor(2048 * MiB, 15)).toBe(15);
    expect(heapGrowthPercentFor(250 * MiB, 40)).toBe(40);
  });

  it('always allows at least the minimum slack', () => {
    for (let heap = MiB; heap < 4096 * MiB; heap = Math.ceil(heap * 1.7)) {
      const percent = heapGrowthPercentFor(heap, 15);
      if (percent < 300) expect((heap * percent) / 100).toBeGreaterThanOrEqual(heapSlackMinBytes);
    }
  });
});
