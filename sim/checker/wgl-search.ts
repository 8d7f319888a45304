/**
 * Wing & Gong's search with Lowe's memoization, over one key.
 *
 * Wing & Gong (1993, "Testing and verifying concurrent objects"): a
 * depth-first search that repeatedly linearizes some pending call that comes
 * before the first pending return, and backtracks when none fits the model.
 * Lowe (2017, "Testing for linearizability") added memoization: a
 * configuration (linearized set, model state) already explored is never
 * explored twice (FailedConfigs). The event list is Porcupine's (Athalye,
 * 2017) dancing-links shape (EventList).
 *
 * Unknown ops only have a call node; their return is at +infinity, and the
 * search may finish without them: leaving an unknown op out is the same as
 * linearizing it after everything else, which always works because it
 * observes nothing. The search tries the mandatory ok ops first at every node,
 * and the optional ones only when no ok op fits. Together with the normal-form
 * rules (wgl-normal-form.ts), the lookahead (wgl-lookahead.ts) and the
 * dominance check in FailedConfigs, this is what keeps timeouts from making
 * the search exponential.
 *
 * This file holds the control flow (the step loop, the frame stack,
 * backtracking); every pruning rule it applies lives in its own file.
 */
import { assert } from '../../src/raft/assert.js';
import type { Operation } from './history.js';
import { EventList } from './wgl-event-list.js';
import { FailedConfigs } from './wgl-failed-configs.js';
import { LinearizedSet } from './wgl-linearized-set.js';
import { Lookahead } from './wgl-lookahead.js';
import * as normalForm from './wgl-normal-form.js';
import * as problem from './wgl-problem.js';
import { buildProblem, type Problem } from './wgl-problem.js';
import * as registerModel from './wgl-register-model.js';
import * as stateTable from './wgl-state-table.js';

// Module-local copies, read once: see "Hot constants" in wgl-problem.ts.
const { canSwapWithPrevious, dropsBackToShadow, shadowAfter } = normalForm;
const { NONE } = problem;
const { INCONSISTENT, stepOp } = registerModel;
const { STATE_NULL } = stateTable;

/**
 * The memo of failed configs (FailedConfigs) holds bitsets, so a long search on
 * a key with many operations could otherwise grow without limit. Past this it
 * stops remembering: still sound (it only prunes), just slower, and the step
 * budget still bounds the time.
 */
const CACHE_BYTES_MAX = 256 * 1024 * 1024;

export type KeyOutcome =
  | { readonly verdict: 'linearizable'; readonly steps: number }
  | { readonly verdict: 'budget'; readonly steps: number }
  | {
      readonly verdict: 'violation';
      readonly steps: number;
      readonly problem: Problem;
      /** The longest sequence of ops the search could linearize. */
      readonly prefix: Int32Array;
    };

/** Checks one key's operations, within `stepsMax` search steps. */
export function checkKey(ops: readonly Operation[], stepsMax: number): KeyOutcome {
  const problem = buildProblem(ops);
  const search = new WglSearch(problem);
  const verdict = search.run(stepsMax);
  assert(search.steps <= stepsMax, 'the search stays within its budget');
  if (verdict !== 'violation') return { verdict, steps: search.steps };
  return { verdict, steps: search.steps, problem, prefix: search.longestPrefix() };
}

class WglSearch {
  steps = 0;

  private readonly p: Problem;
  private readonly events: EventList;
  private readonly linearized: LinearizedSet;
  private readonly lookahead: Lookahead;
  private readonly failed: FailedConfigs;
  /** Frame d: the op linearized at depth d, and the search variables before it. */
  private readonly stackOp: Int32Array;
  private readonly stackState: Int32Array;
  private readonly stackLimit: Int32Array;
  private readonly stackDroppable: Int32Array;
  private readonly stackShadow: Int32Array;
  /** Invariant: stackOp[0, bestAgree) equals bestOps[0, bestAgree), and bestAgree <= depth. */
  private readonly bestOps: Int32Array;
  private bestLength = 0;
  private bestAgree = 0;
  private depth = 0;
  private state = STATE_NULL;
  /** Invariant: linearizedOk <= okCount; the search succeeds when they are equal. */
  private linearizedOk = 0;
  /** Rank of the first pending return: only calls before it may be linearized next. */
  private limitRank = 0;
  /**
   * How many unknown ops were linearized since the last ok op that needed
   * them, and `shadow`, the state had they all been dropped (see
   * wgl-normal-form.ts). Invariant: every ok op linearized since then is
   * consistent at the shadow.
   */
  private droppable = 0;
  private shadow = STATE_NULL;

  constructor(p: Problem) {
    const n = p.n;
    this.p = p;
    this.events = new EventList(p);
    this.linearized = new LinearizedSet(p);
    this.lookahead = new Lookahead(p, this.events, this.linearized);
    this.failed = new FailedConfigs(
      this.linearized.okBits.length,
      this.linearized.unknownBits.length,
      CACHE_BYTES_MAX,
    );
    this.stackOp = new Int32Array(n);
    this.stackState = new Int32Array(n);
    this.stackLimit = new Int32Array(n);
    this.stackDroppable = new Int32Array(n);
    this.stackShadow = new Int32Array(n);
    this.bestOps = new Int32Array(n);
  }

