/**
 * Incremental parser of Redis requests: RESP multibulk (`*N\r\n$len\r\n...`)
 * and inline commands (`SET k "v"\r\n`), with Redis's limits and error texts
 * (networking.c, processMultibulkBuffer / processInlineBuffer).
 *
 * Differences from Redis, on purpose:
 * - Line-length limits are decided by where the terminator is, not by how the
 *   bytes happened to be split into reads, so the outcome never depends on
 *   chunking. Redis (16 KiB reads) can answer `invalid multibulk length`
 *   instead of `too big mbulk count string` for a header just over 64 KiB.
 * - The multibulk count is capped by `argsMax` (default 1,048,576, the cap
 *   of Redis before 7.0) rather than INT_MAX.
 * - `queryBufferLimit`: Redis closes such a client without a reply.
 */

import { latin1Slice } from '../kv/latin1.js';
import { assert } from '../raft/assert.js';
import { splitInlineArgs } from './inline.js';

/** One request: its arguments as binary strings, the command name first. */
export type Command = string[];

export type ProtocolErrorCode =
  | 'invalidMultibulkLength'
  | 'invalidBulkLength'
  | 'expectedDollar'
  | 'unbalancedQuotes'
  | 'tooBigInlineRequest'
  | 'tooBigMultibulkCount'
  | 'tooBigBulkCount'
  | 'queryBufferLimit';

/** The client broke the protocol; the parser is dead and the connection should close. */
export interface ProtocolError {
  readonly kind: 'protocolError';
  readonly code: ProtocolErrorCode;
  /** Redis's text, e.g. `Protocol error: invalid bulk length`. */
  readonly message: string;
  /** Whether Redis sends `-ERR <message>` before closing (it does not for `queryBufferLimit`). */
  readonly replyBeforeClose: boolean;
}

export interface RequestParserOptions {
  /** A bulk argument's length above this is `invalid bulk length` (Redis `proto-max-bulk-len`). */
  readonly bulkBytesMax?: number;
  /** A multibulk count above this is `invalid multibulk length`. */
  readonly argsMax?: number;
  /** An inline line or a `*`/`$` header line longer than this is an error (Redis PROTO_INLINE_MAX_SIZE). */
  readonly inlineBytesMax?: number;
  /** Unparsed bytes plus the current command's arguments (Redis `client-query-buffer-limit`). */
  readonly queryBufferBytesMax?: number;
  /**
   * Bulk payloads at least this long that are not yet complete are collected
   * into a buffer of their exact size, so each byte is copied once however
   * the payload is chunked (Redis PROTO_MBULK_BIG_ARG).
   */
  readonly bigBulkBytesMin?: number;
}

export const requestParserDefaults = {
  bulkBytesMax: 512 * 1024 * 1024,
  argsMax: 1024 * 1024,
  inlineBytesMax: 64 * 1024,
  queryBufferBytesMax: 1024 * 1024 * 1024,
  bigBulkBytesMin: 32 * 1024,
} as const satisfies Required<RequestParserOptions>;

/** Codes whose message is fixed text ('expectedDollar' names the offending byte). */
type FixedMessageCode = Exclude<ProtocolErrorCode, 'expectedDollar'>;

const errorMessages: Readonly<Record<FixedMessageCode, string>> = {
  invalidMultibulkLength: 'Protocol error: invalid multibulk length',
  invalidBulkLength: 'Protocol error: invalid bulk length',
  unbalancedQuotes: 'Protocol error: unbalanced quotes in request',
  tooBigInlineRequest: 'Protocol error: too big inline request',
  tooBigMultibulkCount: 'Protocol error: too big mbulk count string',
  tooBigBulkCount: 'Protocol error: too big bulk count string',
  queryBufferLimit: 'closing client that reached max query buffer length',
};

const CR = 0x0d;
const LF = 0x0a;
const STAR = 0x2a;
const DOLLAR = 0x24;
const MINUS = 0x2d;
const ZERO = 0x30;
const ONE = 0x31;
const NINE = 0x39;

