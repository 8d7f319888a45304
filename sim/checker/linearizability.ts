/**
 * Linearizability checker for key-value client histories: the public entry
 * point.
 *
 * The search is Wing & Gong's (1993, "Testing and verifying concurrent
 * objects") depth-first search over call/return events, with the memoization
 * Lowe added (2017, "Testing for linearizability": remember every
 * (linearized set, model state) configuration already explored, and never
 * explore it twice), in the shape Porcupine (Athalye, 2017) gave it: a
 * doubly-linked list of events from which linearized operations are lifted and
 * restored in place ("dancing links"). Keys are independent registers, so each
 * key is checked on its own (P-compositionality, Horn & Kroening 2015, used by
 * Porcupine's partitioning): this turns one huge search into many small ones.
 *
 * Operations with an unknown outcome (timeouts) are where plain WGL breaks
 * down. Each one stays pending forever, so the search would try every subset
 * and order of them at every point. Three additions of ours keep that in
 * check, all sound (they only skip orders that provably cannot be the only
 * way to succeed), and all tested against a brute-force checker:
 * - a partial-order reduction: only normal-form orders, in which no unknown op
 *   could be dropped or moved later (wgl-normal-form.ts);
 * - lookahead: stop as soon as a pending read can no longer see its value
 *   (wgl-lookahead.ts);
 * - dominance in the memo: a config that failed also fails with more unknown
 *   ops spent (wgl-failed-configs.ts).
 *
 * The pieces, one concept per file:
 * - linearizability-validation.ts: run-time checks of the history's shape;
 * - linearizability-format.ts: how operations and values are printed;
 * - linearizability-explanation.ts: a violation, in a reader's terms;
 * - wgl-problem.ts (with wgl-state-table.ts, wgl-event-order.ts): one key
 *   encoded for the search;
 * - wgl-register-model.ts: the sequential register the history must match;
 * - wgl-search.ts: the search loop, using wgl-event-list.ts,
 *   wgl-linearized-set.ts and the pruning rules above.
 */
import type { Operation } from './history.js';
import { explainViolation } from './linearizability-explanation.js';
import { byInvocation, quote } from './linearizability-format.js';
import { validateHistory } from './linearizability-validation.js';
import { checkKey } from './wgl-search.js';

export { formatOperation } from './linearizability-format.js';
export { MalformedHistoryError } from './linearizability-validation.js';

export interface CheckOptions {
  /** Search budget per key, in search steps; a key past it is reported `inconclusive`. */
  readonly stepsMax?: number;
}

export type CheckResult =
  | { readonly verdict: 'linearizable'; readonly keys: number; readonly steps: number }
  | {
      readonly verdict: 'violation';
      readonly key: string;
      /** Human-readable, at most `EXPLANATION_LINES_MAX` lines (linearizability-explanation.ts). */
      readonly explanation: string;
      /** Every operation on `key` (fail ops excluded), by invocation: a sub-history that is not linearizable on its own. */
      readonly operations: readonly Operation[];
    }
  | { readonly verdict: 'inconclusive'; readonly key: string; readonly reason: string };

const STEPS_MAX_DEFAULT = 5_000_000;

/**
 * Checks that `history` is linearizable as a map of independent registers.
 *
 * - `fail` operations are ignored: they did not happen.
 * - `unknown` operations may take effect at any time after they were invoked,
 *   or never; an `unknown` get observes nothing and is ignored.
 * - At equal times a return orders before a call: an operation that returned at
 *   t happened before one invoked at t (see `orderEvents`).
 *
 * Throws `MalformedHistoryError` when the history itself is malformed.
 *
 * @example
 * ```ts
 * const result = checkLinearizable(history, { stepsMax: 1_000_000 });
 * if (result.verdict === 'violation') console.error(result.explanation);
 * ```
 */
export function checkLinearizable(
  history: readonly Operation[],
  options: CheckOptions = {},
): CheckResult {
  const stepsMax = options.stepsMax ?? STEPS_MAX_DEFAULT;
  if (!Number.isSafeInteger(stepsMax) || stepsMax < 1) {
    throw new RangeError(`stepsMax must be a positive integer, got ${stepsMax}`);
  }
  validateHistory(history);
  const partitions = partitionByKey(history);
  let stepsTotal = 0;
  let inconclusive: CheckResult | null = null;
  // Keep going past an inconclusive key: a violation on another key is the more useful answer.
  for (const [key, ops] of partitions) {
    const outcome = checkKey(ops, stepsMax);
    stepsTotal += outcome.steps;
    if (outcome.verdict === 'violation') {
      return {
        verdict: 'violation',
        key,
        explanation: explainViolation(key, ops, outcome.problem, outcome.prefix),
        operations: [...ops].sort(byInvocation),
      };
    }
    if (outcome.verdict === 'budget' && inconclusive === null) {
      inconclusive = budgetExhausted(key, ops.length, stepsMax);
    }
  }
  return inconclusive ?? { verdict: 'linearizable', keys: partitions.size, steps: stepsTotal };
}

function budgetExhausted(key: string, opCount: number, stepsMax: number): CheckResult {
  return {
    verdict: 'inconclusive',
    key,
    reason:
      `search budget of ${stepsMax} steps exhausted on key ${quote(key)} ` +
      `(${opCount} operations); raise stepsMax or shorten the history`,
  };
}

/**
 * Splits the history into independent per-key searches (P-compositionality),
 * dropping what cannot constrain them: `fail` ops did not happen, and an
 * `unknown` get has no observed output and no effect.
 */
function partitionByKey(history: readonly Operation[]): Map<string, Operation[]> {
  const partitions = new Map<string, Operation[]>();
  for (const op of history) {
    if (op.status === 'fail') continue;
    if (op.status === 'unknown' && op.input.op === 'get') continue;
    const ops = partitions.get(op.input.key);
    if (ops === undefined) partitions.set(op.input.key, [op]);
    else ops.push(op);
  }
  return partitions;
}
