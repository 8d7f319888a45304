/**
 * Growable columns for the log's per-entry fields (log.ts). A JS array that
 * grows to 100,000 entries and more reallocates its backing store in V8's
 * large-object space at every 1.5x step, and slicing it at compaction makes
 * another: about 6 MB a second of old-generation garbage per node under
 * pipelined SETs (sampling heap profiler: a third to a half of what a node
 * kept past a scavenge). These keep their capacity across truncation and
 * compaction (moving the kept part to the front), grow by doubling, and
 * give memory back only when a column has become eight times too big
 * (not at every compaction, which would reallocate each cycle).
 */
import { assert } from './assert.js';

const capacityMin = 1024;

function capacityFor(count: number): number {
  return Math.max(capacityMin, 2 ** Math.ceil(Math.log2(Math.max(1, count * 2))));
}

function tooBig(capacity: number, count: number): boolean {
  return capacity > capacityMin && capacity >= 8 * Math.max(count, capacityMin);
}

/** What a column keeps its values in: a Float64Array or a plain array. */
interface Storage<T> {
  readonly length: number;
  [k: number]: T;
  copyWithin(target: number, start: number, end?: number): unknown;
  fill(value: T, start?: number, end?: number): unknown;
}

/**
 * Values at 0..length-1. Slots past the length hold `empty`, so a dropped
 * reference keeps nothing alive.
 */
class Column<T> {
  private data: Storage<T>;
  private count = 0;

  constructor(
    private readonly make: (capacity: number) => Storage<T>,
    private readonly empty: T,
  ) {
    this.data = make(capacityMin);
  }

  get length(): number {
    return this.count;
  }

  /** The value at `k`, or undefined out of range. */
  get(k: number): T | undefined {
    return k >= 0 && k < this.count ? this.data[k] : undefined;
  }

  last(): T | undefined {
    return this.count > 0 ? this.data[this.count - 1] : undefined;
  }

  push(value: T): void {
    if (this.count === this.data.length) this.resize(this.count * 2);
    this.data[this.count++] = value;
  }

  /** Keeps the first `count`. */
  truncate(count: number): void {
    assert(count >= 0 && count <= this.count, 'truncate within the column');
    this.data.fill(this.empty, count, this.count);
    this.count = count;
    if (tooBig(this.data.length, count)) this.resize(capacityFor(count));
  }

  /** Drops the first `n`, moving the rest to the front. */
  dropFront(n: number): void {
    assert(n >= 0 && n <= this.count, 'drop within the column');
    this.data.copyWithin(0, n, this.count);
    this.truncate(this.count - n);
  }

  private resize(capacity: number): void {
    const next = this.make(capacity);
    for (let k = 0; k < this.count; k++) next[k] = this.data[k] as T;
    this.data = next;
  }
}

/** Numbers (any float64), in a Float64Array outside the JS heap. */
export class NumberColumn extends Column<number> {
  constructor() {
    super((capacity) => new Float64Array(capacity), 0);
  }
}

/** References, in a plain array made at its full size. */
export class RefColumn<T> extends Column<T | undefined> {
  constructor() {
    super((capacity) => new Array<T | undefined>(capacity).fill(undefined), undefined);
  }
}
