/**
 * Growable byte writer and bounds-checked byte reader shared by the codecs.
 *
 * Integers are unsigned LEB128 varints up to Number.MAX_SAFE_INTEGER: terms,
 * indexes and lengths are small in practice (1–3 bytes), and a varint needs
 * no assumption about their width. The reader throws only DecodeError.
 */

import { assert, fail } from '../raft/assert.js';
import { DecodeError } from './errors.js';

/** 2^53 - 1 needs 8 varint bytes (7 bits each); more is malformed. */
const varintBytesMax = 8;
const utf8Encoder = new TextEncoder();
/**
 * `fatal` so invalid UTF-8 is a decode error rather than silently replaced
 * characters; `ignoreBOM` so a string that starts with U+FEFF keeps it (by
 * default the decoder strips it, and a node id or read context starting
 * with one came back changed).
 */
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** `ByteReader.internedString`'s cache: at most this many strings of at most this many bytes. */
const internedMax = 16;
const internedBytesMax = 64;
const interned: { readonly bytes: Uint8Array; readonly value: string }[] = [];
/** The slot the next new string takes (round robin once full). */
let internedNext = 0;

export class ByteWriter {
  private buf: Uint8Array;
  /**
   * Where the next byte goes in `buf`. Invariant: 0 <= length <=
   * buf.byteLength. Once a blob was attached, the bytes before
   * `segmentStart` are read from `parts`: `buf` may have outgrown them.
   */
  length = 0;
  /**
   * Once a blob was attached (see the constructor): the output so far, as
   * ranges of `buf` (or of buffers it outgrew) and the attached blobs in
   * order. `buf[segmentStart, length)` follows them.
   */
  private parts: Uint8Array[] | null = null;
  private segmentStart = 0;
  private attachedBytes = 0;

  /**
   * @param attachBytesMin a `blob` at least this long is not copied: it
   *   becomes a part of the output as it is (`finishParts`), and must not
   *   change until the output is written. Infinity (the default) copies
   *   every blob, so `finish` can return one buffer.
   */
  constructor(
    capacityBytes: number,
    private readonly attachBytesMin = Number.POSITIVE_INFINITY,
  ) {
    // Not from Node's shared buffer pool: a frame there would share a slab
    // with log entries' payloads and be kept alive with them. No DataView:
    // making one took a quarter of a heartbeat's encode.
    this.buf = new Uint8Array(Math.max(16, capacityBytes));
  }

  /** Bytes of the whole output: those written here and the attached blobs. */
  get outputBytes(): number {
    return this.length + this.attachedBytes;
  }

  private reserve(bytes: number): void {
    const needed = this.length + bytes;
    if (needed <= this.buf.byteLength) return;
    // Doubling keeps the total copying linear in the final size.
    const next = new Uint8Array(Math.max(needed, this.buf.byteLength * 2));
    // Bytes before segmentStart are in `parts` already (views of this or an earlier buffer).
    next.set(this.buf.subarray(this.segmentStart, this.length), this.segmentStart);
    this.buf = next;
  }

  u8(value: number): void {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xff))
      fail(`u8 out of range: ${value}`);
    this.reserve(1);
    this.buf[this.length++] = value;
  }

  u32(value: number): void {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff)) {
      fail(`u32 out of range: ${value}`);
    }
    this.reserve(4);
    this.putU32(this.length, value);
    this.length += 4;
  }

  /**
   * Writes a u32 at an earlier position, e.g. a frame length known only at
   * the end; once a blob was attached, only before the first one.
   */
  patchU32(offset: number, value: number): void {
    assert(offset + 4 <= this.length, 'patchU32 within written bytes');
    assert(Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff, 'patchU32 value');
    const first = this.parts?.[0];
    if (first === undefined) {
      this.putU32(offset, value);
      return;
    }
    // The first part is a view of the buffer those bytes were written in,
    // which `buf` may have outgrown since.
    assert(offset + 4 <= first.byteLength, 'patchU32 before the first attached blob');
    putU32(first, offset, value);
  }

  private putU32(at: number, value: number): void {
    putU32(this.buf, at, value);
  }

  varint(value: number): void {
    if (!(Number.isSafeInteger(value) && value >= 0)) fail(`varint out of range: ${value}`);
    this.reserve(varintBytesMax);
    let v = value;
    // Division rather than shifts: bitwise operators truncate to 32 bits.
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.length++] = v;
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.byteLength);
    this.buf.set(data, this.length);
    this.length += data.byteLength;
  }

  /** Length-prefixed bytes; attached rather than copied from `attachBytesMin` bytes on. */
  blob(data: Uint8Array): void {
    this.varint(data.byteLength);
    if (data.byteLength < this.attachBytesMin) {
      this.bytes(data);
      return;
    }
    this.parts ??= [];
    this.parts.push(this.buf.subarray(this.segmentStart, this.length), data);
    this.segmentStart = this.length;
    this.attachedBytes += data.byteLength;
  }

  /** Length-prefixed UTF-8; `bytesMax` is the decoder's limit, checked here too (paired check). */
  string(value: string, bytesMax: number, what: string): void {
    const encoded = utf8Encoder.encode(value);
    if (encoded.byteLength > bytesMax) {
      fail(`${what} is ${encoded.byteLength} bytes, over the limit of ${bytesMax}`);
    }
    this.blob(encoded);
  }

  /** A copy of the bytes written from position `start` on, which must follow any attached blob. */
  copyFrom(start: number): Uint8Array {
    assert(
      start >= this.segmentStart && start <= this.length,
      'copyFrom after the last attached blob',
    );
    return this.buf.slice(start, this.length);
  }

  /** The written bytes; a view, valid until the next write. Asserts nothing was attached. */
  finish(): Uint8Array {
    assert(this.parts === null, 'finish() of a writer with attached blobs: use finishParts()');
    return this.buf.subarray(0, this.length);
  }

  /**
   * The output: one buffer (as `finish`) when nothing was attached, else
   * its parts in order, to be sent back to back.
   */
  finishParts(): Uint8Array | Uint8Array[] {
    if (this.parts === null) return this.finish();
    if (this.length === this.segmentStart) return [...this.parts];
    return [...this.parts, this.buf.subarray(this.segmentStart, this.length)];
  }
}

