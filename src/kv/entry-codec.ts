/**
 * Log entry format of the kv state machine. Every entry carries the leader's
 * clock and a random seed so that apply is deterministic on every node.
 *
 * Layout (little-endian): u8 format version (1), u8 tag, f64 nowMs, u32 seed,
 * then per tag:
 * - `command`: u8 db, argv (u32 count, strings)
 * - `exec`: u8 db, u32 watched count × (u8 db, key, f64 revision),
 *   u32 command count × argv
 * - `expire`: u32 count × (u8 db, key)
 */
import { assert } from '../raft/assert.js';
import { ByteReader, ByteSpan, ByteWriter, CorruptDataError } from './bytes.js';
import { latin1Slice } from './latin1.js';

export const entryFormatVersion = 1;
export const dbCount = 16;
/** Limits on what one entry may hold; a decoded entry beyond them is corrupt. */
export const argvCountMax = 16 * 1024 * 1024;
export const execCommandsMax = 1024 * 1024;

export interface WatchedKey {
  readonly db: number;
  readonly key: string;
  readonly revision: number;
}

export interface DbKey {
  readonly db: number;
  readonly key: string;
}

export type Entry =
  | {
      readonly tag: 'command';
      readonly nowMs: number;
      readonly seed: number;
      readonly db: number;
      readonly argv: readonly string[];
    }
  | {
      readonly tag: 'exec';
      readonly nowMs: number;
      readonly seed: number;
      readonly db: number;
      readonly watched: readonly WatchedKey[];
      readonly commands: readonly (readonly string[])[];
    }
  | {
      readonly tag: 'expire';
      readonly nowMs: number;
      readonly seed: number;
      readonly keys: readonly DbKey[];
    };

const notBinary = /[\u0100-\uffff]/;

const tagCodes = { command: 1, exec: 2, expire: 3 } as const;

function checkDb(db: number, what: string): void {
  if (!(Number.isInteger(db) && db >= 0 && db < dbCount)) {
    throw new CorruptDataError(`${what}: db ${db} out of range 0..${dbCount - 1}`);
  }
}

function writeArgv(w: ByteWriter, argv: readonly string[]): void {
  assert(argv.length > 0 && argv.length <= argvCountMax, 'argv count within limits');
  w.u32(argv.length);
  for (const a of argv) {
    // Paired check: a char above 0xff would be silently truncated by latin1.
    assert(!notBinary.test(a), 'argv holds binary strings (one byte per char)');
    w.str(a);
  }
}

function readArgv(r: ByteReader): string[] {
  const n = r.u32();
  // Each string takes at least its 4-byte length: bounds the allocation below.
  if (n === 0 || n > argvCountMax || n * 4 > r.remaining) {
    throw new CorruptDataError(`kv entry: argv count ${n}`);
  }
  const argv = new Array<string>(n);
  for (let i = 0; i < n; i++) argv[i] = r.str();
  return argv;
}

/** Fixed part: version, tag, nowMs, seed. */
const headerBytes = 1 + 1 + 8 + 4;

function argvBytes(argv: readonly string[]): number {
  let bytes = 4;
  for (const a of argv) bytes += 4 + a.length;
  return bytes;
}

/** The exact size `encodeEntry` writes, so it allocates once and copies nothing. */
function encodedBytes(entry: Entry): number {
  switch (entry.tag) {
    case 'command':
      return headerBytes + 1 + argvBytes(entry.argv);
    case 'exec': {
      let bytes = headerBytes + 1 + 4 + 4;
      for (const k of entry.watched) bytes += 1 + 4 + k.key.length + 8;
      for (const argv of entry.commands) bytes += argvBytes(argv);
      return bytes;
    }
    case 'expire': {
      let bytes = headerBytes + 4;
      for (const k of entry.keys) bytes += 1 + 4 + k.key.length;
      return bytes;
    }
  }
}

export function encodeEntry(entry: Entry): Uint8Array {
  assert(Number.isFinite(entry.nowMs), 'entry nowMs is finite');
  assert(Number.isInteger(entry.seed) && entry.seed >= 0 && entry.seed <= 0xffffffff, 'seed u32');
  const w = new ByteWriter(encodedBytes(entry));
  w.u8(entryFormatVersion);
  w.u8(tagCodes[entry.tag]);
  w.f64(entry.nowMs);
  w.u32(entry.seed);
  switch (entry.tag) {
    case 'command':
      assert(entry.db >= 0 && entry.db < dbCount, 'db in range');
      w.u8(entry.db);
      writeArgv(w, entry.argv);
      break;
    case 'exec':
      assert(entry.db >= 0 && entry.db < dbCount, 'db in range');
      assert(entry.commands.length <= execCommandsMax, 'exec size within limits');
      w.u8(entry.db);
      w.u32(entry.watched.length);
      for (const k of entry.watched) {
        w.u8(k.db);
        w.str(k.key);
        w.f64(k.revision);
      }
      w.u32(entry.commands.length);
      for (const argv of entry.commands) writeArgv(w, argv);
      break;
    case 'expire':
      w.u32(entry.keys.length);
      for (const k of entry.keys) {
        w.u8(k.db);
        w.str(k.key);
      }
      break;
  }
  return w.finishExact();
}