/** Header lines are short ("$3", "*16"): scanning them in JS beats a call into C++. */
const shortScanBytes = 16;
/** A leftover buffer kept for reuse after the parser drained it; larger ones are dropped. */
const spareBytesMax = 64 * 1024;
/** Longest decimal string2ll accepts (LONG_STR_SIZE - 1). */
const decimalCharsMax = 20;
const int64Max = 2n ** 63n - 1n;
const int64Min = -(2n ** 63n);

const emptyBuffer = Buffer.alloc(0);

/**
 * Feed it bytes as they arrive, then pull commands until `next()` returns null.
 *
 * @example
 * const parser = new RequestParser();
 * parser.feed(chunk);
 * for (let r = parser.next(); r !== null; r = parser.next()) {
 *   if (!Array.isArray(r)) { reply(`-ERR ${r.message}`); close(); break; }
 *   execute(r);
 * }
 */
/**
 * An argv of `count` placeholders, exactly sized and packed (array literals)
 * for the short commands most clients send; longer ones grow by push. A
 * `[]` grown by its first push holds 17 slots, 112 bytes more than a SET's
 * argv needs: with this the leader allocated 1,776-1,786 bytes per
 * pipelined SET, without it 1,844-1,885 (--trace-gc-nvp).
 */
function argvOfLength(count: number): string[] {
  switch (count) {
    case 1:
      return [''];
    case 2:
      return ['', ''];
    case 3:
      return ['', '', ''];
    case 4:
      return ['', '', '', ''];
    case 5:
      return ['', '', '', '', ''];
    default:
      return [];
  }
}

export class RequestParser {
  private readonly bulkBytesMax: number;
  private readonly argsMax: number;
  private readonly inlineBytesMax: number;
  private readonly queryBufferBytesMax: number;
  private readonly bigBulkBytesMin: number;

  /** Unparsed bytes are `data[pos, data.length)`; `data` is a caller's chunk or a view of `store`. */
  private data: Buffer = emptyBuffer;
  private pos = 0;
  /** Our own accumulation buffer, when `data` is a view of it (writable past `data.length`). */
  private store: Buffer | null = null;
  private dataInStore = false;
  /** Bytes from `pos` on already searched without finding the line terminator. */
  private scannedBytes = 0;

  /** Bulk arguments still expected by the current multibulk command; 0 between commands. */
  private argsLeft = 0;
  private argv: Command = [];
  /** Arguments of the current command already in `argv` (which may be made at its full size). */
  private argvFilled = 0;
  private argvBytes = 0;
  /** Length of the next bulk payload once its `$` header is read, else -1. */
  private bulkBytes = -1;

  /** A big payload being collected; invariant: while not full, `pos === data.length`. */
  private big: Buffer | null = null;
  private bigFilled = 0;
  /** Bytes of the two after `big`'s payload (the CRLF, skipped unchecked as Redis does) seen. */
  private bigTrailerBytes = 0;

  private failure: ProtocolError | null = null;

  constructor(options: RequestParserOptions = {}) {
    this.bulkBytesMax = options.bulkBytesMax ?? requestParserDefaults.bulkBytesMax;
    this.argsMax = options.argsMax ?? requestParserDefaults.argsMax;
    this.inlineBytesMax = options.inlineBytesMax ?? requestParserDefaults.inlineBytesMax;
    this.queryBufferBytesMax =
      options.queryBufferBytesMax ?? requestParserDefaults.queryBufferBytesMax;
    this.bigBulkBytesMin = options.bigBulkBytesMin ?? requestParserDefaults.bigBulkBytesMin;
    assert(this.bulkBytesMax >= 0 && this.argsMax >= 1, 'parser limits must be positive');
    assert(this.inlineBytesMax >= 1 && this.bigBulkBytesMin >= 1, 'parser sizes must be positive');
  }

  /** The protocol error that killed the parser, if any. */
  get error(): ProtocolError | null {
    return this.failure;
  }

  /** Bytes held for the command in progress and the ones after it: what the query buffer limit counts. */
  get bufferedBytes(): number {
    return this.data.length - this.pos + this.argvBytes + this.bigFilled;
  }

