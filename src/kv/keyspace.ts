/**
 * The replicated data: 16 databases of keys (a KeyTable each), each key with
 * a value and the log index of its last modification (revision), the absolute expiry
 * of the keys that have one (a map of its own, as Redis keeps), plus the
 * monotonic clock. Mutations go through `beforeMutate` so that an
 * in-progress snapshot can keep the value it has not written out yet.
 */
import { assert } from '../raft/assert.js';
import { type ArenaSlot, type ArenaStats, StringArena } from './arena.js';
import { ByteSpan, type ByteWriter } from './bytes.js';
import { Deque } from './deque.js';
import type { DbKey } from './entry-codec.js';
import { dbCount } from './entry-codec.js';
import { ScanCursors } from './impl.js';
import { KeyTable, type StoredValue } from './key-table.js';
import type { ZSet } from './zset.js';

export type HashValue = Map<string, string>;
export type SetValue = Set<string>;
export type Value = string | HashValue | SetValue | Deque | ZSet;
export type TypeName = 'string' | 'hash' | 'list' | 'set' | 'zset';

/** Free arena bytes tolerated before `Keyspace.tidyArena` compacts (see there). */
const arenaSlackDefault = 32 * 1024 * 1024;

export function typeOf(v: Value): TypeName {
  if (typeof v === 'string') return 'string';
  if (v instanceof Map) return 'hash';
  if (v instanceof Set) return 'set';
  if (v instanceof Deque) return 'list';
  return 'zset';
}

export function valueSize(v: Value): number {
  if (typeof v === 'string') return v.length;
  return v.size;
}

export function cloneValue(v: Value): Value {
  if (typeof v === 'string') return v;
  if (v instanceof Map) return new Map(v);
  if (v instanceof Set) return new Set(v);
  return v.clone();
}

export type { StoredValue } from './key-table.js';

/** Whether `value` is a string the arena holds (see arena.ts). */
function isArenaString(value: Value | ByteSpan): value is string | ByteSpan {
  return (typeof value === 'string' || value instanceof ByteSpan) && StringArena.fits(value.length);
}

/**
 * A key as commands hold it between a lookup and a mutation: its record id
 * in its db's KeyTable and the db (id * dbCount + db), read and changed
 * through the Keyspace. Valid until the key is removed or its db flushed:
 * a later key may reuse the id.
 */
export type KeyRef = number;

export function refOf(id: number, db: number): KeyRef {
  return id * dbCount + db;
}

function dbOf(ref: KeyRef): number {
  return ref % dbCount;
}

function idOf(ref: KeyRef): number {
  return (ref - dbOf(ref)) / dbCount;
}

/**
 * What a snapshot keeps for a key mutated before it was written: a deep
 * copy of its value as of the start, its revision and its expiry (0 for
 * none). Copying is O(size of that value) once per key per snapshot;
 * cloning a Map measured about 2x faster than encoding it on the spot.
 */
interface SavedEntry {
  readonly value: Value;
  readonly revision: number;
  readonly expireAtMs: number;
}

/**
 * The copy-on-write view behind one snapshot. Starting one is O(dbs): it
 * keeps the live key tables, each one's id range, and an empty log of saved
 * keys per db. FLUSHDB/FLUSHALL replace the live table, so the captured one
 * is frozen from then on.
 *
 * A record marked with the capture's id (`KeyTable.mark`) is done with:
 * written out, saved, or made after the start. Invariant: every other
 * record of a captured table below its id range at the start holds its
 * key's state as of the start. The Keyspace keeps it so:
 * - before a key is mutated, `preserve` saves the state of an unmarked
 *   record and marks it;
 * - a key added while a capture runs is marked at once (`Keyspace.install`),
 *   also when it reuses the id of a key deleted since the start.
 * So the walk in id order writes each unmarked record (and marks it), and
 * then the saved keys; each key of the start exactly once, with no lookup
 * by name on either side.
 */
