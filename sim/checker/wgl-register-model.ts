/**
 * The sequential specification of one key: a register with get, put, cas and
 * append, plus the questions the lookahead asks of it.
 *
 * Linearizability is always relative to a sequential model (Herlihy & Wing
 * 1990); keeping the model apart from the search means the search is generic
 * over "a state, and a step that may be inconsistent", as in Wing & Gong
 * (1993) and Porcupine's `Model`, and this file alone says what a key-value
 * register does.
 */

import type { Problem } from './wgl-problem.js';
import * as problem from './wgl-problem.js';

// Module-local copies, read once: see "Hot constants" in wgl-problem.ts.
const { KIND_CAS, KIND_GET, KIND_PUT, NONE } = problem;

/** Returned by `stepOp` when the operation's observed output contradicts the state. */
export const INCONSISTENT = -1;
/** Up to this length, a read value's writers are found by looking up each prefix. */
const PREFIX_LOOKUPS_MAX = 64;

/**
 * The register model: the state after op i from `state`, or INCONSISTENT when
 * the op's observed output cannot happen in `state`. An unknown op has no
 * observed output, so it always applies with its real semantics (an unknown
 * cas swaps exactly when expected matches).
 */
export function stepOp(p: Problem, i: number, state: number): number {
  switch (p.kind[i]) {
    case KIND_GET:
      return p.outputId[i] === state ? state : INCONSISTENT;
    case KIND_PUT:
      return p.valueId[i] ?? INCONSISTENT;
    case KIND_CAS: {
      const matches = state === p.expectedId[i];
      if (p.known[i] === 1 && (p.outputId[i] === 1) !== matches) return INCONSISTENT;
      return matches ? (p.valueId[i] ?? INCONSISTENT) : state;
    }
    default:
      return appendState(p, i, state);
  }
}

/** The state an ok op observes exactly (get: the value read; swapped cas: expected), else NONE. */
export function observedState(p: Problem, i: number): number {
  if (p.known[i] !== 1) return NONE;
  if (p.kind[i] === KIND_GET) return p.outputId[i] ?? NONE;
  if (p.kind[i] === KIND_CAS && p.outputId[i] === 1) return p.expectedId[i] ?? NONE;
  return NONE;
}

/**
 * Whether observer g's expected value can follow from state `after` without
 * any write: g observes nothing exact, or the value is already there, or
 * appends can extend `after` into it. Otherwise a writer must still be
 * available (writersFor).
 */
export function expectedReachable(p: Problem, g: number, after: number): boolean {
  const target = observedState(p, g);
  if (target === NONE || target === after) return true;
  const expected = p.states.value(target);
  if (expected === null) return false; // no write or append produces absence
  return expected.startsWith(p.states.value(after) ?? '');
}

/**
 * The ops that could write a prefix of what observer g reads (puts, and cas ops
 * that swapped or may have), among those invoked before g returned: the only
 * writes that can lead to g's value. Appends are not writers: they extend.
 * Looks up each prefix of the value; values longer than PREFIX_LOOKUPS_MAX
 * (long append chains) scan all written values instead, since one lookup per
 * character would then cost more than the scan.
 */
export function writersFor(p: Problem, g: number): Int32Array {
  const target = p.states.value(observedState(p, g));
  const found: number[] = [];
  if (target === null) return Int32Array.from(found);
  const deadlineRank = p.rank[p.n + g] ?? NONE;
  const collect = (writers: readonly number[]): void => {
    for (const w of writers) {
      if (w !== g && (p.rank[w] ?? NONE) < deadlineRank) found.push(w);
    }
  };
  if (target.length <= PREFIX_LOOKUPS_MAX) {
    for (let length = 0; length <= target.length; length++) {
      const writers = p.writersByValue.get(target.slice(0, length));
      if (writers !== undefined) collect(writers);
    }
  } else {
    for (const [value, writers] of p.writersByValue) {
      if (target.startsWith(value)) collect(writers);
    }
  }
  return Int32Array.from(found);
}

/** Appends build strings, so the result per (state, op) is interned once and remembered. */
function appendState(p: Problem, i: number, state: number): number {
  const memoKey = state * p.n + i;
  const memo = p.appendMemo.get(memoKey);
  if (memo !== undefined) return memo;
  const next = p.states.intern((p.states.value(state) ?? '') + (p.appendSuffix[i] ?? ''));
  p.appendMemo.set(memoKey, next);
  return next;
}
