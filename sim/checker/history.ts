/**
 * A client history of key-value operations, as recorded by the simulator's
 * clients (and later by the fault-injection suite against real processes).
 * Times are in one shared clock (simulated or monotonic), any unit.
 */

export type KvInput =
  | { readonly op: 'get'; readonly key: string }
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  /** Sets `value` only if the current value equals `expected` (null: key absent). */
  | {
      readonly op: 'cas';
      readonly key: string;
      readonly expected: string | null;
      readonly value: string;
    }
  /** Appends `value` to the current string (absent counts as ''). */
  | { readonly op: 'append'; readonly key: string; readonly value: string };

export type KvOutput =
  /** get: the value read (null: key absent). */
  | { readonly value: string | null }
  /** put, append: done. cas: whether it swapped. */
  | { readonly ok: boolean };

/**
 * - `ok`: completed at `returned` with `output`.
 * - `fail`: definitely did not take effect (e.g. refused before proposing).
 * - `unknown`: timed out or lost its connection; it may take effect at any
 *   time after `invoked`, or never.
 */
export type OperationStatus = 'ok' | 'fail' | 'unknown';

export interface Operation {
  readonly id: number;
  readonly client: number;
  readonly input: KvInput;
  readonly invoked: number;
  /** Completion time for `ok` and `fail`; null for `unknown`. */
  readonly returned: number | null;
  readonly status: OperationStatus;
  /** Present exactly when status is `ok`. */
  readonly output: KvOutput | null;
}
