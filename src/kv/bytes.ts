/**
 * Little-endian byte writer and reader for log entries and snapshots. Binary
 * strings (one byte per UTF-16 code unit, see reply.ts) are written as a u32
 * length and their latin1 bytes.
 */
import { Buffer } from 'node:buffer';
import { assert, fail } from '../raft/assert.js';
import { latin1Slice, latin1Write } from './latin1.js';

export class CorruptDataError extends Error {
  override readonly name = 'CorruptDataError';
}

/** The bytes end before the value being read: truncated (or, when streaming, not here yet). */
export class TruncatedDataError extends CorruptDataError {}

/**
 * Strings up to this long are written by a loop over their code units: for
 * a 10-character key that took 22 ns against 62 ns through Buffer.write,
 * which wins from about 30 characters on (100: 67 ns against 230 ns).
 * Typed array stores keep the low byte, as latin1 encoding does.
 */
const shortStringMax = 24;
/**
 * Byte ranges up to this long are copied by a loop: Buffer.copy of part of
 * a buffer makes a view of that part first (Node 20), one object per call,
 * which was a tenth of a follower's allocation when snapshots copied each
 * value out of the string arena that way.
 */
const copyLoopMax = 256;

/**
 * Copies `src[start, end)` into `dst` at `at`, four bytes per step when
 * short: for 100 bytes between two buffers that took 59 ns, against 144 ns
 * byte by byte and 77 ns through a view of the range (Node 20). The caller
 * keeps a DataView per buffer, made once.
 */
export function copyWords(
  dst: DataView,
  at: number,
  src: DataView,
  start: number,
  end: number,
): void {
  if (end - start > copyLoopMax) {
    const from = new Uint8Array(src.buffer, src.byteOffset + start, end - start);
    new Uint8Array(dst.buffer, dst.byteOffset + at, end - start).set(from);
    return;
  }
  const delta = at - start;
  let i = start;
  for (const wordsEnd = end - 3; i < wordsEnd; i += 4) {
    dst.setUint32(i + delta, src.getUint32(i, true), true);
  }
  for (; i < end; i++) dst.setUint8(i + delta, src.getUint8(i));
}

/** A DataView over exactly `bytes`. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Writes binary string `s` (one byte per char) into `buf` at `at`; returns its length. */
export function writeLatin1(buf: Buffer, at: number, s: string): number {
  const length = s.length;
  if (length > shortStringMax) return latin1Write(buf, s, at);
  // Keys and command names: a loop beats the call into Buffer.write.
  for (let i = 0; i < length; i++) buf[at + i] = s.charCodeAt(i);
  return length;
}

/** Copies `src[start, end)` into `dst` at `at` without making a view of the range when short. */
export function copyRange(
  dst: Uint8Array,
  at: number,
  src: Uint8Array,
  start: number,
  end: number,
): void {
  if (end - start > copyLoopMax) dst.set(src.subarray(start, end), at);
  else for (let i = start; i < end; i++) dst[at + i - start] = src[i] as number;
}

/**
 * A string value given as its latin1 bytes, `buf[start, end)`: the keyspace
 * stores it without making a JS string when it fits the arena (snapshot
 * restore, and plain SETs applied from their entry's bytes).
 */
export class ByteSpan {
  constructor(
    readonly buf: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}

  get length(): number {
    return this.end - this.start;
  }

  toString(): string {
    return latin1Slice(this.buf, this.start, this.end);
  }
}

export class ByteWriter {
  private buf: Buffer;
  /**
   * Over `buf`, for word copies without Buffer's checks; made on first use,
   * and dropped with `buf`: one-shot writers (a log entry each) never need
   * it, and making one was over a third of a SET entry's encode (343-360
   * against 216-228 ns without, scratch microbenchmark).
   */
  private view: DataView | null = null;
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
    this.view = null;
  }

  u8(value: number): void {
    this.ensure(1);
    this.buf[this.pos++] = value;
  }

  u32(value: number): void {
    assert(value >>> 0 === value, 'a u32 is an integer in [0, 2^32)');
    this.ensure(4);
    const buf = this.buf;
    const at = this.pos;
    buf[at] = value;
    buf[at + 1] = value >>> 8;
    buf[at + 2] = value >>> 16;
    buf[at + 3] = value >>> 24;
    this.pos = at + 4;
  }

  f64(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  str(value: string): void {
    const length = value.length;
    this.u32(length);
    this.ensure(length);
    this.pos += writeLatin1(this.buf, this.pos, value);
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Copies `src[start, end)` in (see copyRange). */
  copyIn(src: Uint8Array, start: number, end: number): void {
    this.ensure(end - start);
    copyRange(this.buf, this.pos, src, start, end);
    this.pos += end - start;
  }

  /** Copies the bytes of `src[start, end)` in, `src` given as a view (see copyWords). */
  copyInView(src: DataView, start: number, end: number): void {
    this.ensure(end - start);
    this.view ??= viewOf(this.buf);
    copyWords(this.view, this.pos, src, start, end);
    this.pos += end - start;
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
    if (this.pos !== this.buf.length) fail(`wrote ${this.pos} bytes into ${this.buf.length}`);
    return this.buf;
  }

  /**
   * Takes the bytes written so far, not a copy, and starts over in a new
   * buffer of the same size: snapshot chunks, each handed to a consumer
   * that may hold it. A copy per chunk and a buffer kept cost a second pass
   * over every chunk's bytes.
   */
  take(): Uint8Array {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.view = null;
    this.pos = 0;
    return out;
  }

  /**
   * Lends the bytes written so far, not a copy, and starts over in the same
   * buffer: the next write overwrites them, so the caller must be done with
   * them first (a snapshot chunk written to its file before the next is
   * made, see `KvSnapshot`).
   */
  lend(): Uint8Array {
    const out = this.buf.subarray(0, this.pos);
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
    // Entries from the peer transport are Buffers already: a second view
    // per decoded entry was a tenth of a follower's allocation.
    this.buf = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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

  /**
   * Skips a string as `str` reads it and returns where its bytes start (they
   * end at `offset`), to copy them without making a JS string.
   */
  strSpan(): number {
    const len = this.u32();
    this.need(len);
    const start = this.pos;
    this.pos += len;
    return start;
  }

  /** The bytes being read (what `strSpan` offsets index). */
  get bytes(): Buffer {
    return this.buf;
  }

  str(): string {
    const len = this.u32();
    this.need(len);
    const s = latin1Slice(this.buf, this.pos, this.pos + len);
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
