import { describe, expect, it } from 'vitest';
import { hunt, plantedBugs } from './planted-bugs.js';

/** Each planted bug must be caught within this many consecutive seeds (of its aimed swarm, if any). */
const seedsMax = 150;

describe('the checkers have teeth: planted consensus bugs are caught', () => {
  for (const bug of plantedBugs) {
    it(`catches ${bug.name}: ${bug.breaks}`, async () => {
      const d = await hunt(bug, seedsMax, 1, true);
      console.log(
        `${bug.name}: caught after ${d.seedsRun} seed(s): ${d.violation?.split('\n')[0] ?? 'not caught'}`,
      );
      expect(d.caughtAtSeed, `${bug.name} survived ${seedsMax} seeds`).not.toBeNull();
    }, 300_000);
  }
});
