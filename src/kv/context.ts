/**
 * What a command runs against: one db of the keyspace at one instant, in
 * write mode (applying a log entry: may mutate, deletes expired keys it
 * meets) or read mode (never mutates; expired keys are just invisible).
 */
import { assert } from '../raft/assert.js';
import { Prng } from '../raft/prng.js';
import { Deque } from './deque.js';
import { fail, msg } from './errors.js';
import type { HashValue, KeyRef, Keyspace, SetValue, Value } from './keyspace.js';
import { ZSet } from './zset.js';

export interface Published {
  readonly channel: string;
  readonly message: string;
}

/**
 * Where a command's random choices come from: the seed of the entry being
 * applied (the same on every node), or the caller's generator for a read.
 */
export type RandomSource = number | (() => number);

export class Ctx {
  /** Made on the first random choice: most entries make none. */
  private prng: Prng | undefined;
  /** PUBLISH messages of the entry, in order; null until the first. */
  published: Published[] | null = null;

  constructor(
    readonly ks: Keyspace,
    public db: number,
    /** The state machine clock (write) or max(node clock, applied clock) (read). */
    readonly nowMs: number,
    /** Log index of the entry being applied; 0 in read mode. */
    readonly index: number,
    readonly write: boolean,
    private readonly randomSource: RandomSource,
  ) {}

  /** Uniform in [0, 1). */
  random(): number {
    const source = this.randomSource;
    if (typeof source === 'function') return source();
    this.prng ??= new Prng(source);
    return this.prng.float();
  }

  /** A uniform integer in [0, n). */
  randomInt(n: number): number {
    return Math.floor(this.random() * n);
  }

  publish(message: Published): void {
    assert(this.write, 'publishing only while applying an entry');
    if (this.published === null) this.published = [message];
    else this.published.push(message);
  }

  /** The key's ref, or undefined when missing or expired. */
  lookup(key: string, db: number = this.db): KeyRef | undefined {
    const e = this.ks.find(db, key);
    if (e === undefined) return undefined;
    if (this.ks.isExpired(db, key, this.nowMs)) {
      if (this.write) this.ks.remove(db, key);
      return undefined;
    }
    return e;
  }

  /** Like lookup, and records the key as about to be mutated. */
  lookupForWrite(key: string, db: number = this.db): KeyRef | undefined {
    assert(this.write, 'mutation only while applying an entry');
    const e = this.lookup(key, db);
    if (e !== undefined) this.ks.beforeMutate(db, key, e);
    return e;
  }

  private typed<T extends Value>(
    key: string,
    forWrite: boolean,
    is: (v: Value) => v is T,
  ): [KeyRef, T] | undefined {
    const e = forWrite ? this.lookupForWrite(key) : this.lookup(key);
    if (e === undefined) return undefined;
    const v = this.ks.valueOf(e);
    if (!is(v)) fail(msg.wrongType);
    return [e, v];
  }

  str(key: string, forWrite = false): [KeyRef, string] | undefined {
    return this.typed(key, forWrite, (v): v is string => typeof v === 'string');
  }

  hash(key: string, forWrite = false): [KeyRef, HashValue] | undefined {
    return this.typed(key, forWrite, (v): v is HashValue => v instanceof Map);
  }

  set(key: string, forWrite = false): [KeyRef, SetValue] | undefined {
    return this.typed(key, forWrite, (v): v is SetValue => v instanceof Set);
  }

  list(key: string, forWrite = false): [KeyRef, Deque] | undefined {
    return this.typed(key, forWrite, (v): v is Deque => v instanceof Deque);
  }

  zset(key: string, forWrite = false): [KeyRef, ZSet] | undefined {
    return this.typed(key, forWrite, (v): v is ZSet => v instanceof ZSet);
  }

  /**
   * Like `store`, for a key whose ref `lookupForWrite` just returned (or
   * undefined): rewrites that key's record in place (see Keyspace.overwrite).
   */
  storeOver(key: string, old: KeyRef | undefined, value: Value, expireAtMs = 0): KeyRef {
    if (old === undefined) return this.store(key, value, expireAtMs);
    assert(this.write, 'mutation only while applying an entry');
    this.ks.overwrite(this.db, key, old, value, this.index, expireAtMs);
    return old;
  }

  /** Stores a value under key, replacing whatever was there. Returns the key's ref. */
  store(key: string, value: Value, expireAtMs = 0, db: number = this.db): KeyRef {
    assert(this.write, 'mutation only while applying an entry');
    return this.ks.put(db, key, value, this.index, expireAtMs);
  }

  /**
   * Gives the key that `str(key, true)` (or another typed lookup for
   * write) returned a new value in place, and bumps its revision.
   */
  update(key: string, e: KeyRef, value: Value): void {
    assert(this.write, 'mutation only while applying an entry');
    this.ks.replaceValue(e, value);
    this.touched(key, e);
  }

  /**
   * Records that the key changed: bumps its revision, and deletes the key
   * when its collection became empty (Redis never keeps empty collections).
   */
  touched(key: string, e: KeyRef, db: number = this.db): void {
    assert(this.write, 'mutation only while applying an entry');
    this.ks.setRevision(e, this.index);
    if (this.ks.isEmptyCollection(e)) this.ks.remove(db, key);
  }

  /** Deletes a key if it exists (and is not expired); returns whether it did. */
  del(key: string, db: number = this.db): boolean {
    assert(this.write, 'mutation only while applying an entry');
    if (this.lookup(key, db) === undefined) return false;
    return this.ks.remove(db, key);
  }

  /** The key's absolute expiry, or 0 for none; look the key up first (it may be expired). */
  expireAt(key: string, db: number = this.db): number {
    return this.ks.expiryOf(db, key);
  }

  setExpiry(key: string, e: KeyRef, expireAtMs: number): void {
    assert(this.write, 'mutation only while applying an entry');
    this.ks.setExpiry(this.db, key, expireAtMs);
    this.ks.setRevision(e, this.index);
  }
}
