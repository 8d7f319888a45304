/**
 * Register values interned to small integers.
 *
 * The search compares and memoizes states in its inner loop; as integers they
 * compare in one instruction, fit in typed arrays, and hash cheaply into the
 * memo of failed configs, where strings (which appends make long) would not.
 */
import { assert } from '../../src/raft/assert.js';

/** State id of the absent value: a key starts absent. */
export const STATE_NULL = 0;

export class StateTable {
  /** Invariant: values[STATE_NULL] is null, and ids maps every other entry back to its index. */
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