export class SnapshotCapture {
  readonly tables: readonly KeyTable[];
  private readonly idEnds: readonly number[];
  /** The expiry maps at the start; a flush replaces them with the key tables. */
  readonly expires: readonly Map<string, number>[];
  readonly saved: Map<string, SavedEntry>[];

  constructor(
    readonly id: number,
    private readonly ks: Keyspace,
    readonly clockMs: number,
    readonly appliedIndex: number,
  ) {
    this.tables = [...ks.dbs];
    this.idEnds = ks.dbs.map((t) => t.idEnd);
    this.expires = [...ks.expires];
    this.saved = ks.dbs.map(() => new Map<string, SavedEntry>());
  }

  /** Saves the state of record `id` (key `key`) of `live` unless already done with. */
  preserve(db: number, key: string, live: KeyTable, id: number): void {
    if (id === -1 || this.tables[db] !== live || live.mark(id) === this.id) return;
    live.setMark(id, this.id);
    const value = cloneValue(this.ks.valueOf(refOf(id, db)));
    const saved = this.saved[db] as Map<string, SavedEntry>;
    assert(!saved.has(key), 'a key is saved once per snapshot');
    saved.set(key, { value, revision: live.revision(id), expireAtMs: this.expiryAtStart(db, key) });
  }

  /** Valid for a key not mutated since the start (every expiry change preserves first). */
  private expiryAtStart(db: number, key: string): number {
    const expires = this.expires[db] as Map<string, number>;
    return expires.size === 0 ? 0 : (expires.get(key) ?? 0);
  }

  /**
   * Hands every key as of the start to `emit`, each exactly once, pausing
   * (one yield) whenever `full()` says the caller's chunk is ready; resume
   * between applies freely. A callback and a yield per chunk, not a tuple
   * and a generator result per key: snapshots of 100,000 keys every second
   * or two under load made those a fifth of a follower's allocation. The
   * tables are walked outside the generator (`emitLive`, `emitSaved`).
   */
  *emitRecords(
    emitLive: LiveRecordSink,
    emitSaved: RecordSink,
    full: () => boolean,
  ): Generator<void> {
    for (let db = 0; db < this.tables.length; db++) {
      const cursor = { id: 0 };
      while (!this.emitLive(db, cursor, emitLive, full)) yield;
      const saved = (this.saved[db] as Map<string, SavedEntry>).entries();
      while (!this.emitSaved(db, saved, emitSaved, full)) yield;
    }
  }

  /** Emits the db's unmarked records from `cursor.id` on; false when `full()`, true at the end. */
  private emitLive(
    db: number,
    cursor: { id: number },
    emit: LiveRecordSink,
    full: () => boolean,
  ): boolean {
    const table = this.tables[db] as KeyTable;
    const end = this.idEnds[db] as number;
    const noExpiries = (this.expires[db] as Map<string, number>).size === 0;
    while (cursor.id < end) {
      const id = cursor.id++;
      if (!table.has(id) || table.mark(id) === this.id) continue;
      table.setMark(id, this.id);
      // The key's string is made only when the db has expiries to look it up in.
      const expireAtMs = noExpiries ? 0 : this.expiryAtStart(db, table.key(id));
      emit(db, table, id, table.raw(id), table.revision(id), expireAtMs);
      if (full()) return false;
    }
    return true;
  }

  /** Emits the saved keys (mutated or deleted since the start); as `emitLive`. */
  private emitSaved(
    db: number,
    it: Iterator<[string, SavedEntry]>,
    emit: RecordSink,
    full: () => boolean,
  ): boolean {
    for (;;) {
      const step = it.next();
      if (step.done === true) return true;
      const [key, u] = step.value;
      emit(db, key, u.value, u.revision, u.expireAtMs);
      if (full()) return false;
    }
  }
}

/**
 * Receives one key of a snapshot: its db, name, value, revision and expiry
 * (0 for none). A value that is an arena slot must be read at once
 * (`Keyspace.writeArenaString`): the next mutation may reuse the slot.
 */
