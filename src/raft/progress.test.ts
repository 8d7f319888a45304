import { describe, expect, it } from 'vitest';
import { Inflights, Progress } from './progress.js';
import { logIndex } from './types.js';

describe('Progress', () => {
  it('a rejection in replicate falls back to probe and empties the window', () => {
    const pr = new Progress(logIndex(1), 4, 1 << 20);
    pr.maybeUpdate(logIndex(10), 0);
    pr.becomeReplicate();
    pr.sentAppend(logIndex(20), 100, 10);
    pr.sentAppend(logIndex(30), 100, 10);
    // A stale append (sent before a snapshot, say) is rejected at 25 with hint 12.
    expect(pr.maybeDecrTo(logIndex(25), logIndex(12))).toBe(true);
    expect([pr.state, pr.next, pr.inflights.count()]).toEqual(['probe', 12, 0]);
    // Sending from 12 must not trip the window's ordering check.
    pr.sentAppend(logIndex(15), 100, 4);
    expect(pr.probeSent).toBe(true);
  });

  it('ignores stale rejections', () => {
    const pr = new Progress(logIndex(1), 4, 1 << 20);
    pr.maybeUpdate(logIndex(10), 0);
    pr.becomeReplicate();
    expect(pr.maybeDecrTo(logIndex(9), logIndex(5))).toBe(false);
    pr.becomeProbe();
    expect(pr.maybeDecrTo(logIndex(3), logIndex(2))).toBe(false);
    pr.becomeSnapshot(logIndex(50));
    expect(pr.maybeDecrTo(logIndex(10), logIndex(5))).toBe(false);
  });

  it('the window is bounded by count and bytes and frees in order', () => {
    const w = new Inflights(3, 250);
    w.add(logIndex(1), 100);
    w.add(logIndex(2), 100);
    expect(w.full()).toBe(false);
    w.add(logIndex(3), 100);
    expect(w.full()).toBe(true);
    w.freeLE(logIndex(2));
    expect([w.count(), w.full()]).toEqual([1, false]);
    w.freeFirst();
    expect(w.count()).toBe(0);
    expect(() => {
      w.add(logIndex(5), 300);
      w.add(logIndex(6), 1);
    }).toThrow(/full inflights/);
  });
});
