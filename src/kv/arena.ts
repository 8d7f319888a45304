/**
 * Off-heap storage for the keyspace's short string values.
 *
 * Why: a JS string value outlives the young generation whenever keys are
 * many. Under SET load over 100,000 keys a value lives about 1.5 s before
 * it is overwritten, so V8 copied each 100-byte value twice (to survivor
 * space, then to the old generation) and then swept it there: about 110 of
 * the ~180 bytes per SET that a follower's scavenges kept alive. Storing a
 * value of up to `arenaValueMax` bytes here instead costs one copy of its
 * bytes and no garbage-collected object at all. (Measured with a build that
 * stored a constant instead of each value: follower collection time fell
 * from 120 to 40 ms per second and pipelined SET rose about 15%.)
 *
 * Layout: pages of up to 1 MiB (Buffers outside the V8 heap), each cut
 * into slots of one size: a u32 length, then the value's latin1 bytes,
 * rounded up to 8 bytes. A slot's address is a small integer (page << 17 |
 * offset / 8), so a key entry holds it in a field without a heap object,
 * and its size is its page's: an overwrite by a value of the same size
 * class writes the slot without reading it first (reading its length
 * missed the cache, 6.5% of a follower's main thread under pipelined SETs
 * over 100,000 keys). Freed slots go to a free list per size; a size's
 * pages start at 16 KiB and double up to 1 MiB, so rare sizes hold little.
 *
 * A slot freed twice, or read after it was freed, fails loudly: freeing
 * writes a poison length that no value can have.
 */
import { Buffer } from 'node:buffer';
import { fail } from '../raft/assert.js';
import { type ByteWriter, copyRange, viewOf, writeLatin1 } from './bytes.js';
import { latin1Slice } from './latin1.js';

/** Values up to this many bytes live in the arena; longer ones stay JS strings. */
export const arenaValueMax = 16 * 1024;

/** A slot's address: an integer in [0, 2^31), an SMI in V8. */
export type ArenaSlot = number;

const unitShift = 3; // slots are whole 8-byte units
const pageShift = 17; // units per page: 2^17 * 8 bytes = 1 MiB
const pageUnitsMax = 1 << pageShift;
const pageBytesMax = pageUnitsMax << unitShift;
const pageIndexMax = (1 << (31 - pageShift)) - 1; // addresses stay below 2^31
/** A size's first page: small, so a keyspace with few values (or sizes) stays small. */
const firstPageBytes = 16 * 1024;
/** A size's pages hold at least this many slots. */
const pageSlotsMin = 8;
const headerBytes = 4;
const poison = 0xffffffff;
const unitsMax = (arenaValueMax + headerBytes + 7) >>> unitShift;

function unitsFor(length: number): number {
  return (length + headerBytes + 7) >>> unitShift;
}

export interface ArenaStats {
  /** Bytes of pages held. */
  readonly reservedBytes: number;
  /** Bytes of slots holding values (headers and padding included). */
  readonly liveBytes: number;
  /** Bytes of slots on the free lists. */
  readonly freeBytes: number;
}

export class StringArena {
  private readonly pages: Buffer[] = [];
  /** A DataView over each page, for snapshots' word copies (`writeTo`). */
  private readonly views: DataView[] = [];
  /** The slot size (units) of each page. */
  private readonly pageUnits: number[] = [];
  /** Per size (units): the page slots are cut from, or -1; where the next begins; its end. */
  private readonly cutPage: number[] = new Array<number>(unitsMax + 1).fill(-1);
  private readonly cutAt: number[] = new Array<number>(unitsMax + 1).fill(0);
  private readonly cutEnd: number[] = new Array<number>(unitsMax + 1).fill(0);
  /** Per size: the bytes of its last page (the next is twice as big, up to 1 MiB). */
  private readonly lastPageBytes: number[] = new Array<number>(unitsMax + 1).fill(0);
  /** Free slots by their size in units (index 0 unused). */
  private readonly freeLists: (ArenaSlot[] | undefined)[] = [];
  private reserved = 0;
  private freed = 0;
  private live = 0;

  /** Whether a string of this length is stored here (else it stays a JS string). */
  static fits(length: number): boolean {
    return length <= arenaValueMax;
  }

  /** Stores `s` (latin1, at most `arenaValueMax` long) in a new slot. */
  store(s: string): ArenaSlot {
    const slot = this.alloc(unitsFor(s.length));
    this.write(slot, s);
    return slot;
  }

  /** Stores the latin1 bytes `src[start, end)` (at most `arenaValueMax`) in a new slot. */
  storeBytes(src: Uint8Array, start: number, end: number): ArenaSlot {
    const slot = this.alloc(unitsFor(end - start));
    this.writeBytes(slot, src, start, end);
    return slot;
  }

  /** `replace` of the latin1 bytes `src[start, end)`. */
  replaceBytes(slot: ArenaSlot, src: Uint8Array, start: number, end: number): ArenaSlot {
    if (this.unitsOf(slot) === unitsFor(end - start)) {
      this.writeBytes(slot, src, start, end);
      return slot;
    }
    this.free(slot);
    return this.storeBytes(src, start, end);
  }

