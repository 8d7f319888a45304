/**
 * Turns a failed search into a short, readable account of the violation.
 *
 * A verdict alone is useless for debugging a replicated store: the reader
 * needs to see where the history stops making sense. The search records the
 * longest prefix it could linearize; replaying it here and listing the ops
 * that had to come next (and why each one cannot) points at the exact moment
 * the register's behaviour became impossible. Kept apart from the search so
 * that the hot loop never builds a string.
 */
import { assert, fail } from '../../src/raft/assert.js';
import type { Operation } from './history.js';
import { formatOperation, quote } from './linearizability-format.js';
import { KIND_GET, NONE, opAt, type Problem } from './wgl-problem.js';
import {
  expectedReachable,
  INCONSISTENT,
  observedState,
  stepOp,
  writersFor,
} from './wgl-register-model.js';
import { STATE_NULL } from './wgl-state-table.js';

const EXPLANATION_LINES_MAX = 30;
const EXPLANATION_PREFIX_LINES_MAX = 12;
const EXPLANATION_CANDIDATES_MAX = 10;

/**
 * Replays the longest linearizable prefix the search found and lists the ops
 * that had to come next. At that point every such op is inconsistent with the
 * register's value: had one fit, the search would have found a longer prefix.
 * At most EXPLANATION_LINES_MAX lines, however long the history.
 */
export function explainViolation(
  key: string,
  ops: readonly Operation[],
  p: Problem,
  prefix: Int32Array,
): string {
  const placed = new Uint8Array(p.n);
  let state = STATE_NULL;
  for (const i of prefix) {
    state = stepOp(p, i, state);
    assert(state !== INCONSISTENT, 'the recorded prefix replays');
    placed[i] = 1;
  }
  const value = p.states.value(state);
  const unknownCount = p.n - p.okCount;
  const lines = [
    `key ${quote(key)} is not linearizable (${p.okCount} completed and ${unknownCount} unknown-outcome operations on it).`,
    prefix.length === 0
      ? `No operation can be linearized first (the key starts absent: null).`
      : `Longest linearizable prefix found: ${prefix.length} operations, leaving the value ${quote(value)}:`,
    ...prefixLines(ops, prefix),
    ...nextLines(ops, p, placed, state),
  ];
  assert(lines.length <= EXPLANATION_LINES_MAX, 'explanation stays bounded');
  return lines.join('\n');
}

/** The tail of the prefix: the ops just before things went wrong matter most. */
function prefixLines(ops: readonly Operation[], prefix: Int32Array): string[] {
  const shown = Math.min(prefix.length, EXPLANATION_PREFIX_LINES_MAX);
  const first = prefix.length - shown;
  const lines = first > 0 ? [`  … ${first} earlier operations`] : [];
  for (let position = first; position < prefix.length; position++) {
    const op = opAt(ops, prefix[position] ?? NONE);
    lines.push(`  ${position + 1}. ${formatOperation(op)}`);
  }
  return lines;
}

function nextLines(
  ops: readonly Operation[],
  p: Problem,
  placed: Uint8Array,
  state: number,
): string[] {
  const deadline = firstPendingReturn(p, placed);
  const candidates = candidatesBefore(p, placed, deadline);
  const lines = ['None of these can be linearized next:'];
  for (const i of candidates.slice(0, EXPLANATION_CANDIDATES_MAX)) {
    lines.push(`  ${formatOperation(opAt(ops, i))}: ${mismatch(p, placed, i, state)}`);
  }
  if (candidates.length > EXPLANATION_CANDIDATES_MAX) {
    lines.push(`  … and ${candidates.length - EXPLANATION_CANDIDATES_MAX} more`);
  }
  const returned = opAt(ops, deadline).returned;
  lines.push(
    `(#${opAt(ops, deadline).id} returned at ${returned}, so it must take effect before anything invoked later.)`,
  );
  return lines;
}

/** The unplaced ok op that returns first: it bounds what may come next (Wing & Gong). */
function firstPendingReturn(p: Problem, placed: Uint8Array): number {
  for (const event of p.order) {
    if (event >= p.n && placed[event - p.n] === 0) return event - p.n;
  }
  return fail('a violation leaves an ok op unlinearized');
}

/** The unplaced ok ops invoked before `deadline` returned: the ones that could have come next. */
function candidatesBefore(p: Problem, placed: Uint8Array, deadline: number): number[] {
  const deadlineRank = p.rank[p.n + deadline] ?? NONE;
  const candidates: number[] = [];
  for (const event of p.order) {
    if ((p.rank[event] ?? NONE) >= deadlineRank) break;
    if (event < p.n && placed[event] === 0 && p.known[event] === 1) candidates.push(event);
  }
  return candidates;
}

/** Why op i cannot come next from `state`, in the reader's terms. */
function mismatch(p: Problem, placed: Uint8Array, i: number, state: number): string {
  const after = stepOp(p, i, state);
  if (after !== INCONSISTENT) {
    const blocked = blockedObserver(p, placed, i, after);
    if (blocked === NONE) return 'fits here, but no continuation after it does';
    const verb = p.kind[blocked] === KIND_GET ? 'read' : 'swap from';
    const expected = quote(p.states.value(observedState(p, blocked)));
    return `fits here, but then #${opAt(p.ops, blocked).id} could no longer ${verb} ${expected}`;
  }
  const value = quote(p.states.value(state));
  if (p.kind[i] === KIND_GET) {
    return `read ${quote(p.states.value(p.outputId[i] ?? 0))}, but the value is ${value}`;
  }
  const expected = quote(p.states.value(p.expectedId[i] ?? 0));
  return p.outputId[i] === 1
    ? `swapped from ${expected}, but the value is ${value}`
    : `did not swap, but the value equals expected ${expected}`;
}

/**
 * The first pending observer whose expected value op i would make unreachable
 * (the search's windowReachable lookahead, replayed for the explanation), or NONE.
 */
function blockedObserver(p: Problem, placed: Uint8Array, i: number, after: number): number {
  for (const event of p.order) {
    const op = event % p.n;
    if (placed[op] === 1 || op === i) continue;
    if (event >= p.n) return NONE; // the window ends at the first pending return
    if (p.known[op] === 0 || expectedReachable(p, op, after)) continue;
    const writers = writersFor(p, op);
    if (!writers.some((w) => w !== i && placed[w] === 0)) return op;
  }
  return NONE;
}