  /**
   * Adds bytes received from the client. The parser may keep a reference to
   * `chunk` until it has parsed it: the caller must not modify it afterwards.
   */
  feed(chunk: Buffer): void {
    if (this.failure !== null || chunk.length === 0) return;
    let offset = 0;
    if (this.big !== null) offset = this.fillBig(chunk);
    if (offset < chunk.length) this.append(offset === 0 ? chunk : chunk.subarray(offset));
    if (this.bufferedBytes > this.queryBufferBytesMax) this.fail('queryBufferLimit');
  }

  /**
   * The next complete command, null when more bytes are needed, or the
   * protocol error (returned again on every later call).
   */
  next(): Command | ProtocolError | null {
    while (this.failure === null) {
      if (this.argsLeft > 0) {
        if (!this.readBulks()) return this.failure;
        return this.takeCommand();
      }
      if (this.pos === this.data.length) {
        this.release();
        return null;
      }
      if (this.data[this.pos] === STAR) {
        if (!this.readMultibulkCount()) return this.failure;
      } else {
        const argv = this.readInline();
        if (argv === null) return this.failure;
        if (argv.length > 0) return argv;
        // An empty line is ignored, as Redis does.
      }
    }
    return this.failure;
  }

  private takeCommand(): Command {
    const argv = this.argv;
    assert(
      argv.length > 0 && this.argsLeft === 0 && this.argvFilled === argv.length,
      'a command is complete',
    );
    this.argv = [];
    this.argvFilled = 0;
    this.argvBytes = 0;
    return argv;
  }

  /** Reads `*N\r\n`; false when more bytes are needed or on error. */
  private readMultibulkCount(): boolean {
    const lineEnd = this.findHeaderEnd('tooBigMultibulkCount');
    if (lineEnd < 0) return false;
    const count = parseDecimal(this.data, this.pos + 1, lineEnd);
    if (Number.isNaN(count) || count > this.argsMax) {
      this.fail('invalidMultibulkLength');
      return false;
    }
    this.consume(lineEnd + 2);
    // Redis ignores a count <= 0 as an empty command.
    if (count > 0) {
      this.argsLeft = count;
      this.argv = argvOfLength(count);
    }
    return true;
  }

  /** Reads the bulk arguments of the current command; true once all are in. */
  private readBulks(): boolean {
    while (this.argsLeft > 0) {
      if (this.big !== null) {
        if (this.bigFilled < this.big.length || this.bigTrailerBytes < 2) return false;
        this.finishBig();
      } else if (this.bulkBytes < 0) {
        if (!this.readBulkLength()) return false;
      } else if (!this.readBulkPayload()) {
        return false;
      }
    }
    return true;
  }

  /** Reads `$len\r\n`; false when more bytes are needed or on error. */
  private readBulkLength(): boolean {
    const lineEnd = this.findHeaderEnd('tooBigBulkCount');
    if (lineEnd < 0) return false;
    const first = this.data[this.pos] ?? 0;
    if (first !== DOLLAR) {
      this.failExpectedDollar(first);
      return false;
    }
    const length = parseDecimal(this.data, this.pos + 1, lineEnd);
    if (Number.isNaN(length) || length < 0 || length > this.bulkBytesMax) {
      this.fail('invalidBulkLength');
      return false;
    }
    this.consume(lineEnd + 2);
    this.bulkBytes = length;
    return true;
  }

  /** Takes the payload and its two trailing bytes when all are buffered. */
  private readBulkPayload(): boolean {
    const available = this.data.length - this.pos;
    const length = this.bulkBytes;
    if (available < length + 2) {
      if (length >= this.bigBulkBytesMin && available < length) this.startBig();
      return false;
    }
    this.pushArg(latin1Slice(this.data, this.pos, this.pos + length));
    // Redis skips the two bytes after a payload without checking they are CRLF.
    this.consume(this.pos + length + 2);
    return true;
  }

  private pushArg(arg: string): void {
    const argv = this.argv;
    if (this.argvFilled < argv.length) argv[this.argvFilled] = arg;
    else argv.push(arg);
    this.argvFilled++;
    this.argvBytes += arg.length;
    this.argsLeft--;
    this.bulkBytes = -1;
  }

