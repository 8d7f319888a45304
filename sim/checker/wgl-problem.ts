/**
 * One key's history encoded as a search problem.
 *
 * The search visits millions of configurations, so everything it reads per
 * step is precomputed here once: operations as struct-of-arrays (typed arrays,
 * no object lookups), register values interned to integers (`StateTable`),
 * the real-time event order and each event's rank in it, and an index of which
 * ops may write each value (for the lookahead). Everything here is immutable
 * after `buildProblem`, except the two caches the register model fills lazily.
 */
import { assert } from '../../src/raft/assert.js';
import type { Operation } from './history.js';
import { orderEvents } from './wgl-event-order.js';
import { StateTable } from './wgl-state-table.js';

/*
 * Hot constants. The search's modules copy what their inner loops read (these,
 * STATE_NULL, INCONSISTENT and the model functions) into module-local
 * constants, `const { NONE } = problem`, instead of reading the imports: the
 * module transforms that run this code (vitest's, and tsx's CommonJS path)
 * compile every read of an imported binding into a getter call, and in the
 * inner loop those calls more than tripled the search's time. The copies are
 * safe because these never change after module evaluation.
 */
export const KIND_GET = 0;
export const KIND_PUT = 1;
export const KIND_CAS = 2;
export const KIND_APPEND = 3;
/** "No op / no event / no state": every index and state id is >= 0. */
export const NONE = -1;

export interface Problem {
  /** The key's operations; op index i everywhere below means ops[i]. */
  readonly ops: readonly Operation[];
  readonly n: number;
  /** How many have status ok: these must all be linearized; unknown ones are optional. */
  readonly okCount: number;
  readonly kind: Uint8Array;
  /** 1 when the outcome is known (status ok), 0 for unknown. */
  readonly known: Uint8Array;
  /** put/cas: state id of the value written. */
  readonly valueId: Int32Array;
  /** cas: state id of the expected value. */
  readonly expectedId: Int32Array;
  /** get: state id of the value read; cas: 1 when it swapped, else 0. */
  readonly outputId: Int32Array;
  readonly appendSuffix: readonly string[];
  /**
   * Position of each event in real-time order. Event (and list node) i < n is
   * the call of op i; n + i is its return (only for known ops).
   */
  readonly rank: Int32Array;
  /** Events in real-time order. */
  readonly order: Int32Array;
  readonly states: StateTable;
  /** (state id, op) → state id after an append, so repeated steps build no strings. */
  readonly appendMemo: Map<number, number>;
  /** Ops that may write each value: puts, and cas ops that swapped or may have. */
  readonly writersByValue: Map<string, number[]>;
}

/** The per-op columns of a Problem. */
interface OpColumns {
  readonly kind: Uint8Array;
  readonly known: Uint8Array;
  readonly valueId: Int32Array;
  readonly expectedId: Int32Array;
  readonly outputId: Int32Array;
  readonly appendSuffix: string[];
}

/** Encodes one key's operations (validated, no fail ops, no unknown gets). */
export function buildProblem(ops: readonly Operation[]): Problem {
  const states = new StateTable();
  const columns = encodeOps(ops, states);
  const order = orderEvents(ops);
  const okCount = ops.filter((op) => op.status === 'ok').length;
  assert(order.length === ops.length + okCount, 'every op has a call, every ok op a return');
  return {
    ops,
    n: ops.length,
    okCount,
    ...columns,
    rank: rankEvents(order, ops.length),
    order,
    states,
    appendMemo: new Map(),
    writersByValue: indexWriters(ops, columns),
  };
}

/** The op at index i, which must exist. */
export function opAt(ops: readonly Operation[], i: number): Operation {
  const op = ops[i];
  assert(op !== undefined, `operation index ${i} in range`);
  return op;
}

/** Interns values in op order, so state ids are deterministic for a given history. */
function encodeOps(ops: readonly Operation[], states: StateTable): OpColumns {
  const n = ops.length;
  const columns: OpColumns = {
    kind: new Uint8Array(n),
    known: new Uint8Array(n),
    valueId: new Int32Array(n),
    expectedId: new Int32Array(n),
    outputId: new Int32Array(n),
    appendSuffix: new Array<string>(n).fill(''),
  };
  for (const [i, op] of ops.entries()) encodeOp(columns, states, i, op);
  return columns;
}

function encodeOp(columns: OpColumns, states: StateTable, i: number, op: Operation): void {
  const input = op.input;
  const output = op.output;
  columns.known[i] = op.status === 'ok' ? 1 : 0;
  switch (input.op) {
    case 'get':
      columns.kind[i] = KIND_GET;
      assert(output !== null && 'value' in output, 'validated: ok get has a value');
      columns.outputId[i] = states.intern(output.value);
      break;
    case 'put':
      columns.kind[i] = KIND_PUT;
      columns.valueId[i] = states.intern(input.value);
      break;
    case 'cas':
      columns.kind[i] = KIND_CAS;
      columns.valueId[i] = states.intern(input.value);
      columns.expectedId[i] = states.intern(input.expected);
      columns.outputId[i] = output !== null && 'ok' in output && output.ok ? 1 : 0;
      break;
    case 'append':
      columns.kind[i] = KIND_APPEND;
      columns.appendSuffix[i] = input.value;
      break;
  }
}

/** Inverts `order`: events absent from it (returns of unknown ops) keep rank NONE. */
function rankEvents(order: Int32Array, n: number): Int32Array {
  const rank = new Int32Array(2 * n).fill(NONE);
  for (const [position, event] of order.entries()) rank[event] = position;
  return rank;
}

/**
 * Which ops may write each value: puts, and cas ops that swapped or may have
 * (a known cas that did not swap wrote nothing). Appends extend, so they are
 * not writers.
 */
function indexWriters(ops: readonly Operation[], columns: OpColumns): Map<string, number[]> {
  const writersByValue = new Map<string, number[]>();
  for (const [i, op] of ops.entries()) {
    const input = op.input;
    if (input.op !== 'put' && input.op !== 'cas') continue;
    if (input.op === 'cas' && columns.known[i] === 1 && columns.outputId[i] === 0) continue;
    const writers = writersByValue.get(input.value);
    if (writers === undefined) writersByValue.set(input.value, [i]);
    else writers.push(i);
  }
  return writersByValue;
}
