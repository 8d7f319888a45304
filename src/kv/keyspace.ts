/**
 * The replicated data: 16 databases of keys, each key an entry with a value
 * and the log index of its last modification (revision), the absolute expiry
 * of the keys that have one (a map of its own, as Redis keeps), plus the
 * monotonic clock. Mutations go through `beforeMutate` so that an
 * in-progress snapshot can keep the value it has not written out yet.
 */
import { assert } from '../raft/assert.js';
import { type ArenaSlot, type ArenaStats, StringArena } from './arena.js';
import type { ByteWriter } from './bytes.js';
import { Deque } from './deque.js';
import type { DbKey } from './entry-codec.js';
import { dbCount } from './entry-codec.js';
import { ScanCursors } from './impl.js';
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

/**
 * A value as a key entry holds it: a string of up to `arenaValueMax` bytes
 * is a slot of the keyspace's arena (a number), anything else the value
 * itself. Only the Keyspace that made an entry can read it (`valueOf`).
 */
export type StoredValue = Value | ArenaSlot;

/**
 * One key. A class (not a closure or Buffer) to keep per-key overhead to one
 * small object: 48 bytes on a 64-bit heap. The expiry lives in
 * `Keyspace.expires`, not here, so keys without one (most) do not pay 8
 * bytes for it: 1M SETs of 100-byte values measured 117.6 heap bytes per
 * key with the field and 109.6 without.
 *
 * Made and changed only by the Keyspace (`put`, `overwrite`, `replaceValue`),
 * which owns the arena slot in `raw`.
 */
export class KeyEntry {
  /** Id of the snapshot that already wrote this entry out (see SnapshotCapture). */
  snapMark = 0;

  constructor(
    public raw: StoredValue,
    public revision: number,
  ) {}
}

/** A key's state as a snapshot keeps it: its value (a copy), revision and expiry (0 for none). */
interface SavedEntry {
  readonly value: Value;
  readonly revision: number;
  readonly expireAtMs: number;
}

/**
 * What a snapshot keeps for a key mutated before it was written: a deep copy
 * of its old entry and its expiry, or nothing (the key did not exist, or was
 * already written). Copying is O(size of that value) once per key per
 * snapshot; cloning a Map measured about 2x faster than encoding it on the spot.
 */
type Undo = SavedEntry | null;

/**
 * The copy-on-write view behind one snapshot. Starting one is O(dbs): it
 * keeps the live Map objects and an empty undo log per db. Before a key is
 * mutated, `preserve` saves its old entry (deep-copied) unless the snapshot has
 * already written it (marked by `snapMark`) or it did not exist at the start.
 * FLUSHDB/FLUSHALL replace the live Map, so the captured one is frozen from
 * then on and needs no undo.
 */
export class SnapshotCapture {
  readonly maps: readonly Map<string, KeyEntry>[];
  /** The expiry maps at the start; a flush replaces them with the key maps. */
  readonly expires: readonly Map<string, number>[];
  readonly undo: Map<string, Undo>[];

  constructor(
    readonly id: number,
    private readonly ks: Keyspace,
    readonly clockMs: number,
    readonly appliedIndex: number,
  ) {
    this.maps = [...ks.dbs];
    this.expires = [...ks.expires];
    this.undo = ks.dbs.map(() => new Map<string, Undo>());
  }

