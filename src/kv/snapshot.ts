/**
 * Snapshot image of the keyspace, restore, and the state digest.
 *
 * Image layout: magic `TDKVSNAP`, u32 version, f64 clockMs, f64
 * appliedIndex, u32 db count; then records (u8 type 1..5, u8 db, key, f64
 * expireAtMs, f64 revision, value); then u8 0 and f64 record count.
 * Version 1 images, still read, end with the SHA-256 of every byte before
 * it (32 bytes). Version 2 drops it: an image only ever rests in a snapshot
 * file or a backup, and travels between nodes as one, each of which checks
 * every byte (a CRC-32 from the writer's file to the receiver's, a SHA-256
 * over a backup), so the hash was a second pass over every byte that
 * guarded nothing more; it took 190 of the 233 ms it took to encode 20,000
 * values of 16 KiB (`npm run bench:kv-snapshot`).
 * Values: string = str; hash = u32 n, n × (field, value); list/set = u32 n,
 * n × str; zset = u32 n, n × (member, f64 score) in ascending order.
 */
import { Buffer } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';
import { assert } from '../raft/assert.js';
import { ByteReader, ByteSpan, ByteWriter, CorruptDataError, TruncatedDataError } from './bytes.js';
import { Deque } from './deque.js';
import { dbCount } from './entry-codec.js';
import type { KeyTable } from './key-table.js';
import {
  type HashValue,
  Keyspace,
  type LiveRecordSink,
  type RecordSink,
  type SetValue,
  type SnapshotCapture,
  type StoredValue,
  type TypeName,
  typeOf,
  type Value,
} from './keyspace.js';
import { ZSet } from './zset.js';

const magic = 'TDKVSNAP';
export const snapshotFormatVersion = 2;
/** Images of this version end with a SHA-256 of the bytes before. */
const hashedFormatVersion = 1;
const hashBytes = 32;
const typeCodes: Readonly<Record<TypeName, number>> = {
  string: 1,
  hash: 2,
  list: 3,
  set: 4,
  zset: 5,
};
/** Target chunk size; a single large value may make one chunk bigger. */
export const snapshotChunkBytes = 256 * 1024;

function writeValue(w: ByteWriter, v: Value, canonical: boolean): void {
  if (typeof v === 'string') {
    w.str(v);
    return;
  }
  w.u32(v.size);
  if (v instanceof Map) {
    const fields = canonical ? [...v.keys()].sort() : v.keys();
    for (const f of fields) {
      w.str(f);
      w.str(v.get(f) as string);
    }
  } else if (v instanceof Set) {
    for (const m of canonical ? [...v].sort() : v) w.str(m);
  } else if (v instanceof Deque) {
    for (const x of v) w.str(x);
  } else {
    for (const [m, s] of v.entries()) {
      w.str(m);
      w.f64(s);
    }
  }
}

/** One record; `ks` reads `value` when it is an arena slot. */
function writeRecord(
  w: ByteWriter,
  ks: Keyspace,
  db: number,
  key: string,
  value: StoredValue,
  revision: number,
  expireAtMs: number,
  canonical: boolean,
): void {
  w.u8(typeCodes[typeof value === 'number' ? 'string' : typeOf(value)]);
  w.u8(db);
  w.str(key);
  writeRecordRest(w, ks, value, revision, expireAtMs, canonical);
}

/** `writeRecord` of record `id` of a live key table, its key copied from the table. */
function writeLiveRecord(
  w: ByteWriter,
  ks: Keyspace,
  db: number,
  table: KeyTable,
  id: number,
  value: StoredValue,
  revision: number,
  expireAtMs: number,
): void {
  w.u8(typeCodes[typeof value === 'number' ? 'string' : typeOf(value)]);
  w.u8(db);
  table.writeKey(id, w);
  writeRecordRest(w, ks, value, revision, expireAtMs, false);
}

/** What follows a record's key. */
function writeRecordRest(
  w: ByteWriter,
  ks: Keyspace,
  value: StoredValue,
  revision: number,
  expireAtMs: number,
  canonical: boolean,
): void {
  w.f64(expireAtMs);
  w.f64(revision);
  if (typeof value === 'number') ks.writeArenaString(value, w);
  else writeValue(w, value, canonical);
}

function writeHeader(w: ByteWriter, clockMs: number, appliedIndex: number): void {
  for (let i = 0; i < magic.length; i++) w.u8(magic.charCodeAt(i));
  w.u32(snapshotFormatVersion);
  w.f64(clockMs);
  w.f64(appliedIndex);
  w.u32(dbCount);
}

