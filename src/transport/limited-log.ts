/**
 * The transport's logger: plain lines, and rate-limited ones for problems
 * that repeat (one line per key per interval, with the number of repeats
 * suppressed since the last one).
 */

import type { Logger } from 'pino';
import { RateLimiter } from './backoff.js';

export class LimitedLog {
  private readonly limiter: RateLimiter;

  constructor(
    readonly logger: Logger,
    intervalMs: number,
  ) {
    this.limiter = new RateLimiter(intervalMs);
  }

  info(line: string): void {
    this.logger.info(line);
  }

  /** Logs `line` unless a line with `key` was logged within the interval. */
  limited(key: string, level: 'warn' | 'error', line: string): void {
    const suppressed = this.limiter.allow(key, Date.now());
    if (suppressed === null) return;
    const suffix = suppressed > 0 ? ` (${suppressed} similar since the last report)` : '';
    this.logger[level](`${line}${suffix}`);
  }

  /** The next line with `key` is logged at once. */
  forget(key: string): void {
    this.limiter.forget(key);
  }
}
