/** Option parsers shared by the benchmark commands: a bad value is a clear commander error. */

import { InvalidArgumentError } from 'commander';

/** An integer option of at least `min`. */
export const int =
  (min: number) =>
  (text: string): number => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected an integer of at least ${min}, got '${text}'`);
    }
    return n;
  };

/** A comma-separated list option. */
export const list = (text: string): string[] => text.split(',').filter((s) => s !== '');
