/**
 * The proposals a leader waits on, by log index: a ring of 2^k slots
 * allocated once, each holding a chain of the proposals whose index maps to
 * it. A chain is rarely longer than one: the pending proposals span fewer
 * indexes than there are slots, except for an older term's proposal still
 * waiting at an index a newer one was given again (see RaftDriver).
 *
 * Not a Map: a Map reallocates its table as entries come and go, and once
 * the Map lives in the old generation every new table is allocated there
 * too. Each dropped table is old garbage until the next full collection,
 * and the young proposals its stale slots still point to survive every
 * scavenge meanwhile, taking the requests they reference into the old
 * generation with them. Here a taken proposal leaves nothing pointing at it.
 */

import { assert } from '../raft/assert.js';

/** What the table chains: a proposal's index and the link it owns. */
export interface Chained<P> {
  readonly index: number;
  /** The next proposal in the same slot; the table's to set. */
  next: P | null;
}

export class ProposalTable<P extends Chained<P>> {
  private readonly slots: (P | null)[];
  private readonly mask: number;
  private count = 0;

  /** `capacity`: at least the most proposals expected at once (rounded up to a power of 2). */
  constructor(capacity: number) {
    assert(Number.isInteger(capacity) && capacity >= 1, 'capacity is a positive count');
    let n = 16;
    while (n < capacity) n *= 2;
    this.slots = new Array<P | null>(n).fill(null);
    this.mask = n - 1;
  }

  get size(): number {
    return this.count;
  }

  add(p: P): void {
    assert(Number.isSafeInteger(p.index) && p.index > 0, 'a proposal has a log index');
    const slot = p.index & this.mask;
    p.next = this.slots[slot] ?? null;
    this.slots[slot] = p;
    this.count++;
  }

  /** The newest proposal at `index`, left in place. */
  newestAt(index: number): P | null {
    for (let p = this.slots[index & this.mask] ?? null; p !== null; p = p.next) {
      if (p.index === index) return p;
    }
    return null;
  }

  /**
   * Removes the proposals at `index` and returns them chained by `next`,
   * newest first (null if none).
   */
  take(index: number): P | null {
    const slot = index & this.mask;
    let taken: P | null = null;
    let takenTail: P | null = null;
    let kept: P | null = null;
    let keptTail: P | null = null;
    let p = this.slots[slot] ?? null;
    while (p !== null) {
      const next: P | null = p.next;
      p.next = null;
      if (p.index === index) {
        if (takenTail === null) taken = p;
        else takenTail.next = p;
        takenTail = p;
        this.count--;
      } else {
        if (keptTail === null) kept = p;
        else keptTail.next = p;
        keptTail = p;
      }
      p = next;
    }
    this.slots[slot] = kept;
    return taken;
  }

  /** The indexes that have proposals, ascending (a scan of every slot: for rare events). */
  indexes(): number[] {
    const found = new Set<number>();
    for (const head of this.slots) {
      for (let p = head; p !== null; p = p.next) found.add(p.index);
    }
    return [...found].sort((a, b) => a - b);
  }
}