/**
 * What a snapshot's chunks are: `fresh`, a new buffer each, the consumer's
 * to keep (a backup streamed over HTTP, where the socket holds chunks it has
 * not sent yet); or `reused`, one buffer written again for every chunk, valid
 * only until the next chunk is pulled (a snapshot saved to its file, whose
 * writer pulls the next chunk once the previous one is written).
 *
 * Why `reused`: a snapshot of 1M keys of 100 B is about 480 chunks of
 * 256 KiB. Each fresh chunk was its own malloc'd buffer, freed only when V8
 * next collected its ArrayBuffer, and those freed buffers left holes in the
 * C heap between longer-lived allocations that glibc keeps resident (each
 * node's C heap held 167-187 MiB of pages with values in them for 104 MB
 * of live values, /proc/PID/mem). `npm run bench:keyspace -- --systems
 * tandem --idle-ms 30000`, 3 interleaved pairs, largest node's RSS after
 * the load 356/359/358 MiB against 363/366/369 with fresh chunks; after
 * 30 s idle 319/360/346 against 340/346/351 (the 360: no idle collection
 * yet). Under 16 KiB SETs (`npm run bench -- --value-bytes 16384`, a
 * larger state, 4 pairs) the leader's CPU per SET was 221-282 µs against
 * 263-283, throughput within the noise.
 */
export type SnapshotChunks = 'fresh' | 'reused';

/**
 * A consistent image of the keyspace as of its creation, produced in chunks
 * while applies continue (copy-on-write, see SnapshotCapture). Iterate it
 * once; `close()` (or breaking out of a for..of) abandons it. Only one
 * snapshot may be in progress at a time.
 */
export class KvSnapshot implements Iterable<Uint8Array> {
  private readonly capture: SnapshotCapture;
  private started = false;
  private closed = false;

  constructor(
    private readonly ks: Keyspace,
    private readonly chunkBytes: number = snapshotChunkBytes,
    private readonly chunkUse: SnapshotChunks = 'fresh',
  ) {
    assert(chunkBytes >= 1, 'chunk size is positive');
    this.capture = ks.startCapture();
  }

  /** The log index the image corresponds to. */
  get appliedIndex(): number {
    return this.capture.appliedIndex;
  }

  close(): void {
    this.closed = true;
    this.ks.endCapture(this.capture);
  }

  [Symbol.iterator](): Iterator<Uint8Array> {
    assert(!this.started, 'a kv snapshot is iterated once');
    this.started = true;
    return this.chunks();
  }

  private *chunks(): Generator<Uint8Array> {
    try {
      const w = new ByteWriter(Math.min(this.chunkBytes, snapshotChunkBytes) + 1024);
      writeHeader(w, this.capture.clockMs, this.capture.appliedIndex);
      let records = 0;
      const emitLive: LiveRecordSink = (db, table, id, value, revision, expireAtMs) => {
        writeLiveRecord(w, this.ks, db, table, id, value, revision, expireAtMs);
        records++;
      };
      const emitSaved: RecordSink = (db, key, value, revision, expireAtMs) => {
        writeRecord(w, this.ks, db, key, value, revision, expireAtMs, false);
        records++;
      };
      const full = (): boolean => w.length >= this.chunkBytes;
      const reuse = this.chunkUse === 'reused';
      for (const _ of this.capture.emitRecords(emitLive, emitSaved, full)) {
        yield reuse ? w.lend() : w.take();
        if (this.closed) return;
      }
      w.u8(0);
      w.f64(records);
      yield reuse ? w.lend() : w.take();
    } finally {
      this.close();
    }
  }
}

