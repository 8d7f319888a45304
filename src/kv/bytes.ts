/**
 * Little-endian byte writer and reader for log entries and snapshots. Binary
 * strings (one byte per UTF-16 code unit, see reply.ts) are written as a u32
 * length and their latin1 bytes.
 */
import { Buffer } from 'node:buffer';
import { assert } from '../raft/assert.js';

export class CorruptDataError extends Error {
  override readonly name = 'CorruptDataError';
}

/** The bytes end before the value being read: truncated (or, when streaming, not here yet). */
export class TruncatedDataError extends CorruptDataError {}

export class ByteWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialBytes = 256) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  get length(): number {
    return this.pos;
  }

  private ensure(extraBytes: number): void {
    const need = this.pos + extraBytes;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(value: number): void {
    this.ensure(1);
    this.buf[this.pos++] = value;
  }

  u32(value: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(value, this.pos);
    this.pos += 4;
  }

  f64(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  str(value: string): void {
    this.u32(value.length);
    this.ensure(value.length);
    this.pos += this.buf.write(value, this.pos, value.length, 'latin1');
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** A copy of the bytes written so far. */
  finish(): Uint8Array {
    return new Uint8Array(this.buf.subarray(0, this.pos));
  }

  /**
   * The buffer itself, without a copy: for a writer sized exactly up front
   * (asserted), whose buffer nothing else will write to.
   */
  finishExact(): Uint8Array {
    assert(this.pos === this.buf.length, `wrote ${this.pos} bytes into ${this.buf.length}`);
    return this.buf;
  }

  /** Takes the bytes written so far (a copy) and starts over, keeping the buffer. */
  take(): Uint8Array {
    const out = this.finish();
    this.pos = 0;
    return out;
  }
}

export class ByteReader {
  private readonly buf: Buffer;
  private pos: number;
  private readonly end: number;

  constructor(
    bytes: Uint8Array,
    private readonly what: string,
    start = 0,
    end = bytes.length,
  ) {
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
    this.end = end;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(bytes: number): void {
    if (this.pos + bytes > this.end) {
      throw new TruncatedDataError(
        `${this.what}: truncated at byte ${this.pos} (needed ${bytes} more, ${this.end - this.pos} left)`,
      );
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  str(): string {
    const len = this.u32();
    this.need(len);
    const s = this.buf.toString('latin1', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  raw(len: number): Uint8Array {
    this.need(len);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** Paired check: a record must be consumed exactly. */
  expectEnd(): void {
    if (this.pos !== this.end) {
      throw new CorruptDataError(
        `${this.what}: ${this.end - this.pos} unexpected trailing byte(s) at ${this.pos}`,
      );
    }
  }
}
