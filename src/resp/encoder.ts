/**
 * Encodes replies (RESP2 or RESP3) and requests (multibulk) into bytes.
 *
 * A ReplyWriter accumulates the replies of a whole pipelined batch in one
 * slab and hands the batch out as one Buffer for a single socket.write. The
 * handed-out bytes are never written again: later batches go after them, and
 * a full slab is replaced rather than reused, so a write still queued in the
 * socket cannot be corrupted.
 */

import { latin1Write } from '../kv/latin1.js';
import { ok, type Reply } from '../kv/reply.js';
import { assert } from '../raft/assert.js';
import { formatDouble } from './double.js';

export type Protocol = 2 | 3;

export interface ReplyWriterOptions {
  /** Size of the first slab. */
  readonly slabBytesInitial?: number;
  /**
   * Slabs grow geometrically while batches outgrow them, up to this size. A
   * batch larger still gets a slab of its own, dropped once taken, so one huge
   * reply does not pin memory.
   */
  readonly slabBytesMax?: number;
}

export const replyWriterDefaults = {
  slabBytesInitial: 16 * 1024,
  slabBytesMax: 1024 * 1024,
} as const satisfies Required<ReplyWriterOptions>;

const CR = 0x0d;
const LF = 0x0a;
const PLUS = 0x2b;
const MINUS = 0x2d;
const COLON = 0x3a;
const DOLLAR = 0x24;
const STAR = 0x2a;
const PERCENT = 0x25;
const TILDE = 0x7e;
const COMMA = 0x2c;
const EQUALS = 0x3d;
const GREATER = 0x3e;
const ZERO = 0x30;

/** '$' or ':' or '*', a sign, 20 digits, CRLF. */
const headerBytesMax = 24;
/** Below this, copying chars in JS is cheaper than calling into C++. */
const shortStringChars = 24;
/** Largest integer written digit by digit; larger ones go through BigInt/String. */
const smallIntegerMax = 2 ** 31 - 1;

const okBytes = Buffer.from('+OK\r\n', 'latin1');
const nullBulkBytes = Buffer.from('$-1\r\n', 'latin1');
const nullArrayBytes = Buffer.from('*-1\r\n', 'latin1');
const nullResp3Bytes = Buffer.from('_\r\n', 'latin1');
const trueBytes = Buffer.from('#t\r\n', 'latin1');
const falseBytes = Buffer.from('#f\r\n', 'latin1');
const oneBytes = Buffer.from(':1\r\n', 'latin1');
const zeroBytes = Buffer.from(':0\r\n', 'latin1');

export class ReplyWriter {
  private readonly slabBytesMax: number;
  /** Size of the next slab: grows while batches outgrow slabs, up to slabBytesMax. */
  private slabBytes: number;
  private slab: Buffer;
  /** Invariant: start <= end <= slab.length; bytes before start are handed out. */
  private start = 0;
  private end = 0;

  constructor(options: ReplyWriterOptions = {}) {
    this.slabBytes = options.slabBytesInitial ?? replyWriterDefaults.slabBytesInitial;
    this.slabBytesMax = Math.max(
      this.slabBytes,
      options.slabBytesMax ?? replyWriterDefaults.slabBytesMax,
    );
    assert(this.slabBytes >= 1, 'slabBytesInitial is positive');
    this.slab = Buffer.allocUnsafe(this.slabBytes);
  }

  /** Bytes written since the last take(): the server checks its output limit against this. */
  get pendingBytes(): number {
    return this.end - this.start;
  }

  /**
   * The bytes written since the last take(), as one Buffer. It stays valid
   * and unchanged however the writer is used afterwards.
   */
  take(): Buffer {
    const batch = this.slab.subarray(this.start, this.end);
    this.start = this.end;
    if (this.slab.length > this.slabBytesMax) {
      this.slab = Buffer.allocUnsafe(this.slabBytes);
      this.start = 0;
      this.end = 0;
    }
    return batch;
  }