  preserve(db: number, key: string, live: Map<string, KeyEntry>): void {
    if (this.maps[db] !== live) return;
    const undo = this.undo[db] as Map<string, Undo>;
    if (undo.has(key)) return;
    const e = live.get(key);
    if (e === undefined || e.snapMark === this.id) {
      undo.set(key, null);
      return;
    }
    const value = cloneValue(this.ks.valueOf(e));
    undo.set(key, { value, revision: e.revision, expireAtMs: this.expiryAtStart(db, key) });
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
   * maps are walked outside the generator (`emitLive`, `emitSaved`): a
   * `for..of` over a Map inside it allocated an entry pair and an iterator
   * result per key, about 90 bytes (sampling heap profiler).
   */
  *emitRecords(emit: RecordSink, full: () => boolean): Generator<void> {
    for (let db = 0; db < this.maps.length; db++) {
      const live = (this.maps[db] as Map<string, KeyEntry>).entries();
      while (!this.emitLive(db, live, emit, full)) yield;
      const saved = (this.undo[db] as Map<string, Undo>).entries();
      while (!this.emitSaved(db, saved, emit, full)) yield;
    }
  }

  /** Emits the db's keys as of the start; false when `full()`, true at the end of the map. */
  private emitLive(
    db: number,
    it: Iterator<[string, KeyEntry]>,
    emit: RecordSink,
    full: () => boolean,
  ): boolean {
    const undo = this.undo[db] as Map<string, Undo>;
    for (;;) {
      const step = it.next();
      if (step.done === true) return true;
      const [key, e] = step.value;
      const u = undo.size === 0 ? undefined : undo.get(key);
      if (u !== undefined) {
        // Mutated since the start: its saved state, once (the second pass skips nulls).
        if (u === null) continue;
        undo.set(key, null);
        emit(db, key, u.value, u.revision, u.expireAtMs);
      } else {
        if (e.snapMark === this.id) continue;
        e.snapMark = this.id;
        emit(db, key, e.raw, e.revision, this.expiryAtStart(db, key));
      }
      if (full()) return false;
    }
  }

  /** Emits the saved keys not emitted yet (deleted since the start); as `emitLive`. */
  private emitSaved(
    db: number,
    it: Iterator<[string, Undo]>,
    emit: RecordSink,
    full: () => boolean,
  ): boolean {
    const undo = this.undo[db] as Map<string, Undo>;
    for (;;) {
      const step = it.next();
      if (step.done === true) return true;
      const [key, u] = step.value;
      if (u === null) continue;
      undo.set(key, null);
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

export interface DbStats {
  readonly db: number;
  readonly keys: number;
  readonly expires: number;
}

export class Keyspace {
  /** Live key maps, one per db. Replaced (not cleared) by flush; see SnapshotCapture. */
  readonly dbs: Map<string, KeyEntry>[];
  /**
   * Per db, the absolute expiry (state machine clock, ms) of each key that
   * has one. Invariant: every key here is in the db's key map.
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
  /** Bumped by flushes, so cached iterators (SCAN) know they are stale. */
  generation = 0;
  /** Holds the entries' short string values (see arena.ts); replaced whole by `tidyArena`. */
  private arena = new StringArena();
  /** Key maps flushed while a snapshot still reads them: their slots are freed when it ends. */
  private flushedWhileCapturing: Map<string, KeyEntry>[] = [];
  /** Times `tidyArena` moved the values into a fresh arena. */
  arenaCompactions = 0;
  /** Local SCAN iterator cache: not replicated, never affects state. */
  readonly scans = new ScanCursors();

  /** `arenaSlackBytes`: see tidyArena (tests lower it). */
  constructor(private readonly arenaSlackBytes = arenaSlackDefault) {
    this.dbs = Array.from({ length: dbCount }, () => new Map<string, KeyEntry>());
    this.expires = Array.from({ length: dbCount }, () => new Map<string, number>());
  }

  map(db: number): Map<string, KeyEntry> {
    const m = this.dbs[db];
    assert(m !== undefined, 'db index in range');
    return m;
  }

  private expiresOf(db: number): Map<string, number> {
    const m = this.expires[db];
    assert(m !== undefined, 'db index in range');
    return m;
  }

  /** Must be called before any change to the key's entry, value, expiry or existence. */
  beforeMutate(db: number, key: string): void {
    if (this.capture !== null) this.capture.preserve(db, key, this.map(db));
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
    for (const m of this.flushedWhileCapturing) this.releaseAll(m);
    this.flushedWhileCapturing = [];
  }

  get capturing(): boolean {
    return this.capture !== null;
  }

  /** The entry's value (a string read from the arena is a new copy). */
  valueOf(e: KeyEntry): Value {
    const raw = e.raw;
    return typeof raw === 'number' ? this.arena.read(raw) : raw;
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
    for (const m of this.dbs) {
      for (const e of m.values()) {
        if (typeof e.raw === 'number') e.raw = next.copyFrom(this.arena, e.raw);
      }
    }
    this.arena = next;
    this.arenaCompactions++;
  }

  arenaStats(): ArenaStats {
    return this.arena.stats();
  }

  /** The entry's value when it is a string, else undefined (no copy of other types). */
  stringOf(e: KeyEntry): string | undefined {
    const raw = e.raw;
    if (typeof raw === 'number') return this.arena.read(raw);
    return typeof raw === 'string' ? raw : undefined;
  }

  typeNameOf(e: KeyEntry): TypeName {
    const raw = e.raw;
    return typeof raw === 'number' ? 'string' : typeOf(raw);
  }

  /**
   * Installs a new entry for the key holding `value` (replacing any entry),
   * with `expireAtMs` (0: none). Returns the entry.
   */
  put(db: number, key: string, value: Value, revision: number, expireAtMs: number): KeyEntry {
    this.beforeMutate(db, key);
    return this.install(db, key, this.toStored(value), revision, expireAtMs);
  }

  /**
   * `put` of the string whose latin1 bytes are `src[start, end)`, copied
   * into the arena without a JS string in between when it fits (snapshot
   * restore: 1M values of 100 bytes loaded 0.27 s slower through strings).
   */
  putBytes(
    db: number,
    key: string,
    src: Buffer,
    start: number,
    end: number,
    revision: number,
    expireAtMs: number,
  ): KeyEntry {
    this.beforeMutate(db, key);
    const raw = StringArena.fits(end - start)
      ? this.arena.storeBytes(src, start, end)
      : src.toString('latin1', start, end);
    return this.install(db, key, raw, revision, expireAtMs);
  }

  /** Makes the key's entry hold `raw` (an arena slot it now owns), replacing any entry. */
  private install(
    db: number,
    key: string,
    raw: StoredValue,
    revision: number,
    expireAtMs: number,
  ): KeyEntry {
    const m = this.map(db);
    const old = m.get(key);
    if (old !== undefined) this.release(old.raw);
    const entry = new KeyEntry(raw, revision);
    m.set(key, entry);
    this.trackExpiry(db, key, expireAtMs);
    return entry;
  }

  /**
   * Gives an existing key a new value in place, keeping its entry object:
   * one hash lookup (the caller's) instead of two, and no new entry to
   * allocate and promote, for a SET over a key that exists.
   */
  overwrite(
    db: number,
    key: string,
    entry: KeyEntry,
    value: Value,
    revision: number,
    expireAtMs: number,
  ): void {
    this.beforeMutate(db, key);
    entry.raw = this.swapStored(entry.raw, value);
    entry.revision = revision;
    this.trackExpiry(db, key, expireAtMs);
  }

  /**
   * Gives an entry a new value in place; its revision and expiry are the
   * caller's. Call `beforeMutate` first (lookupForWrite does).
   */
  replaceValue(entry: KeyEntry, value: Value): void {
    entry.raw = this.swapStored(entry.raw, value);
  }

  /** `value` stored in place of `raw`, reusing its arena slot when the size allows. */
  private swapStored(raw: StoredValue, value: Value): StoredValue {
    if (typeof value === 'string' && StringArena.fits(value.length)) {
      return typeof raw === 'number' ? this.arena.replace(raw, value) : this.arena.store(value);
    }
    this.release(raw);
    return value;
  }

  private toStored(value: Value): StoredValue {
    return typeof value === 'string' && StringArena.fits(value.length)
      ? this.arena.store(value)
      : value;
  }

  private release(raw: StoredValue): void {
    if (typeof raw === 'number') this.arena.free(raw);
  }

  private releaseAll(m: Map<string, KeyEntry>): void {
    for (const e of m.values()) this.release(e.raw);
  }

  remove(db: number, key: string): boolean {
    const m = this.map(db);
    const e = m.get(key);
    if (e === undefined) return false;
    this.beforeMutate(db, key);
    m.delete(key);
    this.release(e.raw);
    const expires = this.expiresOf(db);
    if (expires.size !== 0) expires.delete(key);
    return true;
  }

  /** Sets or (with 0) clears the expiry of an existing key. */
  setExpiry(db: number, key: string, expireAtMs: number): void {
    assert(this.map(db).has(key), 'an expiry belongs to an existing key');
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
    const old = this.map(db);
    // A snapshot in progress still reads the flushed map (SnapshotCapture).
    if (this.capture?.maps.includes(old) === true) this.flushedWhileCapturing.push(old);
    else this.releaseAll(old);
    this.dbs[db] = new Map();
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
    return this.dbs.map((m, db) => ({
      db,
      keys: m.size,
      expires: this.expiresOf(db).size,
    }));
  }

  /**
   * Approximate heap bytes of the data: sampled entry sizes (up to 64 keys per
   * db, first in iteration order) scaled by the key count.
   */
  approxMemoryBytes(): number {
    let total = 0;
    for (const m of this.dbs) {
      if (m.size === 0) continue;
      let sampled = 0;
      let bytes = 0;
      for (const [k, e] of m) {
        const raw = e.raw;
        const value = typeof raw === 'number' ? this.arena.slotBytes(raw) : approxValueBytes(raw);
        bytes += 120 + k.length + value;
        if (++sampled >= 64) break;
      }
      total += (bytes / sampled) * m.size;
    }
    return Math.round(total + this.arena.freeBytes);
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
