import { assert } from '../src/raft/assert.js';

/** An event due at `time` (simulated ms); `seq` breaks ties in insertion order. */
export interface Scheduled<T> {
  readonly time: number;
  readonly seq: number;
  readonly value: T;
}

/**
 * A binary min-heap of timed events. Ties in time pop in insertion order, so a
 * run is fully determined by the order events are pushed.
 */
export class EventQueue<T> {
  private readonly heap: Scheduled<T>[] = [];
  private seqNext = 0;

  /** Invariant: no queue grows past this (a runaway feedback loop is a bug). */
  constructor(private readonly sizeMax: number = 1_000_000) {}

  get size(): number {
    return this.heap.length;
  }

  push(time: number, value: T): void {
    // Conditions first: these run for every event, so no message is built unless needed.
    if (!(time >= 0 && time < Number.POSITIVE_INFINITY)) {
      assert(false, `event time must be finite and >= 0, got ${time}`);
    }
    if (this.heap.length >= this.sizeMax)
      assert(false, `event queue exceeded ${this.sizeMax} events`);
    const item: Scheduled<T> = { time, seq: this.seqNext++, value };
    const heap = this.heap;
    let i = heap.length;
    heap.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Scheduled<T>;
      if (!before(item, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = item;
  }

  peekTime(): number | undefined {
    return this.heap[0]?.time;
  }

  pop(): Scheduled<T> | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    const n = heap.length;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && before(heap[right] as Scheduled<T>, heap[left] as Scheduled<T>))
        child = right;
      const c = heap[child] as Scheduled<T>;
      if (!before(c, last)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

function before<T>(a: Scheduled<T>, b: Scheduled<T>): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