  write(reply: Reply, protocol: Protocol): void {
    if (reply === ok) {
      this.writeBytes(okBytes);
      return;
    }
    switch (reply.kind) {
      case 'simple':
        this.writeSimple(reply.value);
        break;
      case 'error':
        this.writeError(reply.message);
        break;
      case 'integer':
        this.writeInteger(reply.value);
        break;
      case 'bulk':
        this.writeBulk(reply.value);
        break;
      case 'null':
        this.writeBytes(protocol === 3 ? nullResp3Bytes : nullBulkBytes);
        break;
      case 'nullArray':
        this.writeBytes(protocol === 3 ? nullResp3Bytes : nullArrayBytes);
        break;
      case 'array':
        this.writeAggregate(STAR, reply.items, protocol);
        break;
      case 'set':
        this.writeAggregate(protocol === 3 ? TILDE : STAR, reply.items, protocol);
        break;
      case 'push':
        this.writeAggregate(protocol === 3 ? GREATER : STAR, reply.items, protocol);
        break;
      case 'map':
        this.writeMap(reply.entries, protocol);
        break;
      case 'double':
        this.writeDouble(reply.value, protocol);
        break;
      case 'boolean':
        this.writeBoolean(reply.value, protocol);
        break;
      case 'verbatim':
        this.writeVerbatim(reply.format, reply.value, protocol);
        break;
    }
  }

  /** `+value`; a simple string cannot hold CR or LF. */
  writeSimple(value: string): void {
    assert(value.indexOf('\r') < 0 && value.indexOf('\n') < 0, 'simple string has no CR/LF');
    this.writeLine(PLUS, value);
  }

  /** `-message`; CR and LF become spaces, as Redis does, to keep the reply one line. */
  writeError(message: string): void {
    const oneLine =
      message.indexOf('\r') >= 0 || message.indexOf('\n') >= 0
        ? message.replace(/[\r\n]/g, ' ')
        : message;
    this.writeLine(MINUS, oneLine);
  }

  writeInteger(value: number | bigint): void {
    if (typeof value === 'number') {
      assert(Number.isSafeInteger(value), 'integer reply is a safe integer');
      if (value >= 0 && value <= smallIntegerMax) {
        this.writeHeader(COLON, value);
        return;
      }
    }
    this.writeLine(COLON, value.toString());
  }

  /** `$len\r\nvalue\r\n` for a binary string. */
  writeBulk(value: string): void {
    const length = value.length;
    this.reserve(headerBytesMax + length + 2);
    this.writeHeaderUnchecked(DOLLAR, length);
    this.writeCharsUnchecked(value);
    this.writeCrLfUnchecked();
  }

  /** `*n\r\n`: the caller writes the n elements next. */
  writeArrayHeader(count: number): void {
    this.writeHeader(STAR, count);
  }

  /** A request as a multibulk of bulk strings, the way clients send commands. */
  writeCommand(argv: readonly string[]): void {
    this.writeHeader(STAR, argv.length);
    for (const arg of argv) this.writeBulk(arg);
  }

  private writeAggregate(prefix: number, items: readonly Reply[], protocol: Protocol): void {
    this.writeHeader(prefix, items.length);
    for (const item of items) this.write(item, protocol);
  }

  private writeMap(entries: readonly (readonly [Reply, Reply])[], protocol: Protocol): void {
    if (protocol === 3) this.writeHeader(PERCENT, entries.length);
    else this.writeHeader(STAR, entries.length * 2);
    for (const [key, value] of entries) {
      this.write(key, protocol);
      this.write(value, protocol);
    }
  }

  private writeBoolean(value: boolean, protocol: Protocol): void {
    if (protocol === 3) this.writeBytes(value ? trueBytes : falseBytes);
    else this.writeBytes(value ? oneBytes : zeroBytes);
  }

  private writeDouble(value: number, protocol: Protocol): void {
    const text = formatDouble(value);
    if (protocol === 3) this.writeLine(COMMA, text);
    else this.writeBulk(text);
  }

