/**
 * Lookahead: necessary conditions for any completion, checked before the
 * search commits to a step.
 *
 * Plain Wing & Gong (1993) only discovers a wrong step once everything beneath
 * it has been enumerated. With unknown-outcome ops that enumeration is
 * exponential, so these checks cut a branch as soon as it destroys a value
 * someone still has to observe. Each is sound: it only rejects steps after
 * which no linearization can exist (or, for `droppableNeedable`, no
 * normal-form one; see wgl-normal-form.ts). Each scan is bounded, and gives up
 * by saying yes, which costs only pruning power.
 */
import type { EventList } from './wgl-event-list.js';
import type { LinearizedSet } from './wgl-linearized-set.js';
import type { Problem } from './wgl-problem.js';
import * as problem from './wgl-problem.js';
import * as registerModel from './wgl-register-model.js';
import * as stateTable from './wgl-state-table.js';

// Module-local copies, read once: see "Hot constants" in wgl-problem.ts.
const { expectedReachable, observedState, writersFor } = registerModel;
const { KIND_CAS, KIND_PUT, NONE } = problem;
const { STATE_NULL } = stateTable;

/** How far ahead in the event list a lookahead scan may look (a cost bound, not a correctness one). */
const LOOKAHEAD_NODES_MAX = 64;

export class Lookahead {
  private readonly p: Problem;
  private readonly events: EventList;
  private readonly linearized: LinearizedSet;
  /** Per observer op, lazily: the writers that could produce its expected value (see reachable). */
  private readonly writers: (Int32Array | undefined)[];

  constructor(p: Problem, events: EventList, linearized: LinearizedSet) {
    this.p = p;
    this.events = events;
    this.linearized = linearized;
    this.writers = new Array<Int32Array | undefined>(p.n);
  }

  /**
   * A necessary condition for any completion after linearizing op i into
   * state `after`. Every pending ok op g must be linearized before anything
   * invoked after g returns. If g observes an exact value (a get, or a cas
   * that swapped), that value must still be reachable using only the ops that
   * may run before g. Writes reset the value and appends extend it. So the
   * expected value must extend the current value, or extend the value of a
   * writer that is still available. Checks the window: the ok calls before the
   * first pending return (other than i's own).
   */
  windowReachable(i: number, after: number): boolean {
    const n = this.p.n;
    for (
      let node = this.events.next(this.events.head);
      node !== NONE;
      node = this.events.next(node)
    ) {
      if (node >= n) {
        if (node - n === i) continue;
        return true;
      }
      if (node !== i && !this.reachable(node, i, after)) return false;
    }
    return true;
  }

  /**
   * Lookahead for droppable unknown ops (see wgl-normal-form.ts): they must be
   * needed by some ok get or cas before any put erases them, or the search is
   * not building a normal form. Only ops invoked before the first pending put
   * returns can come before it, and no put can come between. A get or swapped
   * cas can need them only if its expected value extends the current one, or
   * one that pending unknown cas ops could write (unknownCasCouldReach). A
   * failed cas can need them only if its expected value extends the shadow.
   * The scan is capped: past the cap it gives up and says yes.
   */
  droppableNeedable(i: number, after: number, shadow: number): boolean {
    const n = this.p.n;
    const value = this.p.states.value(after) ?? '';
    let scanned = 0;
    for (
      let node = this.events.next(this.events.head);
      node !== NONE;
      node = this.events.next(node)
    ) {
      if (++scanned > LOOKAHEAD_NODES_MAX) return true;
      if (node >= n) {
        if (node - n !== i && this.p.kind[node - n] === KIND_PUT) return false;
        continue;
      }
      if (node !== i && this.couldNeed(node, i, after, value, shadow)) return true;
    }
    return false;
  }

  /** Whether ok op g could be the one that needs the droppable unknown ops. */
  private couldNeed(g: number, i: number, after: number, value: string, shadow: number): boolean {
    if (this.p.kind[g] === KIND_CAS && this.p.outputId[g] === 0) {
      // Needs them when the shadow, extended by appends, would equal expected.
      const expected = this.p.states.value(this.p.expectedId[g] ?? STATE_NULL);
      if (expected === null) return shadow === STATE_NULL;
      return expected.startsWith(this.p.states.value(shadow) ?? '');
    }
    const target = observedState(this.p, g);
    if (target === NONE) return false;
    const expected = this.p.states.value(target);
    if (expected === null) return false; // no write or append produces absence
    return expected.startsWith(value) || this.unknownCasCouldReach(i, after, expected);
  }

  /**
   * Whether pending unknown cas ops could lead from state `after` to a value
   * that `target` extends. Between here and the op that needs the droppable
   * ops there can be appends and more unknown ops, and unknown cas ops can
   * chain: each swaps from a value that appends or an earlier one produced.
   * A small fixpoint over the pending unknown cas ops. It only runs when the
   * direct check fails.
   */
  private unknownCasCouldReach(i: number, after: number, target: string): boolean {
    const reached = [this.p.states.value(after) ?? ''];
    const casOps = this.pendingUnknownCas(i);
    for (let changed = true; changed; ) {
      changed = false;
      for (const [index, c] of casOps.entries()) {
        if (c === NONE || !this.enabledFrom(c, after, reached)) continue;
        reached.push(this.p.states.value(this.p.valueId[c] ?? STATE_NULL) ?? '');
        casOps[index] = NONE;
        changed = true;
      }
    }
    return reached.some((prefix) => target.startsWith(prefix));
  }

  /** The pending unknown cas ops other than i, in list (invocation) order. */
  private pendingUnknownCas(i: number): number[] {
    const casOps: number[] = [];
    for (let u = this.events.next(this.events.unknownHead); u !== NONE; u = this.events.next(u)) {
      if (u !== i && this.p.kind[u] === KIND_CAS) casOps.push(u);
    }
    return casOps;
  }

  /** Whether cas c could swap from some value that extends one of `reached`. */
  private enabledFrom(c: number, after: number, reached: readonly string[]): boolean {
    const from = this.p.states.value(this.p.expectedId[c] ?? STATE_NULL);
    if (from === null) return after === STATE_NULL; // absence only while nothing was written
    return reached.some((prefix) => from.startsWith(prefix));
  }

  /** Whether observer g's expected value can still appear, from `after` once op i is linearized. */
  private reachable(g: number, i: number, after: number): boolean {
    if (expectedReachable(this.p, g, after)) return true;
    for (const w of this.writersOf(g)) {
      if (w !== i && !this.linearized.has(w)) return true;
    }
    return false;
  }

  private writersOf(g: number): Int32Array {
    const known = this.writers[g];
    if (known !== undefined) return known;
    const found = writersFor(this.p, g);
    this.writers[g] = found;
    return found;
  }
}
