/**
 * One db's keys, outside the JS heap: an open-addressing hash index over
 * fixed-size records, each holding a key's bytes, its value's arena slot,
 * its revision and its snapshot mark.
 *
 * Why: a write looks its key up once on every node. In a `Map<string,
 * KeyEntry>` that lookup reads a hash bucket, a chain entry, the stored key
 * string (its hash, then its characters) and the entry object: four cache
 * misses per write once keys are many, and under pipelined SETs over
 * 100,000 keys `Map.get` was 15% of the leader's main thread and 20-23% of
 * a follower's (`perf record`). Here a lookup reads one index pair (hash
 * and record id, eight to a cache line, linear probing) and one 64-byte
 * record that holds the key inline, and no garbage-collected object exists
 * per key. Measured under pipelined SETs over 100,000 keys: the lookup's
 * share of a follower's main thread fell from 22% to 11% (`perf record`),
 * and with 1M keys the JS heap from 121 to 17 MiB, the tables taking 80 MiB (by their sizes)
 * outside it.
 *
 * A key is named by its record id, which never changes while the key
 * exists: iteration in id order (SCAN, snapshots) sees every key that
 * exists throughout exactly once, however the index grows or shrinks.
 * Removing a key frees its id for a later key. Record memory is kept (for
 * reuse) until the table is replaced (FLUSHDB); the index shrinks with the
 * key count. The records are one Buffer, so a db holds at most
 * `buffer.constants.MAX_LENGTH / 64` keys (67M on Node 20; a Map stopped
 * at 2^24, 16.7M).
 *
 * Keys are latin1 (the RESP parser's and codecs' decoding); one longer than
 * `inlineKeyMax` bytes, or holding a character above 0xff, lives as a JS
 * string beside its record. Values that are not arena slots (collections,
 * long strings) live in `objects`, by id.
 *
 * The hash is seeded per table at random, so which keys collide differs
 * between tables and processes (as V8 seeds its own string hash). Nothing
 * replicated depends on index order: iteration is by id.
 */
import { Buffer } from 'node:buffer';
import { assert } from '../raft/assert.js';
import type { ArenaSlot } from './arena.js';
import { type ByteWriter, writeLatin1 } from './bytes.js';
import type { Value } from './keyspace.js';
import { latin1Slice } from './latin1.js';

/** A key's value as its record holds it: an arena slot or the value itself. */
export type StoredValue = Value | ArenaSlot;

const recordBytes = 64;
const recordInts = recordBytes / 4;
/** Int32 fields of a record. */
const fKeyLength = 0; // inline key's length; `spilledKey` or `freeRecord` otherwise
const fHash = 1;
const fSlot = 2; // arena slot, or `objectValue`; a free record: the next free id, or -1
const fMark = 3;
/** Float64 field (index within the record's eight). */
const fRevision = 2;
const keyOffset = 24;
/** Longest key held inline in its record. */
export const inlineKeyMax = recordBytes - keyOffset;
const freeRecord = -1;
const spilledKey = -2;
const objectValue = -1;

const indexSlotsMin = 16;
const recordsMin = 8;

function randomSeed(): number {
  return (Math.random() * 0x100000000) | 0;
}

/** Whether every character of `s` is one latin1 byte. */
function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

export class KeyTable {
  /** Pairs (hash, id + 1); id + 1 of 0 marks an empty slot. Power-of-two slot count. */
  private index: Int32Array;
  private mask: number;
  private bytes: Buffer;
  private ints: Int32Array;
  private floats: Float64Array;
  /** Ids in [0, idEnd) have been used; the others never were. */
  private end = 0;
  private freeHead = -1;
  private count = 0;
  /** Keys not held inline, by id. */
  private readonly spilled = new Map<number, string>();
  /** Values that are not arena slots, by id. */
  private readonly objects: (Value | undefined)[] = [];
  private readonly seed = randomSeed();

