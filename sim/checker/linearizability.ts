/**
 * Linearizability checker for key-value client histories.
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
 *   could be dropped or moved later (WglSearch.isUnneeded);
 * - lookahead: stop as soon as a pending read can no longer see its value
 *   (windowReachable, droppableNeedable);
 * - dominance in the memo: a config that failed also fails with more unknown
 *   ops spent (FailedConfigs).
 */
import { assert } from '../../src/raft/assert.js';
import type { KvInput, KvOutput, Operation } from './history.js';

export interface CheckOptions {
  /** Search budget per key, in search steps; a key past it is reported `inconclusive`. */
  readonly stepsMax?: number;
}

export type CheckResult =
  | { readonly verdict: 'linearizable'; readonly keys: number; readonly steps: number }
  | {
      readonly verdict: 'violation';
      readonly key: string;
      /** Human-readable, at most `EXPLANATION_LINES_MAX` lines. */
      readonly explanation: string;
      /** Every operation on `key` (fail ops excluded), by invocation: a sub-history that is not linearizable on its own. */
      readonly operations: readonly Operation[];
    }
  | { readonly verdict: 'inconclusive'; readonly key: string; readonly reason: string };

/** The history itself is wrong (not the system under test): a bug in whoever recorded it. */
export class MalformedHistoryError extends Error {
  override readonly name = 'MalformedHistoryError';
}

const STEPS_MAX_DEFAULT = 5_000_000;
/**
 * The memo of failed configs (FailedConfigs) holds bitsets, so a long search on
 * a key with many operations could otherwise grow without limit. Past this it
 * stops remembering: still sound (it only prunes), just slower, and the step
 * budget still bounds the time.
 */
const CACHE_BYTES_MAX = 256 * 1024 * 1024;
const EXPLANATION_LINES_MAX = 30;
const EXPLANATION_PREFIX_LINES_MAX = 12;
const EXPLANATION_CANDIDATES_MAX = 10;
const VALUE_CHARS_MAX = 24;
/** How far ahead in the event list a lookahead scan may look (a cost bound, not a correctness one). */
const LOOKAHEAD_NODES_MAX = 64;
/** Up to this length, a read value's writers are found by looking up each prefix. */
const PREFIX_LOOKUPS_MAX = 64;

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
      inconclusive = {
        verdict: 'inconclusive',
        key,
        reason:
          `search budget of ${stepsMax} steps exhausted on key ${quote(key)} ` +
          `(${ops.length} operations); raise stepsMax or shorten the history`,
      };
    }
  }
  return inconclusive ?? { verdict: 'linearizable', keys: partitions.size, steps: stepsTotal };
}

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

/** Quotes a value for display, cutting long ones (appended strings grow) so a line stays a line. */
function quote(value: string | null): string {
  if (value === null) return 'null';
  const escaped = value.replaceAll('\\', '\\\\').replaceAll("'", "\\'").replaceAll('\n', '\\n');
  if (escaped.length <= VALUE_CHARS_MAX) return `'${escaped}'`;
  return `'${escaped.slice(0, VALUE_CHARS_MAX)}…' (${value.length} chars)`;
}

function byInvocation(a: Operation, b: Operation): number {
  return a.invoked - b.invoked || a.id - b.id;
}

// ---------------------------------------------------------------------------
// Validation: histories come from simulators and from JSON files, so check at
// run time what the types only promise.

