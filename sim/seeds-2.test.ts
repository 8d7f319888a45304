import { expect, it } from 'vitest';
import { sweep } from './seed-sweep.js';

it('finds no violation in seeds 1001..2000 with faults', async () => {
  const summary = await sweep(1001, 1000);
  console.log(summary.line);
  expect(summary.failures.slice(0, 3).join('\n\n')).toBe('');
}, 600_000);