  constructor() {
    this.index = new Int32Array(2 * indexSlotsMin);
    this.mask = indexSlotsMin - 1;
    this.bytes = Buffer.alloc(0);
    this.ints = new Int32Array(0);
    this.floats = new Float64Array(0);
    this.growRecords(recordsMin);
  }

  get size(): number {
    return this.count;
  }

  /** Ids below this may name keys (`has`); iterate [0, idEnd). */
  get idEnd(): number {
    return this.end;
  }

  /** Bytes held: the index and the records (keys and values' slots, not values). */
  get reservedBytes(): number {
    return this.index.byteLength + this.bytes.length;
  }

  /** The id of `key`'s record, or -1. */
  find(key: string): number {
    const h = this.hash(key);
    const index = this.index;
    const mask = this.mask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const id1 = index[2 * i + 1] as number;
      if (id1 === 0) return -1;
      if (index[2 * i] === h && this.keyEquals(id1 - 1, key)) return id1 - 1;
    }
  }

  /** Adds `key` (absent) holding `raw`, with snapshot mark `mark`; returns its id. */
  insert(key: string, raw: StoredValue, revision: number, mark = 0): number {
    if ((this.count + 1) * 4 > (this.mask + 1) * 3) this.rehash((this.mask + 1) * 2);
    let id = this.freeHead;
    if (id !== -1) {
      this.freeHead = this.ints[id * recordInts + fSlot] as number;
    } else {
      if (this.end * recordBytes === this.bytes.length) this.growRecords(this.end * 2);
      id = this.end++;
    }
    const h = this.hash(key);
    const base = id * recordInts;
    this.ints[base + fHash] = h;
    this.ints[base + fMark] = mark;
    this.floats[id * 8 + fRevision] = revision;
    if (key.length <= inlineKeyMax && isLatin1(key)) {
      this.ints[base + fKeyLength] = key.length;
      writeLatin1(this.bytes, id * recordBytes + keyOffset, key);
    } else {
      this.ints[base + fKeyLength] = spilledKey;
      this.spilled.set(id, key);
    }
    this.setRaw(id, raw);
    this.place(h, id);
    this.count++;
    return id;
  }

  /** Removes the key with record `id` (its value is the caller's to release). */
  remove(id: number): void {
    assert(this.has(id), 'removing a live key');
    const base = id * recordInts;
    const index = this.index;
    const mask = this.mask;
    let i = (this.ints[base + fHash] as number) & mask;
    while (index[2 * i + 1] !== id + 1) {
      assert(index[2 * i + 1] !== 0, 'a live key is in the index');
      i = (i + 1) & mask;
    }
    this.unplace(i);
    if (this.ints[base + fKeyLength] === spilledKey) this.spilled.delete(id);
    if (this.ints[base + fSlot] === objectValue) this.objects[id] = undefined;
    this.ints[base + fKeyLength] = freeRecord;
    this.ints[base + fSlot] = this.freeHead;
    this.freeHead = id;
    this.count--;
    const slots = mask + 1;
    if (slots > indexSlotsMin && this.count * 8 < slots) this.rehash(slots / 2);
  }

  /** Whether `id` names a key now. */
  has(id: number): boolean {
    return id >= 0 && id < this.end && this.ints[id * recordInts + fKeyLength] !== freeRecord;
  }

  key(id: number): string {
    const length = this.ints[id * recordInts + fKeyLength] as number;
    if (length >= 0) {
      const at = id * recordBytes + keyOffset;
      return latin1Slice(this.bytes, at, at + length);
    }
    assert(length === spilledKey, 'reading the key of a live record');
    return this.spilled.get(id) as string;
  }

  /**
   * Writes record `id`'s key as `ByteWriter.str` writes a string, from the
   * table's bytes: a snapshot writes every key without making its string.
   */
  writeKey(id: number, w: ByteWriter): void {
    const length = this.ints[id * recordInts + fKeyLength] as number;
    if (length >= 0) {
      const at = id * recordBytes + keyOffset;
      w.u32(length);
      w.copyIn(this.bytes, at, at + length);
      return;
    }
    assert(length === spilledKey, 'writing the key of a live record');
    w.str(this.spilled.get(id) as string);
  }

  raw(id: number): StoredValue {
    const slot = this.ints[id * recordInts + fSlot] as number;
    return slot === objectValue ? (this.objects[id] as Value) : slot;
  }

  setRaw(id: number, raw: StoredValue): void {
    const at = id * recordInts + fSlot;
    if (typeof raw === 'number') {
      assert(raw >= 0, 'an arena slot is a non-negative integer');
      if (this.ints[at] === objectValue) this.objects[id] = undefined;
      this.ints[at] = raw;
    } else {
      this.ints[at] = objectValue;
      this.objects[id] = raw;
    }
  }

  revision(id: number): number {
    return this.floats[id * 8 + fRevision] as number;
  }

  setRevision(id: number, revision: number): void {
    this.floats[id * 8 + fRevision] = revision;
  }

  /** Id of the snapshot that already wrote this key out (see SnapshotCapture). */
  mark(id: number): number {
    return this.ints[id * recordInts + fMark] as number;
  }

  setMark(id: number, mark: number): void {
    this.ints[id * recordInts + fMark] = mark;
  }

  private hash(key: string): number {
    // Multiply-xorshift per character, then murmur3's finalizer.
    let h = this.seed ^ key.length;
    for (let i = 0; i < key.length; i++) {
      h = Math.imul(h ^ key.charCodeAt(i), 0x5bd1e995);
      h ^= h >>> 15;
    }
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  private keyEquals(id: number, key: string): boolean {
    const length = this.ints[id * recordInts + fKeyLength] as number;
    if (length !== key.length) return length === spilledKey && this.spilled.get(id) === key;
    const bytes = this.bytes;
    const at = id * recordBytes + keyOffset;
    for (let i = 0; i < length; i++) if (bytes[at + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  /** Puts `id` in the first empty slot of its probe sequence. */
  private place(h: number, id: number): void {
    const index = this.index;
    const mask = this.mask;
    let i = h & mask;
    while (index[2 * i + 1] !== 0) i = (i + 1) & mask;
    index[2 * i] = h;
    index[2 * i + 1] = id + 1;
  }

  /** Empties slot `i`, shifting later members of its cluster back (no tombstones). */
  private unplace(i: number): void {
    const index = this.index;
    const mask = this.mask;
    for (let j = (i + 1) & mask; index[2 * j + 1] !== 0; j = (j + 1) & mask) {
      const home = (index[2 * j] as number) & mask;
      // Slot j's member may fill the hole at i unless its home lies in (i, j].
      const homeAfterHole = i <= j ? home > i && home <= j : home > i || home <= j;
      if (homeAfterHole) continue;
      index[2 * i] = index[2 * j] as number;
      index[2 * i + 1] = index[2 * j + 1] as number;
      i = j;
    }
    index[2 * i] = 0;
    index[2 * i + 1] = 0;
  }

  private rehash(slots: number): void {
    assert(slots >= indexSlotsMin && (slots & (slots - 1)) === 0, 'index size a power of two');
    assert(this.count * 4 <= slots * 3, 'the index keeps a quarter empty');
    this.index = new Int32Array(2 * slots);
    this.mask = slots - 1;
    for (let id = 0; id < this.end; id++) {
      if (this.has(id)) this.place(this.ints[id * recordInts + fHash] as number, id);
    }
  }

  private growRecords(records: number): void {
    const bytes = Buffer.allocUnsafeSlow(Math.max(recordsMin, records) * recordBytes);
    this.bytes.copy(bytes, 0, 0, this.end * recordBytes);
    this.bytes = bytes;
    this.ints = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    this.floats = new Float64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8);
  }
}
