/**
 * What a follower sends the leader over the peer link when a client's write
 * arrives at the follower, and the leader's answer: a compact binary
 * encoding of the request (db, argv lists, watched revisions) and of the
 * protocol-neutral Reply. Binary strings travel as latin1 bytes.
 *
 * Decoding bytes from a peer never asserts: malformed input throws
 * `ForwardDecodeError`, and the transport answers with an error.
 */

import type { WatchedKey } from '../kv/index.js';
import type { Reply } from '../kv/reply.js';
import { decodeMemberEntry, encodeMemberEntry, type MemberEntry } from './member-registry.js';

export type ForwardRequest =
  | { readonly kind: 'write'; readonly db: number; readonly argv: readonly string[] }
  | {
      readonly kind: 'exec';
      readonly db: number;
      readonly commands: readonly (readonly string[])[];
      readonly watched: readonly WatchedKey[];
    }
  | { readonly kind: 'member'; readonly entry: MemberEntry }
  /** The leader asks a follower how its disk and event loop are doing (degradation.ts). */
  | { readonly kind: 'health' };

export class ForwardDecodeError extends Error {
  override readonly name = 'ForwardDecodeError';
}

const formatVersion = 1;
const kindWrite = 1;
const kindExec = 2;
const kindMember = 3;
const kindHealth = 4;
/** Bounds on what a peer may make us allocate. */
const listLengthMax = 1 << 20;
const depthMax = 32;

const replyKinds = [
  'simple',
  'error',
  'integer',
  'bulk',
  'null',
  'nullArray',
  'array',
  'map',
  'set',
  'double',
  'boolean',
  'verbatim',
  'push',
] as const satisfies readonly Reply['kind'][];

class Writer {
  private buffer = Buffer.allocUnsafe(256);
  private at = 0;

  private reserve(bytes: number): void {
    if (this.at + bytes <= this.buffer.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.at + bytes));
    this.buffer.copy(next, 0, 0, this.at);
    this.buffer = next;
  }

  u8(value: number): void {
    this.reserve(1);
    this.buffer[this.at++] = value;
  }

  u32(value: number): void {
    this.reserve(4);
    this.buffer.writeUInt32LE(value, this.at);
    this.at += 4;
  }

  f64(value: number): void {
    this.reserve(8);
    this.buffer.writeDoubleLE(value, this.at);
    this.at += 8;
  }

  bytes(s: string): void {
    this.u32(s.length);
    this.reserve(s.length);
    this.at += this.buffer.write(s, this.at, 'latin1');
  }

  finish(): Uint8Array {
    return this.buffer.subarray(0, this.at);
  }
}

class Reader {
  private at = 0;
  constructor(private readonly buffer: Buffer) {}