  /** Moves the buffered start of a big payload into a buffer of its exact size. */
  private startBig(): void {
    const available = this.data.length - this.pos;
    assert(available < this.bulkBytes, 'a big payload starts incomplete');
    const big = Buffer.allocUnsafeSlow(this.bulkBytes);
    this.data.copy(big, 0, this.pos);
    this.big = big;
    this.bigFilled = available;
    this.bigTrailerBytes = 0;
    this.consume(this.data.length);
  }

  /** Copies the start of `chunk` into the big payload and its trailer; returns bytes used. */
  private fillBig(chunk: Buffer): number {
    const big = this.big;
    assert(big !== null, 'a big payload is being collected');
    const payloadBytes = Math.min(big.length - this.bigFilled, chunk.length);
    if (payloadBytes > 0) {
      assert(this.pos === this.data.length, 'nothing is buffered ahead of a big payload');
      chunk.copy(big, this.bigFilled, 0, payloadBytes);
      this.bigFilled += payloadBytes;
    }
    const trailerBytes = Math.min(2 - this.bigTrailerBytes, chunk.length - payloadBytes);
    this.bigTrailerBytes += trailerBytes;
    return payloadBytes + trailerBytes;
  }

  private finishBig(): void {
    const big = this.big;
    assert(big !== null && this.bigFilled === big.length, 'the big payload is complete');
    this.big = null;
    this.bigFilled = 0;
    this.bigTrailerBytes = 0;
    this.pushArg(latin1Slice(big, 0, big.length));
  }

  /**
   * Reads one inline line: its arguments ([] for a blank line), or null when
   * more bytes are needed or on error.
   */
  private readInline(): string[] | null {
    const data = this.data;
    const newline = data.indexOf(LF, this.pos + this.scannedBytes);
    if (newline < 0) {
      if (data.length - this.pos > this.inlineBytesMax) this.fail('tooBigInlineRequest');
      else this.scannedBytes = data.length - this.pos;
      return null;
    }
    if (newline - this.pos > this.inlineBytesMax) {
      this.fail('tooBigInlineRequest');
      return null;
    }
    const lineEnd = newline > this.pos && data[newline - 1] === CR ? newline - 1 : newline;
    const argv = splitInlineArgs(latin1Slice(data, this.pos, lineEnd));
    this.consume(newline + 1);
    if (argv === null) this.fail('unbalancedQuotes');
    return argv;
  }

  /**
   * The index of the '\r' ending the header line at `pos`, or -1 when the
   * line is incomplete or too long (then the parser has failed with
   * `tooBigCode`). Like Redis, any byte after the '\r' completes the line.
   */
  private findHeaderEnd(tooBigCode: FixedMessageCode): number {
    const data = this.data;
    const from = this.pos + this.scannedBytes;
    let at = -1;
    const shortEnd = Math.min(from + shortScanBytes, data.length);
    for (let i = from; i < shortEnd; i++) {
      if (data[i] === CR) {
        at = i;
        break;
      }
    }
    if (at < 0 && shortEnd < data.length) at = data.indexOf(CR, shortEnd);
    if (at < 0) {
      if (data.length - this.pos > this.inlineBytesMax) this.fail(tooBigCode);
      else this.scannedBytes = data.length - this.pos;
      return -1;
    }
    if (at - this.pos > this.inlineBytesMax) {
      this.fail(tooBigCode);
      return -1;
    }
    if (at + 1 >= data.length) {
      this.scannedBytes = at - this.pos;
      return -1;
    }
    return at;
  }

  private consume(newPos: number): void {
    assert(newPos >= this.pos && newPos <= this.data.length, 'consume stays within the data');
    this.pos = newPos;
    this.scannedBytes = 0;
  }

  /** Adds bytes after the unparsed ones, copying only when some are left over. */
  private append(bytes: Buffer): void {
    const pendingBytes = this.data.length - this.pos;
    if (pendingBytes === 0) {
      this.keepSpare();
      this.data = bytes;
      this.pos = 0;
      this.dataInStore = false;
      return;
    }
    const store = this.store;
    if (this.dataInStore && store !== null && store.length - this.data.length >= bytes.length) {
      bytes.copy(store, this.data.length);
      this.data = store.subarray(0, this.data.length + bytes.length);
      return;
    }
    this.appendCompacting(pendingBytes, bytes);
  }

