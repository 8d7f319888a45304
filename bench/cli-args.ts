/** Option parsers shared by the benchmark commands: a bad value is a clear commander error. */

import { InvalidArgumentError } from 'commander';

/** An integer option of at least `min` (and at most `max`, when given). */
export const int =
  (min: number, max?: number) =>
  (text: string): number => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
      const range = max === undefined ? `of at least ${min}` : `from ${min} to ${max}`;
      throw new InvalidArgumentError(`expected an integer ${range}, got '${text}'`);
    }
    return n;
  };

/** A comma-separated list option. */
export const list = (text: string): string[] => text.split(',').filter((s) => s !== '');
