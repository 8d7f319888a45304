/**
 * Expected command errors. A command throws KvError before it mutates
 * anything; the executor turns it into an error reply. Messages match Redis.
 */
import { error, type Reply } from './reply.js';

export class KvError extends Error {
  override readonly name = 'KvError';
  readonly reply: Reply;

  constructor(message: string) {
    super(message);
    this.reply = error(message);
  }
}

export const msg = {
  syntax: 'ERR syntax error',
  notInteger: 'ERR value is not an integer or out of range',
  notFloat: 'ERR value is not a valid float',
  wrongType: 'WRONGTYPE Operation against a key holding the wrong kind of value',
  overflow: 'ERR increment or decrement would overflow',
  nanOrInf: 'ERR increment would produce NaN or Infinity',
  noSuchKey: 'ERR no such key',
  indexRange: 'ERR index out of range',
  tooBig: 'ERR string exceeds maximum allowed size (proto-max-bulk-len)',
  offsetRange: 'ERR offset is out of range',
  mustBePositive: 'ERR value is out of range, must be positive',
  hashNotInteger: 'ERR hash value is not an integer',
  hashNotFloat: 'ERR hash value is not a float',
  minMaxFloat: 'ERR min or max is not a float',
  minMaxLex: 'ERR min or max not valid string range item',
  dbIndex: 'ERR DB index is out of range',
  blocking: 'ERR blocking commands are not supported yet; use the non-blocking form',
} as const;

export function fail(message: string): never {
  throw new KvError(message);
}

export function wrongArgs(name: string): string {
  return `ERR wrong number of arguments for '${name}' command`;
}
