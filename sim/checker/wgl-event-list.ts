/**
 * The search's view of pending events: two doubly-linked lists from which a
 * linearized op's events are lifted, and restored in place on backtrack.
 *
 * This is Knuth's "dancing links", the shape Porcupine (Athalye, 2017) gave
 * Wing & Gong's search: lifting and restoring are O(1), and restoring in the
 * reverse order of lifting puts every node back exactly where it was, so the
 * depth-first search needs no copies of the list.
 *
 * Known (ok) ops have a call node and a return node in the main list. Unknown
 * ops only have a call node, in a second list: their return is at +infinity.
 * Keeping them apart lets the search try the mandatory ok ops first at every
 * node, and the optional ones only when no ok op fits.
 */

import type { Problem } from './wgl-problem.js';
import * as problem from './wgl-problem.js';

// Module-local copies, read once: see "Hot constants" in wgl-problem.ts.
const { NONE } = problem;

export class EventList {
  /** Sentinel node before the first pending ok event. */
  readonly head: number;
  /** Sentinel node before the first pending unknown call. */
  readonly unknownHead: number;
  private readonly n: number;
  /** Invariant: for a linked node x, prevNode[nextNode[x]] === x (when nextNode[x] !== NONE). */
  private readonly nextNode: Int32Array;
  private readonly prevNode: Int32Array;

  constructor(p: Problem) {
    const n = p.n;
    this.n = n;
    this.head = 2 * n;
    this.unknownHead = 2 * n + 1;
    this.nextNode = new Int32Array(2 * n + 2).fill(NONE);
    this.prevNode = new Int32Array(2 * n + 2).fill(NONE);
    this.linkEvents(p);
  }

  /** The node after `node` in its list, or NONE at the end. */
  next(node: number): number {
    return this.nextNode[node] ?? NONE;
  }

  /** Removes op i's nodes from its list; they keep their own links for `unlift`. */
  lift(i: number, known: boolean): void {
    this.unlink(i);
    if (known) this.unlink(this.n + i);
  }

  /** Restores in the reverse order of `lift` (Knuth's dancing links). */
  unlift(i: number, known: boolean): void {
    if (known) this.relink(this.n + i);
    this.relink(i);
  }

  /** Appends every event, in real-time order, to the list it belongs to. */
  private linkEvents(p: Problem): void {
    let tail = this.head;
    let unknownTail = this.unknownHead;
    for (const event of p.order) {
      const isUnknownCall = event < p.n && p.known[event] === 0;
      if (isUnknownCall) {
        this.nextNode[unknownTail] = event;
        this.prevNode[event] = unknownTail;
        unknownTail = event;
        continue;
      }
      this.nextNode[tail] = event;
      this.prevNode[event] = tail;
      tail = event;
    }
  }

  private unlink(node: number): void {
    const before = this.prevNode[node] ?? NONE;
    const after = this.nextNode[node] ?? NONE;
    this.nextNode[before] = after;
    if (after !== NONE) this.prevNode[after] = before;
  }

  private relink(node: number): void {
    const before = this.prevNode[node] ?? NONE;
    const after = this.nextNode[node] ?? NONE;
    this.nextNode[before] = node;
    if (after !== NONE) this.prevNode[after] = node;
  }
}