  /**
   * Moves the unparsed bytes to the front of a store big enough for both.
   * The store is twice what is needed, so over a trickle of small chunks
   * each byte is copied a constant number of times on average.
   */
  private appendCompacting(pendingBytes: number, bytes: Buffer): void {
    const requiredBytes = pendingBytes + bytes.length;
    let store = this.store;
    // Compacting in place only when at least half the store comes free keeps
    // the copying amortised; otherwise a store twice the size is needed anyway.
    if (store === null || store.length < requiredBytes * 2) {
      store = Buffer.allocUnsafe(Math.max(requiredBytes * 2, 4096));
    }
    if (this.dataInStore && store === this.store) {
      store.copyWithin(0, this.pos, this.data.length);
    } else {
      this.data.copy(store, 0, this.pos);
    }
    bytes.copy(store, pendingBytes);
    this.store = store;
    this.data = store.subarray(0, requiredBytes);
    this.dataInStore = true;
    this.pos = 0;
  }

  /** Keeps a drained store for the next split command, unless it grew large. */
  private keepSpare(): void {
    if (this.store !== null && this.store.length > spareBytesMax) this.store = null;
    this.dataInStore = false;
  }

  /** Drops the reference to a caller's fully parsed chunk. */
  private release(): void {
    if (this.data !== emptyBuffer) {
      this.keepSpare();
      this.data = emptyBuffer;
      this.pos = 0;
      this.scannedBytes = 0;
    }
  }

  private fail(code: FixedMessageCode): void {
    this.setFailure(code, errorMessages[code]);
  }

  private failExpectedDollar(byte: number): void {
    // Redis maps CR and LF in error texts to spaces so the reply stays one line.
    const shown = byte === CR || byte === LF ? ' ' : String.fromCharCode(byte);
    this.setFailure('expectedDollar', `Protocol error: expected '$', got '${shown}'`);
  }

  private setFailure(code: ProtocolErrorCode, message: string): void {
    assert(this.failure === null, 'the parser fails once');
    this.failure = {
      kind: 'protocolError',
      code,
      message,
      replyBeforeClose: code !== 'queryBufferLimit',
    };
    // A dead parser holds no memory.
    this.data = emptyBuffer;
    this.pos = 0;
    this.store = null;
    this.dataInStore = false;
    this.big = null;
    this.bigFilled = 0;
    this.argv = [];
    this.argvFilled = 0;
    this.argvBytes = 0;
  }
}

/**
 * Parses `data[start, end)` as Redis's string2ll does: an optional '-', no
 * '+', no leading zeros, no spaces, within the 64-bit range. NaN if invalid.
 * Values beyond 2^53 are the nearest double, which is fine for comparing with limits.
 */
export function parseDecimal(data: Uint8Array, start: number, end: number): number {
  const length = end - start;
  if (length <= 0 || length > decimalCharsMax) return Number.NaN;
  let i = start;
  const negative = data[i] === MINUS;
  if (negative) i++;
  const first = data[i] ?? 0;
  if (first === ZERO) return length === 1 ? 0 : Number.NaN;
  if (first < ONE || first > NINE) return Number.NaN;
  let value = 0;
  for (; i < end; i++) {
    const digit = (data[i] ?? 0) - ZERO;
    if (digit < 0 || digit > 9) return Number.NaN;
    value = value * 10 + digit;
  }
  // Beyond 15 digits the sum above may round differently from the exact value.
  if (length > 15) return exactInt64(data, start, end);
  return negative ? -value : value;
}

/** The nearest double to a validated decimal, or NaN outside the int64 range. */
function exactInt64(data: Uint8Array, start: number, end: number): number {
  const value = BigInt(Buffer.from(data.buffer, data.byteOffset + start, end - start).toString());
  return value >= int64Min && value <= int64Max ? Number(value) : Number.NaN;
}