function validateHistory(history: readonly Operation[]): void {
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

/**
 * Drops what cannot constrain the search: `fail` ops did not happen, and an
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

// ---------------------------------------------------------------------------
// One key as a search problem: operations as struct-of-arrays, register
// values interned to small integers so the inner loop compares numbers.

const KIND_GET = 0;
const KIND_PUT = 1;
const KIND_CAS = 2;
const KIND_APPEND = 3;
/** State id of the absent value. */
const STATE_NULL = 0;
/** Returned by `stepOp` when the operation's observed output contradicts the state. */
const INCONSISTENT = -1;
const NONE = -1;

class StateTable {
  private readonly values: (string | null)[] = [null];
  private readonly ids = new Map<string, number>();

  intern(value: string | null): number {
    if (value === null) return STATE_NULL;
    const known = this.ids.get(value);
    if (known !== undefined) return known;
    const id = this.values.length;
    this.values.push(value);
    this.ids.set(value, id);
    return id;
  }

  value(id: number): string | null {
    assert(id >= 0 && id < this.values.length, 'state id was interned');
    return this.values[id] ?? null;
  }
}

interface Problem {
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

function buildProblem(ops: readonly Operation[]): Problem {
  const n = ops.length;
  const states = new StateTable();
  const kind = new Uint8Array(n);
  const known = new Uint8Array(n);
  const valueId = new Int32Array(n);
  const expectedId = new Int32Array(n);
  const outputId = new Int32Array(n);
  const appendSuffix: string[] = new Array<string>(n).fill('');
  let okCount = 0;
  for (const [i, op] of ops.entries()) {
    const input = op.input;
    const output = op.output;
    known[i] = op.status === 'ok' ? 1 : 0;
    okCount += known[i] ?? 0;
    switch (input.op) {
      case 'get':
        kind[i] = KIND_GET;
        assert(output !== null && 'value' in output, 'validated: ok get has a value');
        outputId[i] = states.intern(output.value);
        break;
      case 'put':
        kind[i] = KIND_PUT;
        valueId[i] = states.intern(input.value);
        break;
      case 'cas':
        kind[i] = KIND_CAS;
        valueId[i] = states.intern(input.value);
        expectedId[i] = states.intern(input.expected);
        outputId[i] = output !== null && 'ok' in output && output.ok ? 1 : 0;
        break;
      case 'append':
        kind[i] = KIND_APPEND;
        appendSuffix[i] = input.value;
        break;
    }
  }
  const order = orderEvents(ops);
  const rank = new Int32Array(2 * n).fill(NONE);
  for (const [position, event] of order.entries()) rank[event] = position;
  const writersByValue = new Map<string, number[]>();
  for (const [i, op] of ops.entries()) {
    const input = op.input;
    if (input.op !== 'put' && input.op !== 'cas') continue;
    if (input.op === 'cas' && known[i] === 1 && outputId[i] === 0) continue;
    const writers = writersByValue.get(input.value);
    if (writers === undefined) writersByValue.set(input.value, [i]);
    else writers.push(i);
  }
  return {
    ops,
    n,
    okCount,
    kind,
    known,
    valueId,
    expectedId,
    outputId,
    appendSuffix,
    rank,
    order,
    states,
    appendMemo: new Map(),
    writersByValue,
  };
}

/**
 * Sorts the calls and the returns (of known ops) by time.
 *
 * Ties: at equal times a return sorts before a call, so an op that returned at
 * t happened before an op invoked at t. A client that sends its next request
 * the instant the previous one completed must see its effect, and a discrete
 * simulated clock makes such ties common. The one exception keeps an op's own
 * call before its return: the call of a zero-duration op [t, t] sorts before
 * the returns at t, so it is concurrent with (not after) ops that returned at
 * t, and two zero-duration ops at t are concurrent; "happens before" stays
 * acyclic. Remaining ties fall back to history order, for determinism.
 */
function orderEvents(ops: readonly Operation[]): Int32Array {
  const n = ops.length;
  const events: number[] = [];
  const time = new Float64Array(2 * n);
  const group = new Uint8Array(2 * n);
  for (const [i, op] of ops.entries()) {
    events.push(i);
    time[i] = op.invoked;
    group[i] = op.returned === op.invoked ? 0 : 2;
    if (op.status !== 'ok' || op.returned === null) continue;
    events.push(n + i);
    time[n + i] = op.returned;
    group[n + i] = 1;
  }
  const byTime = (a: number, b: number): number =>
    (time[a] ?? 0) - (time[b] ?? 0) || (group[a] ?? 0) - (group[b] ?? 0) || (a % n) - (b % n);
  return Int32Array.from(events.sort(byTime));
}

function opAt(ops: readonly Operation[], i: number): Operation {
  const op = ops[i];
  assert(op !== undefined, `operation index ${i} in range`);
  return op;
}

/**
 * The register model: the state after op i from `state`, or INCONSISTENT when
 * the op's observed output cannot happen in `state`. An unknown op has no
 * observed output, so it always applies with its real semantics (an unknown
 * cas swaps exactly when expected matches).
 */
function stepOp(p: Problem, i: number, state: number): number {
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

function appendState(p: Problem, i: number, state: number): number {
  const memoKey = state * p.n + i;
  const memo = p.appendMemo.get(memoKey);
  if (memo !== undefined) return memo;
  const next = p.states.intern((p.states.value(state) ?? '') + (p.appendSuffix[i] ?? ''));
  p.appendMemo.set(memoKey, next);
  return next;
}

/** The state an ok op observes exactly (get: the value read; swapped cas: expected), else NONE. */
function observedState(p: Problem, i: number): number {
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
function expectedReachable(p: Problem, g: number, after: number): boolean {
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
 * (long append chains) scan all written values instead.
 */
function writersFor(p: Problem, g: number): Int32Array {
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

// ---------------------------------------------------------------------------
// The search.

type KeyOutcome =
  | { readonly verdict: 'linearizable'; readonly steps: number }
  | { readonly verdict: 'budget'; readonly steps: number }
  | {
      readonly verdict: 'violation';
      readonly steps: number;
      readonly problem: Problem;
      /** The longest sequence of ops the search could linearize. */
      readonly prefix: Int32Array;
    };

function checkKey(ops: readonly Operation[], stepsMax: number): KeyOutcome {
  const problem = buildProblem(ops);
  const search = new WglSearch(problem);
  const verdict = search.run(stepsMax);
  assert(search.steps <= stepsMax, 'the search stays within its budget');
  if (verdict !== 'violation') return { verdict, steps: search.steps };
  return { verdict, steps: search.steps, problem, prefix: search.longestPrefix() };
}

/** murmur3's 32-bit finalizer: a cheap bijective mix. */
function mix32(x: number): number {
  let h = x ^ (x >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Wing & Gong's search with Lowe's memoization, over one key.
 *
 * Known (ok) ops have a call node and a return node in the main event list.
 * Unknown ops only have a call node, in a second list. Their return is at
 * +infinity, and the search may finish without them: leaving an unknown op out
 * is the same as linearizing it after everything else, which always works
 * because it observes nothing. Keeping them apart lets the search try the
 * mandatory ok ops first at every node, and the optional ones only when no ok
 * op fits. Together with `isUnneeded` and the dominance check in
 * `FailedConfigs`, this is what keeps timeouts from making the search
 * exponential.
 */
class WglSearch {
  steps = 0;

  private readonly p: Problem;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly head: number;
  private readonly unknownHead: number;
  /** Per observer op, lazily: the writers that could produce its expected value (see windowReachable). */
  private readonly writers: (Int32Array | undefined)[];
  /** Op i's bit in okBits (known ops) or unknownBits (unknown ops). */
  private readonly bitOf: Int32Array;
  /** Linearized ok ops. Invariant: setHash is the xor of zobrist over them. */
  private readonly okBits: Uint32Array;
  /** Linearized unknown ops. */
  private readonly unknownBits: Uint32Array;
  /** Zobrist hashing: a random word per op, xor-ed in and out in O(1). */
  private readonly zobrist: Uint32Array;
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
  private setHash = 0;
  /** Invariant: linearizedOk <= okCount; the search succeeds when they are equal. */
  private linearizedOk = 0;
  /** Rank of the first pending return: only calls before it may be linearized next. */
  private limitRank = 0;
  /**
   * How many unknown ops were linearized since the last ok op that needed
   * them, and `shadow`, the state had they all been dropped (see isUnneeded).
   * Invariant: every ok op linearized since then is consistent at the shadow.
   */
  private droppable = 0;
  private shadow = STATE_NULL;

  constructor(p: Problem) {
    this.p = p;
    const n = p.n;
    this.head = 2 * n;
    this.unknownHead = 2 * n + 1;
    this.next = new Int32Array(2 * n + 2).fill(NONE);
    this.prev = new Int32Array(2 * n + 2).fill(NONE);
    this.writers = new Array<Int32Array | undefined>(n);
    this.bitOf = new Int32Array(n);
    const unknownCount = n - p.okCount;
    let okSeen = 0;
    for (let i = 0; i < n; i++) {
      this.bitOf[i] = p.known[i] === 1 ? okSeen++ : i - okSeen;
    }
    const okWords = Math.max(1, Math.ceil(p.okCount / 32));
    const unknownWords = Math.max(1, Math.ceil(unknownCount / 32));
    this.okBits = new Uint32Array(okWords);
    this.unknownBits = new Uint32Array(unknownWords);
    this.zobrist = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.zobrist[i] = mix32(0x9e3779b9 + i);
    this.failed = new FailedConfigs(okWords, unknownWords, CACHE_BYTES_MAX);
    this.stackOp = new Int32Array(n);
    this.stackState = new Int32Array(n);
    this.stackLimit = new Int32Array(n);
    this.stackDroppable = new Int32Array(n);
    this.stackShadow = new Int32Array(n);
    this.bestOps = new Int32Array(n);
    this.linkEvents();
  }

  private linkEvents(): void {
    const n = this.p.n;
    let tail = this.head;
    let unknownTail = this.unknownHead;
    for (const event of this.p.order) {
      const isUnknownCall = event < n && this.p.known[event] === 0;
      if (isUnknownCall) {
        this.next[unknownTail] = event;
        this.prev[event] = unknownTail;
        unknownTail = event;
        continue;
      }
      this.next[tail] = event;
      this.prev[event] = tail;
      tail = event;
    }
  }

  /** Runs until every ok op is linearized, the search space is exhausted, or the budget is. */
  run(stepsMax: number): 'linearizable' | 'violation' | 'budget' {
    const n = this.p.n;
    const okCount = this.p.okCount;
    let cursor = this.link(this.head);
    let inUnknown = false;
    while (this.linearizedOk < okCount) {
      if (this.steps >= stepsMax) return 'budget';
      this.steps++;
      if (!inUnknown) {
        // Every pending ok call precedes its own return, so the scan meets a return first.
        assert(cursor !== NONE, 'a pending return ends the scan of pending calls');
        if (cursor < n) {
          cursor = this.tryLinearize(cursor) ? this.link(this.head) : this.link(cursor);
        } else {
          // Wing & Gong: the op returning first must be linearized before anything
          // invoked after its return. Before backtracking, try the optional
          // unknown ops that were invoked before that return.
          this.limitRank = this.rankOf(cursor);
          inUnknown = true;
          cursor = this.link(this.unknownHead);
        }
        continue;
      }
      if (cursor !== NONE && this.rankOf(cursor) < this.limitRank) {
        const advanced = this.tryLinearize(cursor);
        inUnknown = !advanced;
        cursor = advanced ? this.link(this.head) : this.link(cursor);
        continue;
      }
      if (this.depth === 0) return 'violation';
      const undone = this.backtrack();
      // Resume after the undone op in its own list: its alternatives come next.
      inUnknown = this.p.known[undone] === 0;
      cursor = this.link(undone);
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
    if (!this.windowReachable(i, after)) return false;
    const shadow = this.shadowAfter(i);
    if (shadow !== NONE && !this.droppableNeedable(i, after, shadow)) return false;
    this.toggle(i);
    if (this.failed.dominates(this.okBits, this.unknownBits, this.hashOf(after), after)) {
      this.toggle(i);
      return false;
    }
    const d = this.depth;
    this.stackOp[d] = i;
    this.stackState[d] = this.state;
    this.stackLimit[d] = this.limitRank;
    this.stackDroppable[d] = this.droppable;
    this.stackShadow[d] = this.shadow;
    this.trackDroppable(i, known);
    this.depth = d + 1;
    this.state = after;
    this.lift(i, known);
    if (known) this.linearizedOk++;
    if (this.depth > this.bestLength) this.recordBest();
    return true;
  }

  /**
   * Partial-order reduction for unknown ops. An unknown op never returns, so it
   * can always be moved later, or dropped, without breaking real-time order.
   * Every linearization therefore has a normal form in which no unknown ops
   * can be dropped and none can be moved later past the op after it. The search
   * only builds normal forms, which stops it from trying every subset and order
   * of pending unknown ops (exponential in the number of timeouts).
   * - Dropping: the unknown ops linearized since the last ok op that needed
   *   them can all be dropped while every ok op since then fits the shadow
   *   state. Once op i would make the state equal the shadow again, dropping
   *   them changes nothing, so this order is not a normal form.
   * - Moving: an op Y right after an unknown op U must need U. If Y commutes
   *   with U, the two can swap: ok ops go first, two unknown ops in rank order.
   * These rules depend on the path, not only on the config, so a failed config
   * is remembered only when neither restricts its next step (see backtrack).
   */
  private isUnneeded(i: number, after: number): boolean {
    if (this.droppable > 0 && stepOp(this.p, i, this.shadow) === after) return true;
    const d = this.depth - 1;
    if (d < 0) return false;
    const u = this.stackOp[d] ?? NONE;
    if (this.p.known[u] === 1) return false;
    const before = this.stackState[d] ?? STATE_NULL;
    const withoutU = stepOp(this.p, i, before);
    if (withoutU === INCONSISTENT) return false; // needs U
    if (stepOp(this.p, u, withoutU) !== after) return false; // order matters
    return this.p.known[i] === 1 || this.rankOf(i) < this.rankOf(u);
  }

  /** What `shadow` becomes once op i is linearized, or NONE when nothing is droppable then. */
  private shadowAfter(i: number): number {
    if (this.p.known[i] === 0) return this.droppable === 0 ? this.state : this.shadow;
    if (this.droppable === 0) return NONE;
    const shadow = stepOp(this.p, i, this.shadow);
    return shadow === INCONSISTENT ? NONE : shadow;
  }

  /** Updates droppable and shadow for op i about to be linearized from this.state. */
  private trackDroppable(i: number, known: boolean): void {
    if (!known) {
      if (this.droppable === 0) this.shadow = this.state;
      this.droppable++;
      return;
    }
    if (this.droppable === 0) return;
    const shadowAfter = stepOp(this.p, i, this.shadow);
    if (shadowAfter === INCONSISTENT) {
      this.droppable = 0; // i needs them: they can no longer be dropped
    } else {
      this.shadow = shadowAfter;
    }
  }

  /**
   * Lookahead, a necessary condition for any completion after linearizing op i
   * into state `after`. Every pending ok op g must be linearized before
   * anything invoked after g returns. If g observes an exact value (a get, or a
   * cas that swapped), that value must still be reachable using only the ops
   * that may run before g. Writes reset the value and appends extend it. So the
   * expected value must extend the current value, or extend the value of a
   * writer that is still available. This cuts a wrong branch as soon as it
   * overwrites a value someone still has to read, instead of after the whole
   * window beneath it has been enumerated. Checks the window: the ok calls
   * before the first pending return (other than i's own).
   */
  private windowReachable(i: number, after: number): boolean {
    const n = this.p.n;
    for (let node = this.link(this.head); node !== NONE; node = this.link(node)) {
      if (node >= n) {
        if (node - n === i) continue;
        return true;
      }
      if (node !== i && !this.reachable(node, i, after)) return false;
    }
    return true;
  }

  /**
   * Lookahead for droppable unknown ops (see isUnneeded): they must be needed
   * by some ok get or cas before any put erases them, or the search is not
   * building a normal form. Only ops invoked before the first pending put
   * returns can come before it, and no put can come between. A get or swapped
   * cas can need them only if its expected value extends the current one, or
   * one that pending unknown cas ops could write (unknownCasCouldReach). A failed cas can need them
   * only if its expected value extends the shadow. The scan is capped: past the
   * cap it gives up and says yes.
   */
  private droppableNeedable(i: number, after: number, shadow: number): boolean {
    const n = this.p.n;
    const value = this.p.states.value(after) ?? '';
    let scanned = 0;
    for (let node = this.link(this.head); node !== NONE; node = this.link(node)) {
      if (++scanned > LOOKAHEAD_NODES_MAX) return true;
      if (node >= n) {
        if (node - n !== i && this.p.kind[node - n] === KIND_PUT) return false;
        continue;
      }
      if (node !== i && this.couldNeed(node, i, after, value, shadow)) return true;
    }
    return false;
  }

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
    const casOps: number[] = [];
    for (let u = this.link(this.unknownHead); u !== NONE; u = this.link(u)) {
      if (u !== i && this.p.kind[u] === KIND_CAS) casOps.push(u);
    }
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
      if (w !== i && !this.isLinearized(w)) return true;
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

  private isLinearized(i: number): boolean {
    const bit = this.bitOf[i] ?? 0;
    const bits = this.p.known[i] === 1 ? this.okBits : this.unknownBits;
    return ((bits[bit >>> 5] ?? 0) & (1 << (bit & 31))) !== 0;
  }

  /** Undoes the last linearization; returns its op. */
  private backtrack(): number {
    assert(this.depth > 0, 'backtrack needs a linearized op');
    const d = this.depth - 1;
    const i = this.stackOp[d] ?? NONE;
    const known = this.p.known[i] === 1;
    // The config reached by op i has no completion. Remember it only if its next
    // step was unrestricted (see isUnneeded): i is ok and no unknown op is
    // droppable. Otherwise the failure may be due to the restriction, and says
    // nothing about the same config reached another way.
    if (known && this.droppable === 0) {
      this.failed.record(this.okBits, this.unknownBits, this.hashOf(this.state), this.state);
    }
    this.depth = d;
    this.state = this.stackState[d] ?? STATE_NULL;
    this.limitRank = this.stackLimit[d] ?? 0;
    this.droppable = this.stackDroppable[d] ?? 0;
    this.shadow = this.stackShadow[d] ?? STATE_NULL;
    this.unlift(i, known);
    this.toggle(i);
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

  private hashOf(state: number): number {
    return (this.setHash ^ mix32(state)) >>> 0;
  }

  private toggle(i: number): void {
    const bit = this.bitOf[i] ?? 0;
    const bits = this.p.known[i] === 1 ? this.okBits : this.unknownBits;
    const word = bit >>> 5;
    bits[word] = (bits[word] ?? 0) ^ (1 << (bit & 31));
    if (this.p.known[i] === 1) this.setHash ^= this.zobrist[i] ?? 0;
  }

  /** Removes op i's nodes from its list; they keep their own links for `unlift`. */
  private lift(i: number, known: boolean): void {
    this.unlink(i);
    if (known) this.unlink(this.p.n + i);
  }

  /** Restores in the reverse order of `lift` (Knuth's dancing links). */
  private unlift(i: number, known: boolean): void {
    if (known) this.relink(this.p.n + i);
    this.relink(i);
  }

  private unlink(node: number): void {
    const before = this.prev[node] ?? NONE;
    const after = this.next[node] ?? NONE;
    this.next[before] = after;
    if (after !== NONE) this.prev[after] = before;
  }

  private relink(node: number): void {
    const before = this.prev[node] ?? NONE;
    const after = this.next[node] ?? NONE;
    this.next[before] = node;
    if (after !== NONE) this.prev[after] = node;
  }

  private link(node: number): number {
    return this.next[node] ?? NONE;
  }

  private rankOf(node: number): number {
    return this.p.rank[node] ?? NONE;
  }
}

/**
 * Configurations known to have no completion: Lowe's (2017) memoization, with
 * a dominance twist for unknown ops. A config is (linearized ok ops, linearized
 * unknown ops, state). If (ok, U, s) failed, then (ok, U', s) fails for every
 * U' ⊇ U: it has the same obligations and fewer optional ops left to use.
 * Because the search tries ok ops before unknown ones, the configs that use
 * fewer unknown ops are usually finished first, so this prunes most of the
 * ways of spending unknown ops that turn out to be useless.
 *
 * Entries are recorded when a config is abandoned, never while it is still on
 * the search path. An exact match with a config on the path cannot happen,
 * because the linearized set grows strictly along the path.
 *
 * Layout: open addressing over groups keyed by (ok set, state), each group
 * holding a linked list of unknown sets, all in flat typed arrays so a lookup
 * allocates nothing.
 */
class FailedConfigs {
  private readonly okWords: number;
  private readonly unknownWords: number;
  private readonly bytesMax: number;
  /** Group index + 1 per slot, 0 when empty. Invariant: groupCount <= slots.length / 2. */
  private slots = new Int32Array(1024);
  private groupHashes = new Uint32Array(512);
  private groupStates = new Int32Array(512);
  /** First entry of each group's list, NONE when empty. */
  private groupFirst = new Int32Array(512);
  private groupOkBits: Uint32Array;
  private groupCount = 0;
  private entryNext = new Int32Array(512);
  private entryUnknownBits: Uint32Array;
  private entryCount = 0;

  constructor(okWords: number, unknownWords: number, bytesMax: number) {
    assert(okWords >= 1 && unknownWords >= 1, 'bitsets have at least one word');
    this.okWords = okWords;
    this.unknownWords = unknownWords;
    this.bytesMax = bytesMax;
    this.groupOkBits = new Uint32Array(512 * okWords);
    this.entryUnknownBits = new Uint32Array(512 * unknownWords);
  }

  /** True when a recorded failure has this ok set and state, and a subset of these unknown ops. */
  dominates(ok: Uint32Array, unknown: Uint32Array, hash: number, state: number): boolean {
    const group = this.findGroup(ok, hash, state);
    if (group === NONE) return false;
    for (let e = this.groupFirst[group] ?? NONE; e !== NONE; e = this.entryNext[e] ?? NONE) {
      if (this.isSubset(e, unknown)) return true;
    }
    return false;
  }

  /** Records a failed config. Past `bytesMax` it forgets instead: sound, only slower. */
  record(ok: Uint32Array, unknown: Uint32Array, hash: number, state: number): void {
    if (this.bytes() > this.bytesMax) return;
    let group = this.findGroup(ok, hash, state);
    if (group === NONE) group = this.addGroup(ok, hash, state);
    if (this.entryCount === this.entryNext.length) this.growEntries();
    const entry = this.entryCount++;
    this.entryUnknownBits.set(unknown, entry * this.unknownWords);
    this.entryNext[entry] = this.groupFirst[group] ?? NONE;
    this.groupFirst[group] = entry;
  }

  private findGroup(ok: Uint32Array, hash: number, state: number): number {
    const mask = this.slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const group = (this.slots[slot] ?? 0) - 1;
      if (group === NONE) return NONE;
      if (
        this.groupHashes[group] === hash &&
        this.groupStates[group] === state &&
        this.sameOk(group, ok)
      ) {
        return group;
      }
    }
  }

  private addGroup(ok: Uint32Array, hash: number, state: number): number {
    if (2 * (this.groupCount + 1) > this.slots.length) this.growGroups();
    const group = this.groupCount++;
    this.groupHashes[group] = hash;
    this.groupStates[group] = state;
    this.groupFirst[group] = NONE;
    this.groupOkBits.set(ok, group * this.okWords);
    const mask = this.slots.length - 1;
    let slot = hash & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = group + 1;
    return group;
  }

  private sameOk(group: number, ok: Uint32Array): boolean {
    const base = group * this.okWords;
    for (let w = 0; w < this.okWords; w++) {
      if (this.groupOkBits[base + w] !== ok[w]) return false;
    }
    return true;
  }

  private isSubset(entry: number, unknown: Uint32Array): boolean {
    const base = entry * this.unknownWords;
    for (let w = 0; w < this.unknownWords; w++) {
      if (((this.entryUnknownBits[base + w] ?? 0) & ~(unknown[w] ?? 0)) !== 0) return false;
    }
    return true;
  }

  private bytes(): number {
    return this.groupOkBits.byteLength + this.entryUnknownBits.byteLength + 20 * this.slots.length;
  }

  private growGroups(): void {
    const capacity = this.groupHashes.length * 2;
    this.groupHashes = grown(this.groupHashes, new Uint32Array(capacity));
    this.groupStates = grown(this.groupStates, new Int32Array(capacity));
    this.groupFirst = grown(this.groupFirst, new Int32Array(capacity));
    this.groupOkBits = grown(this.groupOkBits, new Uint32Array(capacity * this.okWords));
    this.slots = new Int32Array(capacity * 2);
    const mask = this.slots.length - 1;
    for (let group = 0; group < this.groupCount; group++) {
      let slot = (this.groupHashes[group] ?? 0) & mask;
      while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
      this.slots[slot] = group + 1;
    }
  }

  private growEntries(): void {
    const capacity = this.entryNext.length * 2;
    this.entryNext = grown(this.entryNext, new Int32Array(capacity));
    this.entryUnknownBits = grown(
      this.entryUnknownBits,
      new Uint32Array(capacity * this.unknownWords),
    );
  }
}

function grown<T extends Uint32Array | Int32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

// ---------------------------------------------------------------------------
// Explaining a violation.

/**
 * Replays the longest linearizable prefix the search found and lists the ops
 * that had to come next. At that point every such op is inconsistent with the
 * register's value: had one fit, the search would have found a longer prefix.
 */
function explainViolation(
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
  // The pending ok op that returns first bounds what may come next (Wing & Gong).
  let deadline = NONE;
  for (const event of p.order) {
    if (event >= p.n && placed[event - p.n] === 0) {
      deadline = event - p.n;
      break;
    }
  }
  assert(deadline !== NONE, 'a violation leaves an ok op unlinearized');
  const deadlineRank = p.rank[p.n + deadline] ?? NONE;
  const candidates: number[] = [];
  for (const event of p.order) {
    if ((p.rank[event] ?? NONE) >= deadlineRank) break;
    if (event < p.n && placed[event] === 0 && p.known[event] === 1) candidates.push(event);
  }
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
