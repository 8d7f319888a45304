/**
 * Run-time validation of a history before it is checked.
 *
 * Histories come from simulators and from JSON files, so the types only
 * promise their shape. A malformed history is a bug in whoever recorded it,
 * not in the system under test, so it gets its own error type: a caller must
 * never mistake it for a linearizability violation. Validating everything up
 * front also lets the search assert instead of re-checking in its inner loop.
 */
import type { KvInput, KvOutput, Operation } from './history.js';

/** The history itself is wrong (not the system under test): a bug in whoever recorded it. */
export class MalformedHistoryError extends Error {
  override readonly name = 'MalformedHistoryError';
}

/** Throws `MalformedHistoryError` naming the first bad operation, or a duplicate id. */
export function validateHistory(history: readonly Operation[]): void {
  const ids = new Set<number>();
  for (const [index, op] of history.entries()) {
    const problem = operationProblem(op);
    if (problem !== null) {
      throw new MalformedHistoryError(
        `malformed history: operation at index ${index} (id ${op.id}): ${problem}`,
      );
    }
    if (ids.has(op.id)) {
      throw new MalformedHistoryError(
        `malformed history: duplicate operation id ${op.id} (again at index ${index}); ids must be unique`,
      );
    }
    ids.add(op.id);
  }
}

function operationProblem(op: Operation): string | null {
  if (!Number.isSafeInteger(op.id)) return `id must be an integer, got ${op.id}`;
  if (!Number.isFinite(op.invoked)) return `invoked must be a finite number, got ${op.invoked}`;
  const inputProblem = inputProblemOf(op.input);
  if (inputProblem !== null) return inputProblem;
  const timeProblem = timeProblemOf(op);
  if (timeProblem !== null) return timeProblem;
  if (op.status !== 'ok') {
    return op.output === null ? null : `status '${op.status}' must have output null`;
  }
  return outputProblemOf(op.input, op.output);
}

function inputProblemOf(input: KvInput): string | null {
  if (typeof input !== 'object' || input === null) return 'input is missing';
  if (typeof input.key !== 'string') return 'input.key must be a string';
  switch (input.op) {
    case 'get':
      return null;
    case 'put':
    case 'append':
      return typeof input.value === 'string' ? null : `${input.op} needs a string value`;
    case 'cas':
      if (typeof input.value !== 'string') return 'cas needs a string value';
      if (input.expected !== null && typeof input.expected !== 'string') {
        return 'cas needs expected: string | null';
      }
      return null;
    default:
      return `unknown input.op ${JSON.stringify((input as { op: unknown }).op)}`;
  }
}

function timeProblemOf(op: Operation): string | null {
  switch (op.status) {
    case 'ok':
    case 'fail':
      if (op.returned === null) return `status '${op.status}' needs a returned time, got null`;
      if (!Number.isFinite(op.returned)) return `returned must be a finite number or null`;
      if (op.returned < op.invoked) {
        return `returned (${op.returned}) is before invoked (${op.invoked})`;
      }
      return null;
    case 'unknown':
      return op.returned === null
        ? null
        : `status 'unknown' must have returned null, got ${op.returned}`;
    default:
      return `status must be 'ok', 'fail' or 'unknown', got ${JSON.stringify(op.status)}`;
  }
}

function outputProblemOf(input: KvInput, output: KvOutput | null): string | null {
  if (output === null || typeof output !== 'object') return "status 'ok' needs an output";
  if (input.op === 'get') {
    const value = 'value' in output ? output.value : undefined;
    return value === null || typeof value === 'string'
      ? null
      : 'get needs output { value: string | null }';
  }
  const ok = 'ok' in output ? output.ok : undefined;
  if (typeof ok !== 'boolean') return `${input.op} needs output { ok: boolean }`;
  if (input.op !== 'cas' && !ok) {
    return `${input.op} with status 'ok' must have output { ok: true } (record a refused one as status 'fail')`;
  }
  return null;
}