export type RecordSink = (
  db: number,
  key: string,
  value: StoredValue,
  revision: number,
  expireAtMs: number,
) => void;

/**
 * A record read from its live table (`KeyTable.writeKey` writes its key);
 * otherwise as RecordSink.
 */
export type LiveRecordSink = (
  db: number,
  table: KeyTable,
  id: number,
  value: StoredValue,
  revision: number,
  expireAtMs: number,
) => void;

export interface DbStats {
  readonly db: number;
  readonly keys: number;
  readonly expires: number;
}

export class Keyspace {
  /** Live key tables, one per db. Replaced (not cleared) by flush; see SnapshotCapture. */
  readonly dbs: KeyTable[];
  /**
   * Per db, the absolute expiry (state machine clock, ms) of each key that
   * has one. Invariant: every key here is in the db's key table.
   */
  readonly expires: Map<string, number>[];
  /** Invariant: never decreases. max(entry nowMs) over every applied entry. */
  clockMs = 0;
  /** Invariant: strictly increases with each applied entry. */
  appliedIndex = 0;
  private capture: SnapshotCapture | null = null;
  private captureIds = 0;
  private expireCursorDb = 0;
  private expireCursor: Iterator<[string, number]> | null = null;
  /** Bumped by flushes, so cached iterators (HSCAN, SSCAN) know they are stale. */
  generation = 0;
  /** Holds the keys' short string values (see arena.ts); replaced whole by `tidyArena`. */
  private arena = new StringArena();
  /** Key tables flushed while a snapshot still reads them: their slots are freed when it ends. */
  private flushedWhileCapturing: KeyTable[] = [];
  /** Times `tidyArena` moved the values into a fresh arena. */
  arenaCompactions = 0;
  /** Local HSCAN/SSCAN iterator cache (SCAN's cursor is a key id): not replicated, never affects state. */
  readonly scans = new ScanCursors();

  /** `arenaSlackBytes`: see tidyArena (tests lower it). */
  constructor(private readonly arenaSlackBytes = arenaSlackDefault) {
    this.dbs = Array.from({ length: dbCount }, () => new KeyTable());
    this.expires = Array.from({ length: dbCount }, () => new Map<string, number>());
  }

  table(db: number): KeyTable {
    const t = this.dbs[db];
    assert(t !== undefined, 'db index in range');
    return t;
  }

  private expiresOf(db: number): Map<string, number> {
    const m = this.expires[db];
    assert(m !== undefined, 'db index in range');
    return m;
  }

  /** The id of the capture running, or 0 (see SnapshotCapture). */
  private get captureMark(): number {
    return this.capture === null ? 0 : this.capture.id;
  }

  /** The key's ref, or undefined when it does not exist (expired or not). */
  find(db: number, key: string): KeyRef | undefined {
    const id = this.table(db).find(key);
    return id === -1 ? undefined : refOf(id, db);
  }

  /**
   * Must be called before any change to the key's value, revision, expiry
   * or existence; `ref` saves a lookup when the caller has it.
   */
  beforeMutate(db: number, key: string, ref?: KeyRef): void {
    if (this.capture === null) return;
    const t = this.table(db);
    const id = ref === undefined ? t.find(key) : idOf(ref);
    this.capture.preserve(db, key, t, id);
  }

  startCapture(): SnapshotCapture {
    if (this.capture !== null) {
      throw new Error('kv snapshot: one is already in progress; finish or close it first');
    }
    this.captureIds++;
    this.capture = new SnapshotCapture(this.captureIds, this, this.clockMs, this.appliedIndex);
    return this.capture;
  }

  endCapture(c: SnapshotCapture): void {
    if (this.capture !== c) return;
    this.capture = null;
    for (const t of this.flushedWhileCapturing) this.releaseAll(t);
    this.flushedWhileCapturing = [];
  }

