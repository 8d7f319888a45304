/**
 * Counts complete RESP2 replies in a byte stream without building them: the
 * load generator only needs to know when each reply has arrived and whether
 * it was an error. Replies may be split anywhere across chunks.
 */

const CR = 13;
const LF = 10;
/** A reply header line longer than this is not RESP from a sane server. */
const headerBytesMax = 64;

export interface ReplyEvent {
  readonly error: string | null;
}

export class ReplyCounter {
  private pending: Buffer | null = null;
  /** Bytes of a bulk string body (plus CRLF) still to skip. */
  private skipBytes = 0;
  /** Elements still expected at each open array level. */
  private readonly arrays: number[] = [];

  /** Feeds a chunk; calls `onReply` once per complete top-level reply. */
  feed(chunk: Buffer, onReply: (error: string | null) => void): void {
    let buf = chunk;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let pos = 0;
    while (pos < buf.length) {
      if (this.skipBytes > 0) {
        const take = Math.min(this.skipBytes, buf.length - pos);
        this.skipBytes -= take;
        pos += take;
        if (this.skipBytes === 0) this.completeValue(null, onReply);
        continue;
      }
      const end = lineEnd(buf, pos);
      if (end < 0) {
        if (buf.length - pos > headerBytesMax) {
          throw new Error(`a RESP reply line exceeds ${headerBytesMax} bytes: not a RESP server?`);
        }
        this.pending = buf.subarray(pos);
        return;
      }
      const type = buf[pos];
      const lineFrom = pos + 1;
      pos = end + 2;
      switch (type) {
        case 0x2b /* + */:
        case 0x3a /* : */:
          this.completeValue(null, onReply);
          break;
        case 0x2d /* - */:
          this.completeValue(buf.toString('latin1', lineFrom, end), onReply);
          break;
        case 0x24 /* $ */:
          {
            const length = parseLength(buf, lineFrom, end);
            if (length < 0) this.completeValue(null, onReply);
            else this.skipBytes = length + 2;
            break;
          }
        case 0x2a /* * */:
          {
            const count = parseLength(buf, lineFrom, end);
            if (count <= 0) this.completeValue(null, onReply);
            else this.arrays.push(count);
            break;
          }
        default:
          throw new Error(
            `unexpected RESP reply type byte ${type} ('${buf.toString('latin1', lineFrom, Math.min(end, lineFrom + 20))}')`,
          );
      }
    }
  }

  /** One value ended: it completes a top-level reply unless it sits inside an array. */
  private completeValue(error: string | null, onReply: (error: string | null) => void): void {
    let firstError = error;
    while (this.arrays.length > 0) {
      const last = this.arrays.length - 1;
      const left = (this.arrays[last] as number) - 1;
      if (left > 0) {
        this.arrays[last] = left;
        return;
      }
      this.arrays.pop();
      firstError = null; // an error inside an array is data, not a failed request
    }
    onReply(firstError);
  }
}

function lineEnd(buf: Buffer, from: number): number {
  for (let i = from; i < buf.length - 1; i++) {
    if (buf[i] === CR && buf[i + 1] === LF) return i;
  }
  return -1;
}

/** The decimal length of a `$` or `*` header; -1 for a null (`-1`). */
function parseLength(buf: Buffer, from: number, to: number): number {
  if (buf[from] === 0x2d /* - */) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const digit = (buf[i] as number) - 0x30;
    if (digit < 0 || digit > 9) throw new Error('a RESP length that is not a number');
    n = n * 10 + digit;
  }
  return n;
}
