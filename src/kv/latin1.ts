/**
 * Binary strings (one char per byte, see src/kv/reply.ts) to and from Buffers.
 *
 * Node's Buffer has `latin1Slice` and `latin1Write` methods that skip the
 * argument normalisation of `toString('latin1', ...)` and `write(..., 'latin1')`.
 * They are not in @types/node, so they are reached through a narrow cast, with
 * the documented calls as a fallback should a Node version drop them.
 */

interface Latin1Methods {
  latin1Slice(start: number, end: number): string;
  latin1Write(value: string, offset: number, length: number): number;
}

const fastMethods =
  typeof (Buffer.prototype as Partial<Latin1Methods>).latin1Slice === 'function' &&
  typeof (Buffer.prototype as Partial<Latin1Methods>).latin1Write === 'function';

/** The bytes `buf[start, end)` as a binary string. */
export const latin1Slice: (buf: Buffer, start: number, end: number) => string = fastMethods
  ? (buf, start, end) => (buf as unknown as Latin1Methods).latin1Slice(start, end)
  : (buf, start, end) => buf.toString('latin1', start, end);

/**
 * Writes a binary string at `offset` and returns the number of bytes written.
 * Chars above 0xff would be truncated to their low byte: callers pass binary
 * strings only.
 */
export const latin1Write: (buf: Buffer, value: string, offset: number) => number = fastMethods
  ? (buf, value, offset) =>
      (buf as unknown as Latin1Methods).latin1Write(value, offset, buf.length - offset)
  : (buf, value, offset) => buf.write(value, offset, 'latin1');