  private need(bytes: number): void {
    if (this.at + bytes > this.buffer.length) {
      throw new ForwardDecodeError(`truncated forwarded message at byte ${this.at}`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buffer[this.at++] as number;
  }

  u32(): number {
    this.need(4);
    const value = this.buffer.readUInt32LE(this.at);
    this.at += 4;
    return value;
  }

  f64(): number {
    this.need(8);
    const value = this.buffer.readDoubleLE(this.at);
    this.at += 8;
    return value;
  }

  count(): number {
    const n = this.u32();
    if (n > listLengthMax)
      throw new ForwardDecodeError(`list of ${n} items exceeds ${listLengthMax}`);
    return n;
  }

  bytes(): string {
    const length = this.u32();
    this.need(length);
    const s = this.buffer.toString('latin1', this.at, this.at + length);
    this.at += length;
    return s;
  }

  end(): void {
    if (this.at !== this.buffer.length) {
      throw new ForwardDecodeError(
        `${this.buffer.length - this.at} trailing bytes in forwarded message`,
      );
    }
  }
}

function writeArgv(w: Writer, argv: readonly string[]): void {
  w.u32(argv.length);
  for (const a of argv) w.bytes(a);
}

function readArgv(r: Reader): string[] {
  const n = r.count();
  const argv: string[] = [];
  for (let i = 0; i < n; i++) argv.push(r.bytes());
  return argv;
}

export function encodeForwardRequest(request: ForwardRequest): Uint8Array {
  const w = new Writer();
  w.u8(formatVersion);
  if (request.kind === 'health') {
    w.u8(kindHealth);
    w.u8(0);
    return w.finish();
  }
  if (request.kind === 'member') {
    w.u8(kindMember);
    w.u8(0);
    w.bytes(Buffer.from(encodeMemberEntry(request.entry)).toString('latin1'));
    return w.finish();
  }
  w.u8(request.kind === 'write' ? kindWrite : kindExec);
  w.u8(request.db);
  if (request.kind === 'write') {
    writeArgv(w, request.argv);
  } else {
    w.u32(request.commands.length);
    for (const argv of request.commands) writeArgv(w, argv);
    w.u32(request.watched.length);
    for (const watch of request.watched) {
      w.u8(watch.db);
      w.bytes(watch.key);
      w.f64(watch.revision);
    }
  }
  return w.finish();
}

export function decodeForwardRequest(bytes: Uint8Array): ForwardRequest {
  const r = new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const version = r.u8();
  if (version !== formatVersion) {
    throw new ForwardDecodeError(
      `forwarded request format ${version}; this node speaks ${formatVersion}`,
    );
  }
  const kind = r.u8();
  const db = r.u8();
  let request: ForwardRequest;
  if (kind === kindWrite) {
    request = { kind: 'write', db, argv: readArgv(r) };
  } else if (kind === kindExec) {
    const n = r.count();
    const commands: string[][] = [];
    for (let i = 0; i < n; i++) commands.push(readArgv(r));
    const m = r.count();
    const watched: WatchedKey[] = [];
    for (let i = 0; i < m; i++) watched.push({ db: r.u8(), key: r.bytes(), revision: r.f64() });
    request = { kind: 'exec', db, commands, watched };
  } else if (kind === kindMember) {
    try {
      request = { kind: 'member', entry: decodeMemberEntry(Buffer.from(r.bytes(), 'latin1')) };
    } catch (failure) {
      throw new ForwardDecodeError(`forwarded member entry: ${(failure as Error).message}`);
    }
  } else if (kind === kindHealth) {
    request = { kind: 'health' };
  } else {
    throw new ForwardDecodeError(`unknown forwarded request kind ${kind}`);
  }
  r.end();
  return request;
}

function writeReply(w: Writer, reply: Reply): void {
  w.u8(replyKinds.indexOf(reply.kind));
  switch (reply.kind) {
    case 'simple':
    case 'bulk':
      w.bytes(reply.value);
      return;
    case 'error':
      w.bytes(reply.message);
      return;
    case 'integer':
      // Decimal text keeps bigints exact.
      w.bytes(String(reply.value));
      return;
    case 'null':
    case 'nullArray':
      return;
    case 'array':
    case 'set':
    case 'push':
      w.u32(reply.items.length);
      for (const item of reply.items) writeReply(w, item);
      return;
    case 'map':
      w.u32(reply.entries.length);
      for (const [k, v] of reply.entries) {
        writeReply(w, k);
        writeReply(w, v);
      }
      return;
    case 'double':
      w.f64(reply.value);
      return;
    case 'boolean':
      w.u8(reply.value ? 1 : 0);
      return;
    case 'verbatim':
      w.bytes(reply.format);
      w.bytes(reply.value);
      return;
  }
}

function readReply(r: Reader, depth: number): Reply {
  if (depth > depthMax) throw new ForwardDecodeError(`reply nested deeper than ${depthMax}`);
  const kind = replyKinds[r.u8()];
  const items = (): Reply[] => {
    const n = r.count();
    const list: Reply[] = [];
    for (let i = 0; i < n; i++) list.push(readReply(r, depth + 1));
    return list;
  };
  switch (kind) {
    case 'simple':
    case 'bulk':
      return { kind, value: r.bytes() };
    case 'error':
      return { kind, message: r.bytes() };
    case 'integer': {
      const text = r.bytes();
      if (!/^-?\d{1,20}$/.test(text)) throw new ForwardDecodeError(`bad integer '${text}'`);
      const value = BigInt(text);
      const safe =
        value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER);
      return { kind, value: safe ? Number(value) : value };
    }
    case 'null':
    case 'nullArray':
      return { kind };
    case 'array':
    case 'set':
    case 'push':
      return { kind, items: items() };
    case 'map': {
      const n = r.count();
      const entries: [Reply, Reply][] = [];
      for (let i = 0; i < n; i++) entries.push([readReply(r, depth + 1), readReply(r, depth + 1)]);
      return { kind, entries };
    }
    case 'double':
      return { kind, value: r.f64() };
    case 'boolean':
      return { kind, value: r.u8() === 1 };
    case 'verbatim':
      return { kind, format: r.bytes(), value: r.bytes() };
    default:
      throw new ForwardDecodeError('unknown reply kind');
  }
}

export function encodeReplyBinary(reply: Reply): Uint8Array {
  const w = new Writer();
  w.u8(formatVersion);
  writeReply(w, reply);
  return w.finish();
}

export function decodeReplyBinary(bytes: Uint8Array): Reply {
  const r = new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const version = r.u8();
  if (version !== formatVersion) {
    throw new ForwardDecodeError(
      `forwarded reply format ${version}; this node speaks ${formatVersion}`,
    );
  }
  const reply = readReply(r, 0);
  r.end();
  return reply;
}
