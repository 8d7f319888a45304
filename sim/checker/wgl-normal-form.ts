/**
 * Partial-order reduction for unknown-outcome ops: the rules that keep the
 * search to normal-form linearizations.
 *
 * An unknown op never returns, so it can always be moved later, or dropped,
 * without breaking real-time order. Every linearization therefore has a normal
 * form in which no unknown ops can be dropped and none can be moved later past
 * the op after it. The search only builds normal forms, which stops it from
 * trying every subset and order of pending unknown ops (exponential in the
 * number of timeouts, where Wing & Gong 1993 and Porcupine would enumerate
 * them all).
 * - Dropping: the unknown ops linearized since the last ok op that needed
 *   them (the "droppable" run) can all be dropped while every ok op since then
 *   fits the shadow state, the state had they never been linearized. Once op i
 *   would make the state equal the shadow again, dropping them changes
 *   nothing, so this order is not a normal form.
 * - Moving: an op Y right after an unknown op U must need U. If Y commutes
 *   with U, the two can swap: ok ops go first, two unknown ops in rank order.
 * These rules depend on the path, not only on the config, so a failed config
 * is remembered only when neither restricts its next step (see WglSearch's
 * backtrack).
 */

import type { Problem } from './wgl-problem.js';
import * as problem from './wgl-problem.js';
import * as registerModel from './wgl-register-model.js';

// Module-local copies, read once: see "Hot constants" in wgl-problem.ts.
const { NONE } = problem;
const { INCONSISTENT, stepOp } = registerModel;

/**
 * The dropping rule: with a droppable run pending, op i reaching `after` from
 * the shadow too means the run was useless to it.
 */
export function dropsBackToShadow(
  p: Problem,
  i: number,
  after: number,
  droppable: number,
  shadow: number,
): boolean {
  return droppable > 0 && stepOp(p, i, shadow) === after;
}

/**
 * The moving rule: whether op i, reaching `after` right after unknown op u
 * (which was linearized from state `before`), could instead go first with the
 * same result, and the order with i first is the canonical one.
 */
export function canSwapWithPrevious(
  p: Problem,
  u: number,
  before: number,
  i: number,
  after: number,
): boolean {
  if (p.known[u] === 1) return false;
  const withoutU = stepOp(p, i, before);
  if (withoutU === INCONSISTENT) return false; // needs U
  if (stepOp(p, u, withoutU) !== after) return false; // order matters
  return p.known[i] === 1 || (p.rank[i] ?? NONE) < (p.rank[u] ?? NONE);
}

/**
 * What the shadow becomes once op i is linearized from `state`, or NONE when
 * no unknown op is droppable then: an unknown op starts (or extends) the run;
 * an ok op that fits the shadow keeps it droppable; one that does not needs
 * the run, which ends it.
 */
export function shadowAfter(
  p: Problem,
  i: number,
  state: number,
  droppable: number,
  shadow: number,
): number {
  if (p.known[i] === 0) return droppable === 0 ? state : shadow;
  if (droppable === 0) return NONE;
  const next = stepOp(p, i, shadow);
  return next === INCONSISTENT ? NONE : next;
}
