/**
 * A list value: a growable ring buffer of binary strings, so pushes and pops
 * at both ends are O(1) and indexing is O(1).
 */
import { assert } from '../raft/assert.js';

export class Deque {
  private items: (string | undefined)[];
  private head = 0;
  /** Invariant: 0 <= size <= items.length, items.length a power of two. */
  private count = 0;

  constructor(capacity = 4) {
    let cap = 4;
    while (cap < capacity) cap *= 2;
    this.items = new Array<string | undefined>(cap);
  }

  static from(values: Iterable<string>): Deque {
    const arr = [...values];
    const d = new Deque(arr.length);
    for (const v of arr) d.pushBack(v);
    return d;
  }

  get size(): number {
    return this.count;
  }

  private grow(): void {
    const next = new Array<string | undefined>(this.items.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = this.at(i);
    this.items = next;
    this.head = 0;
  }

  private slot(index: number): number {
    return (this.head + index) & (this.items.length - 1);
  }

  /** The element at 0 <= index < size. */
  at(index: number): string {
    assert(index >= 0 && index < this.count, 'deque index in range');
    return this.items[this.slot(index)] as string;
  }

  set(index: number, value: string): void {
    assert(index >= 0 && index < this.count, 'deque index in range');
    this.items[this.slot(index)] = value;
  }

  pushBack(value: string): void {
    if (this.count === this.items.length) this.grow();
    this.items[this.slot(this.count)] = value;
    this.count++;
  }

  pushFront(value: string): void {
    if (this.count === this.items.length) this.grow();
    this.head = (this.head - 1) & (this.items.length - 1);
    this.items[this.head] = value;
    this.count++;
  }

  popFront(): string | undefined {
    if (this.count === 0) return undefined;
    const v = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.count--;
    return v;
  }

  popBack(): string | undefined {
    if (this.count === 0) return undefined;
    const s = this.slot(this.count - 1);
    const v = this.items[s];
    this.items[s] = undefined;
    this.count--;
    return v;
  }

  /** Elements start..end inclusive (already clamped by the caller). */
  slice(start: number, end: number): string[] {
    const out: string[] = [];
    for (let i = start; i <= end; i++) out.push(this.at(i));
    return out;
  }

  toArray(): string[] {
    return this.count === 0 ? [] : this.slice(0, this.count - 1);
  }

  /** Replaces the contents (O(n) operations such as LREM, LINSERT, LTRIM). */
  replaceAll(values: readonly string[]): void {
    let cap = 4;
    while (cap < values.length) cap *= 2;
    this.items = new Array<string | undefined>(cap);
    this.head = 0;
    this.count = 0;
    for (const v of values) this.pushBack(v);
  }

  clone(): Deque {
    return Deque.from(this.toArray());
  }

  *[Symbol.iterator](): IterableIterator<string> {
    for (let i = 0; i < this.count; i++) yield this.at(i);
  }
}