  /**
   * Stores `s` in place of `slot`'s value: in the same slot when it has the
   * same size, else in a new one (and frees the old). Returns the slot.
   */
  replace(slot: ArenaSlot, s: string): ArenaSlot {
    if (this.unitsOf(slot) === unitsFor(s.length)) {
      this.write(slot, s);
      return slot;
    }
    this.free(slot);
    return this.store(s);
  }

  private writeBytes(slot: ArenaSlot, src: Uint8Array, start: number, end: number): void {
    const page = this.pageOf(slot);
    const at = offsetOf(slot);
    page.writeUInt32LE(end - start, at);
    copyRange(page, at + headerBytes, src, start, end);
  }

  /** Stores a copy of `slot`'s value from another arena. */
  copyFrom(other: StringArena, slot: ArenaSlot): ArenaSlot {
    const length = other.length(slot);
    const to = this.alloc(unitsFor(length));
    const src = other.pageOf(slot);
    const at = offsetOf(slot);
    src.copy(this.pageOf(to), offsetOf(to), at, at + headerBytes + length);
    return to;
  }

  read(slot: ArenaSlot): string {
    const page = this.pageOf(slot);
    const at = offsetOf(slot) + headerBytes;
    return latin1Slice(page, at, at + this.length(slot));
  }

  /** The value's length in bytes. */
  length(slot: ArenaSlot): number {
    const page = this.pageOf(slot);
    const at = offsetOf(slot);
    const length = page.readUInt32LE(at);
    if (length === poison) fail(`arena slot ${slot} read after it was freed`);
    return length;
  }

  /** The slot's bytes, header and padding included. */
  slotBytes(slot: ArenaSlot): number {
    return this.unitsOf(slot) << unitShift;
  }

  /**
   * Writes the value as `ByteWriter.str` writes a string: a u32 length, then
   * its bytes. The slot holds exactly that (its header is the length, u32
   * little-endian), so it is one copy.
   */
  writeTo(slot: ArenaSlot, w: ByteWriter): void {
    const length = this.length(slot);
    const at = offsetOf(slot);
    w.copyInView(this.views[slot >>> pageShift] as DataView, at, at + headerBytes + length);
  }

  free(slot: ArenaSlot): void {
    const units = this.unitsOf(slot);
    if (unitsFor(this.length(slot)) !== units) {
      fail(`arena slot ${slot} holds a length its page's slot size (${units} units) cannot`);
    }
    this.pageOf(slot).writeUInt32LE(poison, offsetOf(slot));
    this.live -= units << unitShift;
    this.pushFree(slot, units);
  }

  stats(): ArenaStats {
    return { reservedBytes: this.reserved, liveBytes: this.live, freeBytes: this.freed };
  }

  get liveBytes(): number {
    return this.live;
  }

  get freeBytes(): number {
    return this.freed;
  }

  private alloc(units: number): ArenaSlot {
    const list = this.freeLists[units];
    if (list !== undefined && list.length > 0) {
      this.freed -= units << unitShift;
      this.live += units << unitShift;
      return list.pop() as ArenaSlot;
    }
    if ((this.cutAt[units] as number) + units > (this.cutEnd[units] as number)) this.addPage(units);
    const at = this.cutAt[units] as number;
    this.cutAt[units] = at + units;
    this.live += units << unitShift;
    return ((this.cutPage[units] as number) << pageShift) | at;
  }

  private pushFree(slot: ArenaSlot, units: number): void {
    this.freed += units << unitShift;
    let list = this.freeLists[units];
    if (list === undefined) {
      list = [];
      this.freeLists[units] = list;
    }
    list.push(slot);
  }

  /** Starts a new page of `units`-sized slots (what is left of the last one stays unused). */
  private addPage(units: number): void {
    if (this.pages.length > pageIndexMax) {
      fail(`the string arena is full (${this.reserved} bytes); the node needs more memory`);
    }
    const slotBytes = units << unitShift;
    const previous = this.lastPageBytes[units] as number;
    const bytes = Math.min(
      pageBytesMax,
      Math.max(previous * 2, firstPageBytes, slotBytes * pageSlotsMin),
    );
    // Outside the Buffer pool: a page lives as long as the keyspace.
    const page = Buffer.allocUnsafeSlow(bytes);
    this.pages.push(page);
    this.views.push(viewOf(page));
    this.pageUnits.push(units);
    this.reserved += bytes;
    this.lastPageBytes[units] = bytes;
    this.cutPage[units] = this.pages.length - 1;
    this.cutAt[units] = 0;
    this.cutEnd[units] = Math.floor(bytes / slotBytes) * units;
  }

  /** The slot size, in units, of the slot's page. */
  private unitsOf(slot: ArenaSlot): number {
    const units = this.pageUnits[slot >>> pageShift];
    if (units === undefined) fail(`arena slot ${slot} is outside the arena`);
    return units;
  }

  private pageOf(slot: ArenaSlot): Buffer {
    const page = this.pages[slot >>> pageShift];
    if (page === undefined) fail(`arena slot ${slot} is outside the arena`);
    return page;
  }

  private write(slot: ArenaSlot, s: string): void {
    const page = this.pageOf(slot);
    const at = offsetOf(slot);
    page.writeUInt32LE(s.length, at);
    writeLatin1(page, at + headerBytes, s);
  }
}

function offsetOf(slot: ArenaSlot): number {
  return (slot & (pageUnitsMax - 1)) << unitShift;
}