  get capturing(): boolean {
    return this.capture !== null;
  }

  /** The table of `ref`, whose record `idOf(ref)` is live. */
  private tableOf(ref: KeyRef): KeyTable {
    const t = this.table(dbOf(ref));
    assert(t.has(idOf(ref)), 'a ref names a live key');
    return t;
  }

  /** The key's value as its record holds it. */
  private rawOf(ref: KeyRef): StoredValue {
    return this.tableOf(ref).raw(idOf(ref));
  }

  /** The key's value (a string read from the arena is a new copy). */
  valueOf(ref: KeyRef): Value {
    const raw = this.rawOf(ref);
    return typeof raw === 'number' ? this.arena.read(raw) : raw;
  }

  /** The log index of the key's last modification. */
  revisionOf(ref: KeyRef): number {
    return this.tableOf(ref).revision(idOf(ref));
  }

  /** Records the key's last modification; call `beforeMutate` first. */
  setRevision(ref: KeyRef, revision: number): void {
    this.tableOf(ref).setRevision(idOf(ref), revision);
  }

  /**
   * Writes the string in an arena slot a snapshot sink was handed, as
   * ByteWriter.str would write it, without making a JS string of it.
   */
  writeArenaString(slot: ArenaSlot, w: ByteWriter): void {
    this.arena.writeTo(slot, w);
  }

  /**
   * Moves the arena's values into a fresh one when more than half of it
   * (and more than `arenaSlackBytes`) sits on free lists, as after values
   * changed size or many keys were deleted: slots of one size are reused
   * only by values of that size. O(keys); the state machine calls it after
   * each apply, and it waits while a snapshot reads the arena.
   */
  tidyArena(): void {
    const freeBytes = this.arena.freeBytes;
    if (freeBytes <= this.arenaSlackBytes || freeBytes <= this.arena.liveBytes) return;
    if (this.capture !== null) return;
    const next = new StringArena();
    for (const t of this.dbs) {
      for (let id = 0; id < t.idEnd; id++) {
        if (!t.has(id)) continue;
        const raw = t.raw(id);
        if (typeof raw === 'number') t.setRaw(id, next.copyFrom(this.arena, raw));
      }
    }
    this.arena = next;
    this.arenaCompactions++;
  }

  arenaStats(): ArenaStats {
    return this.arena.stats();
  }

  /** Bytes the key tables hold (indexes and records; values are the arena's or the heap's). */
  get keyTableBytes(): number {
    let bytes = 0;
    for (const t of this.dbs) bytes += t.reservedBytes;
    return bytes;
  }

  /** The key's value when it is a string, else undefined (no copy of other types). */
  stringOf(ref: KeyRef): string | undefined {
    const raw = this.rawOf(ref);
    if (typeof raw === 'number') return this.arena.read(raw);
    return typeof raw === 'string' ? raw : undefined;
  }

  /** Whether the key holds a collection with no members (Redis keeps none). */
  isEmptyCollection(ref: KeyRef): boolean {
    const raw = this.rawOf(ref);
    return typeof raw === 'object' && raw.size === 0;
  }

  typeNameOf(ref: KeyRef): TypeName {
    const raw = this.rawOf(ref);
    return typeof raw === 'number' ? 'string' : typeOf(raw);
  }

  /**
   * Makes the key hold `value` (replacing any value it had), with
   * `expireAtMs` (0: none). Returns its ref. A string given as a ByteSpan
   * is copied into the arena without a JS string in between when it fits
   * (snapshot restore: 1M values of 100 bytes loaded 0.27 s slower through
   * strings). A key that existed keeps its record (and its arena slot when
   * the size allows), its old state saved first for the capture running, if
   * any; a new one is marked as done with by that capture (see
   * SnapshotCapture).
   */
  put(
    db: number,
    key: string,
    value: Value | ByteSpan,
    revision: number,
    expireAtMs: number,
  ): KeyRef {
    const t = this.table(db);
    const id = t.find(key);
    if (id !== -1) {
      this.rewrite(db, key, t, id, value, revision, expireAtMs);
      return refOf(id, db);
    }
    const added = t.insert(key, this.toStored(value), revision, this.captureMark);
    this.trackExpiry(db, key, expireAtMs);
    return refOf(added, db);
  }