/** Decodes an entry; throws CorruptDataError for anything malformed (a bug or corruption). */
export function decodeEntry(data: Uint8Array): Entry {
  const r = new ByteReader(data, 'kv entry');
  const version = r.u8();
  if (version !== entryFormatVersion) {
    throw new CorruptDataError(`kv entry: unknown format version ${version}`);
  }
  const tag = r.u8();
  const nowMs = r.f64();
  const seed = r.u32();
  if (!Number.isFinite(nowMs)) throw new CorruptDataError(`kv entry: nowMs ${nowMs}`);
  let entry: Entry;
  if (tag === tagCodes.command) {
    const db = r.u8();
    checkDb(db, 'kv entry');
    entry = { tag: 'command', nowMs, seed, db, argv: readArgv(r) };
  } else if (tag === tagCodes.exec) {
    const db = r.u8();
    checkDb(db, 'kv entry');
    const wn = r.u32();
    if (wn > r.remaining) throw new CorruptDataError(`kv entry: watched count ${wn}`);
    const watched: WatchedKey[] = [];
    for (let i = 0; i < wn; i++) {
      const wdb = r.u8();
      checkDb(wdb, 'kv entry');
      watched.push({ db: wdb, key: r.str(), revision: r.f64() });
    }
    const cn = r.u32();
    if (cn > execCommandsMax || cn * 8 > r.remaining)
      throw new CorruptDataError(`kv entry: exec count ${cn}`);
    const commands: string[][] = [];
    for (let i = 0; i < cn; i++) commands.push(readArgv(r));
    entry = { tag: 'exec', nowMs, seed, db, watched, commands };
  } else if (tag === tagCodes.expire) {
    const n = r.u32();
    if (n > r.remaining) throw new CorruptDataError(`kv entry: expire count ${n}`);
    const keys: DbKey[] = [];
    for (let i = 0; i < n; i++) {
      const db = r.u8();
      checkDb(db, 'kv entry');
      keys.push({ db, key: r.str() });
    }
    entry = { tag: 'expire', nowMs, seed, keys };
  } else {
    throw new CorruptDataError(`kv entry: unknown tag ${tag}`);
  }
  r.expectEnd();
  return entry;
}

/**
 * A `command` entry that is a plain `SET key value` (no options), with the
 * value as a range of the entry's bytes (see `decodePlainSet`).
 */
export interface PlainSet {
  readonly nowMs: number;
  readonly db: number;
  readonly key: string;
  /** The value, in the entry's bytes. */
  readonly value: ByteSpan;
}

const plainSetBytesMin = headerBytes + 1 + 4 + (4 + 3) + 4 + 4;

/** Whether `b[at, at + 3)` spells "set" in any case. */
function isSetName(b: Buffer, at: number): boolean {
  return (
    ((b[at] as number) | 0x20) === 0x73 &&
    ((b[at + 1] as number) | 0x20) === 0x65 &&
    ((b[at + 2] as number) | 0x20) === 0x74
  );
}

/**
 * The entry as a plain SET when it is one and well formed, else undefined
 * (decode it with `decodeEntry`, which says what is wrong). Applying the
 * most common entry from its bytes spares the argv strings, the entry
 * object and a copy of the value (see KvStateMachine.apply).
 */
export function decodePlainSet(data: Uint8Array): PlainSet | undefined {
  if (data.length < plainSetBytesMin) return undefined;
  if (data[0] !== entryFormatVersion || data[1] !== tagCodes.command) return undefined;
  const b = Buffer.isBuffer(data)
    ? data
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const db = b[headerBytes] as number;
  const argc = headerBytes + 1;
  if (db >= dbCount || b.readUInt32LE(argc) !== 3 || b.readUInt32LE(argc + 4) !== 3) {
    return undefined;
  }
  if (!isSetName(b, argc + 8)) return undefined;
  const keyLength = b.readUInt32LE(argc + 11);
  const keyStart = argc + 15;
  if (keyLength > b.length - keyStart - 4) return undefined;
  const valueStart = keyStart + keyLength + 4;
  if (valueStart + b.readUInt32LE(keyStart + keyLength) !== b.length) return undefined;
  const nowMs = b.readDoubleLE(2);
  if (!Number.isFinite(nowMs)) return undefined;
  return {
    nowMs,
    db,
    key: latin1Slice(b, keyStart, keyStart + keyLength),
    value: new ByteSpan(b, valueStart, b.length),
  };
}