  /** Runs until every ok op is linearized, the search space is exhausted, or the budget is. */
  run(stepsMax: number): 'linearizable' | 'violation' | 'budget' {
    const n = this.p.n;
    const okCount = this.p.okCount;
    let cursor = this.events.next(this.events.head);
    let inUnknown = false;
    while (this.linearizedOk < okCount) {
      if (this.steps >= stepsMax) return 'budget';
      this.steps++;
      if (!inUnknown) {
        // Every pending ok call precedes its own return, so the scan meets a return first.
        assert(cursor !== NONE, 'a pending return ends the scan of pending calls');
        if (cursor < n) {
          cursor = this.tryLinearize(cursor) ? this.firstPendingOk() : this.events.next(cursor);
        } else {
          // Wing & Gong: the op returning first must be linearized before anything
          // invoked after its return. Before backtracking, try the optional
          // unknown ops that were invoked before that return.
          this.limitRank = this.rankOf(cursor);
          inUnknown = true;
          cursor = this.events.next(this.events.unknownHead);
        }
        continue;
      }
      if (cursor !== NONE && this.rankOf(cursor) < this.limitRank) {
        const advanced = this.tryLinearize(cursor);
        inUnknown = !advanced;
        cursor = advanced ? this.firstPendingOk() : this.events.next(cursor);
        continue;
      }
      if (this.depth === 0) return 'violation';
      const undone = this.backtrack();
      // Resume after the undone op in its own list: its alternatives come next.
      inUnknown = this.p.known[undone] === 0;
      cursor = this.events.next(undone);
    }
    return 'linearizable';
  }

  longestPrefix(): Int32Array {
    return this.bestOps.slice(0, this.bestLength);
  }

  /** Linearizes op i next if its step is consistent, canonical, and not known to fail. */
  private tryLinearize(i: number): boolean {
    const known = this.p.known[i] === 1;
    const after = stepOp(this.p, i, this.state);
    if (after === INCONSISTENT) return false;
    // An unknown op that changes nothing is pointless here: it stays available for later.
    if (!known && after === this.state) return false;
    if (this.isUnneeded(i, after)) return false;
    if (!this.lookahead.windowReachable(i, after)) return false;
    const shadow = shadowAfter(this.p, i, this.state, this.droppable, this.shadow);
    if (shadow !== NONE && !this.lookahead.droppableNeedable(i, after, shadow)) return false;
    this.linearized.toggle(i);
    if (this.isKnownFailure(after)) {
      this.linearized.toggle(i);
      return false;
    }
    this.pushFrame(i);
    this.advanceDroppable(known, shadow);
    this.depth++;
    this.state = after;
    this.events.lift(i, known);
    if (known) this.linearizedOk++;
    if (this.depth > this.bestLength) this.recordBest();
    return true;
  }

  /** Whether op i would break normal form (see wgl-normal-form.ts). */
  private isUnneeded(i: number, after: number): boolean {
    if (dropsBackToShadow(this.p, i, after, this.droppable, this.shadow)) return true;
    const d = this.depth - 1;
    if (d < 0) return false;
    const u = this.stackOp[d] ?? NONE;
    return canSwapWithPrevious(this.p, u, this.stackState[d] ?? STATE_NULL, i, after);
  }

  /**
   * Updates the droppable run for op i about to be linearized, given
   * `shadow = shadowAfter(i)`: an unknown op joins the run, and an ok op that
   * does not fit the shadow needs the run, so it can no longer be dropped.
   */
  private advanceDroppable(known: boolean, shadow: number): void {
    if (!known) this.droppable++;
    else if (shadow === NONE) this.droppable = 0;
    if (shadow !== NONE) this.shadow = shadow;
  }

  /** Whether the config (current linearized set, `state`) is dominated by a recorded failure. */
  private isKnownFailure(state: number): boolean {
    const { okBits, unknownBits } = this.linearized;
    return this.failed.dominates(okBits, unknownBits, this.linearized.hashWith(state), state);
  }

  /** Saves the search variables beneath the op about to be linearized at this depth. */
  private pushFrame(i: number): void {
    const d = this.depth;
    this.stackOp[d] = i;
    this.stackState[d] = this.state;
    this.stackLimit[d] = this.limitRank;
    this.stackDroppable[d] = this.droppable;
    this.stackShadow[d] = this.shadow;
  }

  /** Undoes the last linearization; returns its op. */
  private backtrack(): number {
    assert(this.depth > 0, 'backtrack needs a linearized op');
    const d = this.depth - 1;
    const i = this.stackOp[d] ?? NONE;
    const known = this.p.known[i] === 1;
    // The config reached by op i has no completion. Remember it only if its next
    // step was unrestricted (see wgl-normal-form.ts): i is ok and no unknown op
    // is droppable. Otherwise the failure may be due to the restriction, and
    // says nothing about the same config reached another way.
    if (known && this.droppable === 0) {
      const { okBits, unknownBits } = this.linearized;
      this.failed.record(okBits, unknownBits, this.linearized.hashWith(this.state), this.state);
    }
    this.depth = d;
    this.state = this.stackState[d] ?? STATE_NULL;
    this.limitRank = this.stackLimit[d] ?? 0;
    this.droppable = this.stackDroppable[d] ?? 0;
    this.shadow = this.stackShadow[d] ?? STATE_NULL;
    this.events.unlift(i, known);
    this.linearized.toggle(i);
    if (known) this.linearizedOk--;
    if (this.bestAgree > d) this.bestAgree = d;
    return i;
  }

  /** Copies only the part of the stack that differs from the best so far: amortized O(1) per step. */
  private recordBest(): void {
    this.bestOps.set(this.stackOp.subarray(this.bestAgree, this.depth), this.bestAgree);
    this.bestLength = this.depth;
    this.bestAgree = this.depth;
  }

  /** After a step succeeds, the scan restarts: the new state may let earlier calls fit. */
  private firstPendingOk(): number {
    return this.events.next(this.events.head);
  }

  private rankOf(node: number): number {
    return this.p.rank[node] ?? NONE;
  }
}