  /**
   * Gives an existing key a new value, revision and expiry in place: one
   * hash lookup (the caller's) instead of two, for a SET over a key that
   * exists.
   */
  overwrite(
    db: number,
    key: string,
    ref: KeyRef,
    value: Value | ByteSpan,
    revision: number,
    expireAtMs: number,
  ): void {
    assert(dbOf(ref) === db, "a ref of the key's db");
    this.rewrite(db, key, this.tableOf(ref), idOf(ref), value, revision, expireAtMs);
  }

  /** `put` and `overwrite` of the key with record `id` of `t`, saving its state for a capture first. */
  private rewrite(
    db: number,
    key: string,
    t: KeyTable,
    id: number,
    value: Value | ByteSpan,
    revision: number,
    expireAtMs: number,
  ): void {
    // As beforeMutate, with the id at hand (no second lookup).
    this.capture?.preserve(db, key, t, id);
    t.setRaw(id, this.swapStored(t.raw(id), value));
    t.setRevision(id, revision);
    this.trackExpiry(db, key, expireAtMs);
  }

  /**
   * Gives a key a new value in place; its revision and expiry are the
   * caller's. Call `beforeMutate` first (lookupForWrite does).
   */
  replaceValue(ref: KeyRef, value: Value): void {
    const t = this.tableOf(ref);
    const id = idOf(ref);
    t.setRaw(id, this.swapStored(t.raw(id), value));
  }

  /** `value` stored in place of `raw`, reusing its arena slot when the size allows. */
  private swapStored(raw: StoredValue, value: Value | ByteSpan): StoredValue {
    if (typeof raw !== 'number' || !isArenaString(value)) {
      this.release(raw);
      return this.toStored(value);
    }
    return value instanceof ByteSpan
      ? this.arena.replaceBytes(raw, value.buf, value.start, value.end)
      : this.arena.replace(raw, value);
  }

  /** `value` as a key holds it: an arena slot for a string that fits, else the value. */
  private toStored(value: Value | ByteSpan): StoredValue {
    if (!isArenaString(value)) return value instanceof ByteSpan ? value.toString() : value;
    return value instanceof ByteSpan
      ? this.arena.storeBytes(value.buf, value.start, value.end)
      : this.arena.store(value);
  }

  private release(raw: StoredValue): void {
    if (typeof raw === 'number') this.arena.free(raw);
  }

  private releaseAll(t: KeyTable): void {
    for (let id = 0; id < t.idEnd; id++) if (t.has(id)) this.release(t.raw(id));
  }

  remove(db: number, key: string): boolean {
    const t = this.table(db);
    const id = t.find(key);
    if (id === -1) return false;
    this.beforeMutate(db, key, refOf(id, db));
    const raw = t.raw(id);
    t.remove(id);
    this.release(raw);
    const expires = this.expiresOf(db);
    if (expires.size !== 0) expires.delete(key);
    return true;
  }

  /** Sets or (with 0) clears the expiry of an existing key. */
  setExpiry(db: number, key: string, expireAtMs: number): void {
    assert(this.table(db).find(key) !== -1, 'an expiry belongs to an existing key');
    this.beforeMutate(db, key);
    this.trackExpiry(db, key, expireAtMs);
  }

  private trackExpiry(db: number, key: string, expireAtMs: number): void {
    assert(Number.isFinite(expireAtMs) && expireAtMs >= 0, 'expiry is a clock time or 0');
    const expires = this.expiresOf(db);
    if (expireAtMs !== 0) expires.set(key, expireAtMs);
    else if (expires.size !== 0) expires.delete(key); // no second hash lookup per write without TTLs
  }