  private writeVerbatim(format: string, value: string, protocol: Protocol): void {
    if (protocol === 2) {
      this.writeBulk(value);
      return;
    }
    assert(format.length === 3, 'verbatim format is three chars');
    this.reserve(headerBytesMax + 4 + value.length + 2);
    this.writeHeaderUnchecked(EQUALS, 4 + value.length);
    this.writeCharsUnchecked(format);
    this.slab[this.end++] = COLON;
    this.writeCharsUnchecked(value);
    this.writeCrLfUnchecked();
  }

  private writeLine(prefix: number, text: string): void {
    this.reserve(1 + text.length + 2);
    this.slab[this.end++] = prefix;
    this.writeCharsUnchecked(text);
    this.writeCrLfUnchecked();
  }

  private writeHeader(prefix: number, count: number): void {
    this.reserve(headerBytesMax);
    this.writeHeaderUnchecked(prefix, count);
  }

  private writeBytes(bytes: Buffer): void {
    this.reserve(bytes.length);
    for (let i = 0; i < bytes.length; i++) this.slab[this.end + i] = bytes[i] ?? 0;
    this.end += bytes.length;
  }

  /** Writes `prefix count CRLF` for a count in [0, 2^53); room must be reserved. */
  private writeHeaderUnchecked(prefix: number, count: number): void {
    const slab = this.slab;
    slab[this.end++] = prefix;
    let digits = 1;
    for (let rest = count; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    let at = this.end + digits;
    this.end = at;
    let rest = count;
    do {
      const quotient = Math.floor(rest / 10);
      slab[--at] = ZERO + rest - quotient * 10;
      rest = quotient;
    } while (rest > 0);
    slab[this.end++] = CR;
    slab[this.end++] = LF;
  }

  private writeCharsUnchecked(value: string): void {
    const length = value.length;
    if (length <= shortStringChars) {
      const slab = this.slab;
      const end = this.end;
      for (let i = 0; i < length; i++) slab[end + i] = value.charCodeAt(i);
      this.end = end + length;
    } else {
      this.end += latin1Write(this.slab, value, this.end);
    }
  }

  private writeCrLfUnchecked(): void {
    this.slab[this.end++] = CR;
    this.slab[this.end++] = LF;
  }

  /** Makes room for `bytes` more bytes in the current batch. */
  private reserve(bytes: number): void {
    if (this.slab.length - this.end >= bytes) return;
    const pendingBytes = this.end - this.start;
    const requiredBytes = pendingBytes + bytes;
    let capacity = this.slabBytes;
    while (capacity < requiredBytes) capacity *= 2;
    // Doubling from a fixed base means a batch that keeps growing is copied
    // O(1) times per byte on average.
    if (capacity <= this.slabBytesMax) this.slabBytes = capacity;
    const slab = Buffer.allocUnsafe(capacity);
    this.slab.copy(slab, 0, this.start, this.end);
    this.slab = slab;
    this.start = 0;
    this.end = pendingBytes;
  }
}

/** One reply as a Buffer of its own (tests, rare paths; the server uses a ReplyWriter). */
export function encodeReply(reply: Reply, protocol: Protocol): Buffer {
  const writer = new ReplyWriter({ slabBytesInitial: 256 });
  writer.write(reply, protocol);
  return writer.take();
}

/**
 * A request as a multibulk: `*argc\r\n` then `$len\r\narg\r\n` per argument.
 *
 * @example
 * encodeCommand(['SET', 'k', 'v']).toString('latin1'); // '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n'
 */
export function encodeCommand(argv: readonly string[]): Buffer {
  let bytes = headerBytesMax;
  for (const arg of argv) bytes += headerBytesMax + arg.length + 2;
  const writer = new ReplyWriter({ slabBytesInitial: bytes });
  writer.writeCommand(argv);
  const encoded = writer.take();
  assert(encoded.length <= bytes, 'encodeCommand reserved enough');
  return encoded;
}