/** Big-endian. */
function putU32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value >>> 24;
  buf[at + 1] = value >>> 16;
  buf[at + 2] = value >>> 8;
  buf[at + 3] = value;
}

export class ByteReader {
  private offset = 0;
  /**
   * `buf.byteLength`, read once: the getter is a call on the typed array
   * prototype, and `buf` is a Buffer or a plain Uint8Array, so the load
   * was polymorphic on every field read (perf: LoadIC on the follower).
   */
  private readonly lengthBytes: number;

  constructor(private readonly buf: Uint8Array) {
    // No DataView: making one took a fifth of a heartbeat's decode.
    this.lengthBytes = buf.byteLength;
  }

  get remainingBytes(): number {
    return this.lengthBytes - this.offset;
  }

  error(field: string, reason: string): DecodeError {
    return new DecodeError(field, this.offset, reason);
  }

  private need(bytes: number, field: string): void {
    if (bytes > this.remainingBytes) {
      throw this.error(field, `needs ${bytes} bytes but only ${this.remainingBytes} remain`);
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.offset++] ?? 0;
  }

  /** Big-endian, as ByteWriter.u32 writes it. */
  u32(field: string): number {
    this.need(4, field);
    const buf = this.buf;
    const at = this.offset;
    this.offset = at + 4;
    // `>>> 0` reads the 32 bits as unsigned (the top byte's shift sets the sign bit).
    const high = ((buf[at] ?? 0) << 24) | ((buf[at + 1] ?? 0) << 16);
    return (high | ((buf[at + 2] ?? 0) << 8) | (buf[at + 3] ?? 0)) >>> 0;
  }

  bool(field: string): boolean {
    const b = this.u8(field);
    if (b > 1) throw this.error(field, `boolean byte is ${b}, not 0 or 1`);
    return b === 1;
  }

  varint(field: string, max = Number.MAX_SAFE_INTEGER): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < varintBytesMax; i++) {
      const b = this.u8(field);
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        // A trailing zero byte would be a second encoding of the same value.
        if (b === 0 && i > 0) throw this.error(field, 'varint is not minimally encoded');
        if (value > max) throw this.error(field, `value ${value} exceeds the limit of ${max}`);
        return value;
      }
      scale *= 0x80;
    }
    throw this.error(field, `varint longer than ${varintBytesMax} bytes`);
  }

  /** A view into the input, not a copy: valid as long as the input buffer is not reused. */
  bytes(length: number, field: string): Uint8Array {
    this.need(length, field);
    const out = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  blob(field: string, bytesMax: number): Uint8Array {
    return this.bytes(this.varint(field, bytesMax), field);
  }

  /**
   * Like `string`, for the few short strings every message repeats (node
   * ids): one decoded recently comes from a small cache, without a view, a
   * UTF-8 decode or a new string.
   */
  internedString(field: string, bytesMax: number): string {
    const length = this.varint(field, bytesMax);
    this.need(length, field);
    const buf = this.buf;
    const at = this.offset;
    for (const known of interned) {
      const bytes = known.bytes;
      if (bytes.length !== length) continue;
      let i = 0;
      while (i < length && bytes[i] === buf[at + i]) i++;
      if (i === length) {
        this.offset = at + length;
        return known.value;
      }
    }
    const raw = this.bytes(length, field);
    let value: string;
    try {
      value = utf8Decoder.decode(raw);
    } catch {
      throw this.error(field, 'is not valid UTF-8');
    }
    if (length <= internedBytesMax) {
      interned[internedNext] = { bytes: raw.slice(), value };
      internedNext = (internedNext + 1) % internedMax;
    }
    return value;
  }

  string(field: string, bytesMax: number): string {
    const raw = this.blob(field, bytesMax);
    try {
      return utf8Decoder.decode(raw);
    } catch {
      throw this.error(field, 'is not valid UTF-8');
    }
  }

  rest(): Uint8Array {
    return this.bytes(this.remainingBytes, 'rest');
  }

  end(what: string): void {
    if (this.remainingBytes !== 0) {
      throw this.error(what, `${this.remainingBytes} unexpected bytes after the end`);
    }
  }
}