  flush(db: number): void {
    const old = this.table(db);
    // A snapshot in progress still reads the flushed table (SnapshotCapture).
    if (this.capture?.tables.includes(old) === true) this.flushedWhileCapturing.push(old);
    else this.releaseAll(old);
    this.dbs[db] = new KeyTable();
    this.expires[db] = new Map();
    this.expireCursor = null;
    this.generation++;
  }

  /** The key's absolute expiry, or 0 when it has none (or does not exist). */
  expiryOf(db: number, key: string): number {
    const expires = this.expiresOf(db);
    return expires.size === 0 ? 0 : (expires.get(key) ?? 0);
  }

  /** Whether the key has an expiry at or before `nowMs` (a missing key has none). */
  isExpired(db: number, key: string, nowMs: number): boolean {
    const expires = this.expiresOf(db);
    if (expires.size === 0) return false;
    const at = expires.get(key);
    return at !== undefined && at <= nowMs;
  }

  /**
   * Up to `max` expired keys, examining a bounded number of keys with an
   * expiry per call and resuming where the previous call stopped.
   */
  expiredCandidates(nowMs: number, max: number): DbKey[] {
    const now = Math.max(nowMs, this.clockMs);
    const out: DbKey[] = [];
    let budget = Math.max(100, max * 20);
    let dbsVisited = 0;
    while (out.length < max && budget > 0 && dbsVisited < dbCount) {
      const db = this.expireCursorDb;
      // A db with no expiring key is passed over without an iterator: an
      // idle leader runs this every cycle, and most dbs have none.
      const expires = this.expiresOf(db);
      if (this.expireCursor === null && expires.size > 0) this.expireCursor = expires.entries();
      const step = this.expireCursor?.next();
      if (step === undefined || step.done === true) {
        this.expireCursor = null;
        this.expireCursorDb = (db + 1) % dbCount;
        dbsVisited++;
        continue;
      }
      budget--;
      const [key, at] = step.value;
      if (at <= now) out.push({ db, key });
    }
    return out;
  }

  stats(): DbStats[] {
    return this.dbs.map((t, db) => ({
      db,
      keys: t.size,
      expires: this.expiresOf(db).size,
    }));
  }

  /**
   * Approximate bytes of the data: the key tables, plus sampled value sizes
   * (up to 64 keys per db, first in id order) scaled by the key count, plus
   * the arena's free slots.
   */
  approxMemoryBytes(): number {
    let total = this.arena.freeBytes;
    for (const t of this.dbs) {
      total += t.reservedBytes;
      if (t.size === 0) continue;
      let sampled = 0;
      let bytes = 0;
      for (let id = 0; id < t.idEnd && sampled < 64; id++) {
        if (!t.has(id)) continue;
        const raw = t.raw(id);
        bytes += typeof raw === 'number' ? this.arena.slotBytes(raw) : approxValueBytes(raw);
        sampled++;
      }
      total += (bytes / sampled) * t.size;
    }
    return Math.round(total);
  }
}

function approxValueBytes(v: Value): number {
  if (typeof v === 'string') return 16 + v.length;
  let bytes = 64;
  let n = 0;
  const per = (s: string): number => 40 + s.length;
  if (v instanceof Map) {
    for (const [f, x] of v) {
      bytes += per(f) + per(x);
      if (++n >= 16) break;
    }
  } else if (v instanceof Set) {
    for (const x of v) {
      bytes += per(x);
      if (++n >= 16) break;
    }
  } else if (v instanceof Deque) {
    for (const x of v) {
      bytes += per(x) - 24;
      if (++n >= 16) break;
    }
  } else {
    for (const [x] of v.entries()) {
      bytes += per(x) + 120;
      if (++n >= 16) break;
    }
  }
  return n === 0 ? bytes : 64 + ((bytes - 64) / n) * v.size;
}
