/**
 * How the checker prints operations and register values.
 *
 * Separate from the explanation because `formatOperation` is public (the
 * simulator prints violating histories with it) and `quote` is shared by every
 * message the checker builds: one place decides how a value looks, so the
 * same value never reads two ways in one report.
 */
import type { KvInput, Operation } from './history.js';

/** Values longer than this are cut: appended strings grow, and a line must stay a line. */
const VALUE_CHARS_MAX = 24;

/**
 * One readable line per operation.
 *
 * @example
 * ```ts
 * formatOperation(op); // "c3 #17 [120, 145] cas(k1, null→'a') → ok"
 * ```
 */
export function formatOperation(op: Operation): string {
  const returned = op.returned === null ? '?' : String(op.returned);
  return `c${op.client} #${op.id} [${op.invoked}, ${returned}] ${formatInput(op.input)} → ${formatOutcome(op)}`;
}

/** Quotes a value for display, cutting long ones (appended strings grow) so a line stays a line. */
export function quote(value: string | null): string {
  if (value === null) return 'null';
  const escaped = value.replaceAll('\\', '\\\\').replaceAll("'", "\\'").replaceAll('\n', '\\n');
  if (escaped.length <= VALUE_CHARS_MAX) return `'${escaped}'`;
  return `'${escaped.slice(0, VALUE_CHARS_MAX)}…' (${value.length} chars)`;
}

/** Invocation order, ties by id: the order a reader expects a sub-history in. */
export function byInvocation(a: Operation, b: Operation): number {
  return a.invoked - b.invoked || a.id - b.id;
}

function formatInput(input: KvInput): string {
  switch (input.op) {
    case 'get':
      return `get(${input.key})`;
    case 'put':
      return `put(${input.key}, ${quote(input.value)})`;
    case 'append':
      return `append(${input.key}, ${quote(input.value)})`;
    case 'cas':
      return `cas(${input.key}, ${quote(input.expected)}→${quote(input.value)})`;
  }
}

function formatOutcome(op: Operation): string {
  if (op.status !== 'ok' || op.output === null) return op.status;
  if ('value' in op.output) return quote(op.output.value);
  if (op.input.op === 'cas' && !op.output.ok) return 'not swapped';
  return 'ok';
}