function concat(chunks: Iterable<Uint8Array>): Buffer {
  const parts: Uint8Array[] = [];
  for (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

/** A collection value (strings are read by readRecord, straight into the arena). */
function readCollection(r: ByteReader, type: number): Value {
  const n = r.u32();
  if (n === 0) throw new CorruptDataError('kv snapshot: empty collection');
  if (n > r.remaining) throw new CorruptDataError(`kv snapshot: collection size ${n}`);
  if (type === 2) {
    const h: HashValue = new Map();
    for (let i = 0; i < n; i++) h.set(r.str(), r.str());
    if (h.size !== n) throw new CorruptDataError('kv snapshot: duplicate hash field');
    return h;
  }
  if (type === 3) {
    const d = new Deque(n);
    for (let i = 0; i < n; i++) d.pushBack(r.str());
    return d;
  }
  if (type === 4) {
    const s: SetValue = new Set();
    for (let i = 0; i < n; i++) s.add(r.str());
    if (s.size !== n) throw new CorruptDataError('kv snapshot: duplicate set member');
    return s;
  }
  if (type === 5) {
    const z = new ZSet();
    for (let i = 0; i < n; i++) {
      const m = r.str();
      const score = r.f64();
      if (Number.isNaN(score)) throw new CorruptDataError('kv snapshot: NaN score');
      z.set(m, score);
    }
    if (z.size !== n) throw new CorruptDataError('kv snapshot: duplicate zset member');
    return z;
  }
  throw new CorruptDataError(`kv snapshot: unknown value type ${type}`);
}

/** Builds a keyspace from an image; throws CorruptDataError if corrupt or truncated. */
export function restoreKeyspace(chunks: Iterable<Uint8Array>): Keyspace {
  const bytes = concat(chunks);
  const headerBytes = magic.length + 4 + 8 + 8 + 4;
  if (bytes.length < headerBytes + 9) {
    throw new CorruptDataError(`kv snapshot: truncated (${bytes.length} bytes)`);
  }
  if (bytes.toString('latin1', 0, magic.length) !== magic) {
    throw new CorruptDataError('kv snapshot: bad magic (not a kv snapshot)');
  }
  let body = bytes.length;
  if (bytes.readUInt32LE(magic.length) === hashedFormatVersion) {
    body -= hashBytes;
    const expected = createHash('sha256')
      .update(bytes.subarray(0, Math.max(0, body)))
      .digest();
    if (body < headerBytes + 9 || !expected.equals(bytes.subarray(body))) {
      throw new CorruptDataError('kv snapshot: checksum mismatch (corrupt or truncated image)');
    }
  }
  const r = new ByteReader(bytes, 'kv snapshot', magic.length, body);
  const ks = new Keyspace();
  readHeader(r, ks);
  let records = 0;
  for (let record = readRecord(r); record !== null; record = readRecord(r)) {
    putRecord(ks, record);
    records++;
  }
  const count = r.f64();
  if (count !== records) {
    throw new CorruptDataError(`kv snapshot: ${records} records, trailer says ${count}`);
  }
  r.expectEnd();
  return ks;
}

/** The header after the magic: version, clock, applied index, db count. Returns the version. */
function readHeader(r: ByteReader, ks: Keyspace): number {
  const version = r.u32();
  if (version !== snapshotFormatVersion && version !== hashedFormatVersion) {
    throw new CorruptDataError(
      `kv snapshot: unsupported version ${version} (this Tandem reads versions ` +
        `${hashedFormatVersion} and ${snapshotFormatVersion}; was it written by a newer Tandem?)`,
    );
  }
  ks.clockMs = r.f64();
  ks.appliedIndex = r.f64();
  const dbs = r.u32();
  if (dbs !== dbCount) throw new CorruptDataError(`kv snapshot: ${dbs} dbs, expected ${dbCount}`);
  return version;
}

/**
 * One record as read: a string value is left in the bytes read (a
 * ByteSpan) so that restore copies it into the arena without a JS string;
 * other values are decoded.
 */
interface SnapshotRecord {
  readonly db: number;
  readonly key: string;
  readonly value: Value | ByteSpan;
  readonly revision: number;
  readonly expireAtMs: number;
}

/** One record, or null at the end-of-records marker. */
function readRecord(r: ByteReader): SnapshotRecord | null {
  const type = r.u8();
  if (type === 0) return null;
  const db = r.u8();
  if (db >= dbCount) throw new CorruptDataError(`kv snapshot: db ${db}`);
  const key = r.str();
  const expireAtMs = r.f64();
  const revision = r.f64();
  if (!(Number.isFinite(expireAtMs) && expireAtMs >= 0)) {
    throw new CorruptDataError(`kv snapshot: expiry ${expireAtMs} of key ${JSON.stringify(key)}`);
  }
  if (type === typeCodes.string) {
    const start = r.strSpan();
    return { db, key, value: new ByteSpan(r.bytes, start, r.offset), revision, expireAtMs };
  }
  return { db, key, value: readCollection(r, type), revision, expireAtMs };
}

function putRecord(ks: Keyspace, record: SnapshotRecord): void {
  const keys = ks.table(record.db).size;
  const { db, key, value, revision, expireAtMs } = record;
  ks.put(db, key, value, revision, expireAtMs);
  // One hash lookup per record: a duplicate replaced an entry instead of adding one.
  if (ks.table(record.db).size === keys) throw new CorruptDataError('kv snapshot: duplicate key');
}

/**
 * Restores a keyspace from a stream of chunks without holding the image in
 * memory: records are decoded as their bytes arrive, and the stream is read
 * to its end, where the snapshot file's reader checks its checksum (and a
 * version 1 image's own hash is checked): a damaged image throws then, and
 * the partial keyspace is dropped. Memory: the keyspace, plus about one
 * record or one chunk of buffer.
 */
export async function restoreKeyspaceAsync(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<Keyspace> {
  const cursor = new StreamCursor(chunks);
  const headerHash = createHash('sha256');
  const ks = new Keyspace();
  const version = await cursor.next(headerHash, (r) => {
    for (let i = 0; i < magic.length; i++) {
      if (r.u8() !== magic.charCodeAt(i)) {
        throw new CorruptDataError('kv snapshot: bad magic (not a kv snapshot)');
      }
    }
    return readHeader(r, ks);
  });
  const hash = version === hashedFormatVersion ? headerHash : null;
  let records = 0;
  await cursor.each(hash, readRecord, (record) => {
    putRecord(ks, record);
    records++;
  });
  const count = await cursor.next(hash, (r) => r.f64());
  const rest = await cursor.rest();
  if (hash === null && rest.length !== 0) {
    throw new CorruptDataError(`kv snapshot: ${rest.length} bytes after the end of the image`);
  }
  if (hash !== null && (rest.length !== hashBytes || !hash.digest().equals(rest))) {
    throw new CorruptDataError('kv snapshot: checksum mismatch (corrupt or truncated image)');
  }
  if (count !== records) {
    throw new CorruptDataError(`kv snapshot: ${records} records, trailer says ${count}`);
  }
  return ks;
}

/**
 * Decodes a stream piece by piece: each `next` runs a synchronous reader on
 * the bytes buffered so far; when they end too soon, more are read (at least
 * doubling the buffer, so a value spanning many chunks costs linear time)
 * and the reader runs again. Consumed bytes are hashed (when given a hash),
 * then dropped.
 */
class StreamCursor {
  private buffer = Buffer.alloc(0);
  private ended = false;
  private readonly iterator: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;

  constructor(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.iterator =
      Symbol.asyncIterator in chunks
        ? chunks[Symbol.asyncIterator]()
        : (chunks as Iterable<Uint8Array>)[Symbol.iterator]();
  }

  async next<T>(hash: Hash | null, read: (r: ByteReader) => T): Promise<T> {
    for (;;) {
      const r = new ByteReader(this.buffer, 'kv snapshot');
      try {
        const value = read(r);
        hash?.update(this.buffer.subarray(0, r.offset));
        this.buffer = this.buffer.subarray(r.offset);
        return value;
      } catch (failure) {
        if (!(failure instanceof TruncatedDataError) || this.ended) throw failure;
        await this.more();
      }
    }
  }

  /**
   * Runs `read` over the buffered bytes until it returns null (the end
   * marker), handing each value to `each`; decodes every complete item
   * buffered before reading more, and hashes consumed bytes once per batch,
   * not once per item (a million small records restore about 3x faster).
   */
  async each<T>(
    hash: Hash | null,
    read: (r: ByteReader) => T | null,
    each: (v: T) => void,
  ): Promise<void> {
    for (;;) {
      const r = new ByteReader(this.buffer, 'kv snapshot');
      let consumed = 0;
      let done = false;
      try {
        for (;;) {
          const value = read(r);
          consumed = r.offset;
          if (value === null) {
            done = true;
            break;
          }
          each(value);
        }
      } catch (failure) {
        if (!(failure instanceof TruncatedDataError) || this.ended) throw failure;
      }
      hash?.update(this.buffer.subarray(0, consumed));
      this.buffer = this.buffer.subarray(consumed);
      if (done) return;
      await this.more();
    }
  }

  /** Everything after the last `next`, once the stream ended. */
  async rest(): Promise<Buffer> {
    while (!this.ended) await this.more();
    return this.buffer;
  }

  private async more(): Promise<void> {
    const target = Math.max(this.buffer.length * 2, this.buffer.length + 1);
    const parts: Buffer[] = [this.buffer];
    let length = this.buffer.length;
    while (length < target) {
      const next = await this.iterator.next();
      if (next.done === true) {
        this.ended = true;
        break;
      }
      const chunk = next.value;
      parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      length += chunk.byteLength;
    }
    this.buffer = Buffer.concat(parts, length);
  }
}

/** SHA-256 (hex) of the logical state in canonical order: equal states, equal digests. */
export function digestKeyspace(ks: Keyspace): string {
  const hash: Hash = createHash('sha256');
  const w = new ByteWriter(64 * 1024);
  writeHeader(w, ks.clockMs, ks.appliedIndex);
  ks.dbs.forEach((t, db) => {
    const ids = new Map<string, number>();
    for (let id = 0; id < t.idEnd; id++) if (t.has(id)) ids.set(t.key(id), id);
    for (const key of [...ids.keys()].sort()) {
      const id = ids.get(key) as number;
      writeRecord(w, ks, db, key, t.raw(id), t.revision(id), ks.expiryOf(db, key), true);
      if (w.length >= 64 * 1024) hash.update(w.take());
    }
  });
  hash.update(w.take());
  return hash.digest('hex');
}
