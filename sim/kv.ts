/**
 * The replicated key-value state machine the simulator drives through the
 * log: deterministic, so replicas that apply the same entries hold
 * byte-identical state. Writes travel as compact log entries; reads never
 * touch the log (they go through readIndex).
 */
import { assert } from '../src/raft/assert.js';
import type { KvInput, KvOutput } from './checker/history.js';
import { digestBytes } from './hash.js';

export type KvWrite = Exclude<KvInput, { readonly op: 'get' }>;

/** A write as carried in a log entry: the client's op id travels with it, for traces. */
export interface KvCommand {
  readonly opId: number;
  readonly input: KvWrite;
}

/** Limits that keep a corrupt or hostile entry from allocating without bound. */
const stringBytesMax = 1 << 20;
const keysMax = 1 << 16;

const opPut = 1;
const opCas = 2;
const opCasAbsent = 3;
const opAppend = 4;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeCommand(command: KvCommand): Uint8Array {
  const w = new Writer();
  const input = command.input;
  switch (input.op) {
    case 'put':
      w.byte(opPut);
      break;
    case 'cas':
      w.byte(input.expected === null ? opCasAbsent : opCas);
      break;
    case 'append':
      w.byte(opAppend);
      break;
  }
  w.varint(command.opId);
  w.string(input.key);
  if (input.op === 'cas' && input.expected !== null) w.string(input.expected);
  w.string(input.value);
  const bytes = w.finish();
  assert(bytes.length > 0, 'an encoded command is never empty (empty data is the no-op)');
  return bytes;
}

export function decodeCommand(bytes: Uint8Array): KvCommand {
  const r = new Reader(bytes);
  const code = r.byte();
  const opId = r.varint();
  const key = r.string();
  let input: KvWrite;
  switch (code) {
    case opPut:
      input = { op: 'put', key, value: r.string() };
      break;
    case opCas: {
      const expected = r.string();
      input = { op: 'cas', key, expected, value: r.string() };
      break;
    }
    case opCasAbsent:
      input = { op: 'cas', key, expected: null, value: r.string() };
      break;
    case opAppend:
      input = { op: 'append', key, value: r.string() };
      break;
    default:
      throw new RangeError(`kv: unknown command code ${code}`);
  }
  r.end();
  return { opId, input };
}

export class Kv {
  private readonly map = new Map<string, string>();

  get size(): number {
    return this.map.size;
  }

  get(key: string): string | null {
    return this.map.get(key) ?? null;
  }

  apply(input: KvWrite): KvOutput {
    switch (input.op) {
      case 'put':
        this.map.set(input.key, input.value);
        return { ok: true };
      case 'cas': {
        const current = this.map.get(input.key) ?? null;
        if (current !== input.expected) return { ok: false };
        this.map.set(input.key, input.value);
        return { ok: true };
      }
      case 'append':
        this.map.set(input.key, (this.map.get(input.key) ?? '') + input.value);
        return { ok: true };
    }
  }

  /** The whole map, keys sorted, so equal states give equal bytes. */
  serialize(): Uint8Array {
    const keys = [...this.map.keys()].sort();
    const w = new Writer();
    w.varint(keys.length);
    for (const key of keys) {
      w.string(key);
      w.string(this.map.get(key) ?? '');
    }
    return w.finish();
  }

  static restore(bytes: Uint8Array): Kv {
    const kv = new Kv();
    const r = new Reader(bytes);
    const count = r.varint();
    if (count > keysMax) throw new RangeError(`kv snapshot: ${count} keys exceeds ${keysMax}`);
    let previous: string | null = null;
    for (let i = 0; i < count; i++) {
      const key = r.string();
      // Paired check: serialize() wrote keys sorted and unique.
      if (previous !== null && !(previous < key)) {
        throw new RangeError('kv snapshot: keys out of order');
      }
      kv.map.set(key, r.string());
      previous = key;
    }
    r.end();
    return kv;
  }

  digest(): number {
    return digestBytes(this.serialize());
  }
}

class Writer {
  private buffer = new Uint8Array(64);
  private length = 0;

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < this.length + bytes) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buffer[this.length++] = b;
  }

  varint(n: number): void {
    if (!(Number.isSafeInteger(n) && n >= 0)) {
      assert(false, `varint must be a non-negative safe integer: ${n}`);
    }
    let x = n;
    this.reserve(8);
    while (x >= 0x80) {
      this.buffer[this.length++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    this.buffer[this.length++] = x;
  }

  string(s: string): void {
    const bytes = encoder.encode(s);
    if (bytes.length > stringBytesMax) {
      assert(false, `string of ${bytes.length} bytes exceeds ${stringBytesMax}`);
    }
    this.varint(bytes.length);
    this.reserve(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
  }

  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

class Reader {
  private offset = 0;

  constructor(private readonly bytes: Uint8Array) {}

  byte(): number {
    const b = this.bytes[this.offset];
    if (b === undefined) throw new RangeError('kv decode: truncated');
    this.offset++;
    return b;
  }

  varint(): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
    }
    throw new RangeError('kv decode: varint too long');
  }

  string(): string {
    const length = this.varint();
    if (length > stringBytesMax || this.offset + length > this.bytes.length) {
      throw new RangeError(`kv decode: string of ${length} bytes overruns the buffer`);
    }
    const s = decoder.decode(this.bytes.subarray(this.offset, this.offset + length));
    this.offset += length;
    return s;
  }

  end(): void {
    if (this.offset !== this.bytes.length) {
      throw new RangeError(`kv decode: ${this.bytes.length - this.offset} trailing bytes`);
    }
  }
}
