/**
 * The real-time order of one key's call and return events.
 *
 * Wing & Gong's search (1993) only needs to know which calls come before the
 * first pending return, so the whole history is flattened once into a sorted
 * event sequence. The tie-breaking rule lives here, on its own, because it
 * decides what "happened before" means for the whole checker.
 */
import type { Operation } from './history.js';

/**
 * Sorts the calls and the returns (of known ops) by time. Event i < n is the
 * call of op i; n + i is its return.
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
export function orderEvents(ops: readonly Operation[]): Int32Array {
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
