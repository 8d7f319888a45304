/**
 * Configurations known to have no completion: Lowe's (2017) memoization, with
 * a dominance twist for unknown ops.
 *
 * A config is (linearized ok ops, linearized unknown ops, state). If
 * (ok, U, s) failed, then (ok, U', s) fails for every U' ⊇ U: it has the same
 * obligations and fewer optional ops left to use. Because the search tries ok
 * ops before unknown ones, the configs that use fewer unknown ops are usually
 * finished first, so this prunes most of the ways of spending unknown ops that
 * turn out to be useless.
 *
 * Entries are recorded when a config is abandoned, never while it is still on
 * the search path. An exact match with a config on the path cannot happen,
 * because the linearized set grows strictly along the path.
 *
 * Layout: open addressing over groups keyed by (ok set, state), each group
 * holding a linked list of unknown sets, all in flat typed arrays so a lookup
 * allocates nothing (it runs once per search step).
 */
import { assert } from '../../src/raft/assert.js';
import * as problem from './wgl-problem.js';

// Module-local copies, read once: see "Hot constants" in wgl-problem.ts.
const { NONE } = problem;

export class FailedConfigs {
  private readonly okWords: number;
  private readonly unknownWords: number;
  private readonly bytesMax: number;
  /** Group index + 1 per slot, 0 when empty. Invariant: groupCount <= slots.length / 2. */
  private slots = new Int32Array(1024);
  private groupHashes = new Uint32Array(512);
  private groupStates = new Int32Array(512);
  /** First entry of each group's list, NONE when empty. */
  private groupFirst = new Int32Array(512);
  private groupOkBits: Uint32Array;
  private groupCount = 0;
  private entryNext = new Int32Array(512);
  private entryUnknownBits: Uint32Array;
  private entryCount = 0;

  constructor(okWords: number, unknownWords: number, bytesMax: number) {
    assert(okWords >= 1 && unknownWords >= 1, 'bitsets have at least one word');
    this.okWords = okWords;
    this.unknownWords = unknownWords;
    this.bytesMax = bytesMax;
    this.groupOkBits = new Uint32Array(512 * okWords);
    this.entryUnknownBits = new Uint32Array(512 * unknownWords);
  }

  /** True when a recorded failure has this ok set and state, and a subset of these unknown ops. */
  dominates(ok: Uint32Array, unknown: Uint32Array, hash: number, state: number): boolean {
    const group = this.findGroup(ok, hash, state);
    if (group === NONE) return false;
    for (let e = this.groupFirst[group] ?? NONE; e !== NONE; e = this.entryNext[e] ?? NONE) {
      if (this.isSubset(e, unknown)) return true;
    }
    return false;
  }

  /** Records a failed config. Past `bytesMax` it forgets instead: sound, only slower. */
  record(ok: Uint32Array, unknown: Uint32Array, hash: number, state: number): void {
    if (this.bytes() > this.bytesMax) return;
    let group = this.findGroup(ok, hash, state);
    if (group === NONE) group = this.addGroup(ok, hash, state);
    if (this.entryCount === this.entryNext.length) this.growEntries();
    const entry = this.entryCount++;
    this.entryUnknownBits.set(unknown, entry * this.unknownWords);
    this.entryNext[entry] = this.groupFirst[group] ?? NONE;
    this.groupFirst[group] = entry;
  }

  private findGroup(ok: Uint32Array, hash: number, state: number): number {
    const mask = this.slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const group = (this.slots[slot] ?? 0) - 1;
      if (group === NONE) return NONE;
      if (
        this.groupHashes[group] === hash &&
        this.groupStates[group] === state &&
        this.sameOk(group, ok)
      ) {
        return group;
      }
    }
  }

  private addGroup(ok: Uint32Array, hash: number, state: number): number {
    if (2 * (this.groupCount + 1) > this.slots.length) this.growGroups();
    const group = this.groupCount++;
    this.groupHashes[group] = hash;
    this.groupStates[group] = state;
    this.groupFirst[group] = NONE;
    this.groupOkBits.set(ok, group * this.okWords);
    this.claimSlot(group, hash);
    return group;
  }

  /** Linear probing: the first empty slot from the hash's home slot. */
  private claimSlot(group: number, hash: number): void {
    const mask = this.slots.length - 1;
    let slot = hash & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = group + 1;
  }

  private sameOk(group: number, ok: Uint32Array): boolean {
    const base = group * this.okWords;
    for (let w = 0; w < this.okWords; w++) {
      if (this.groupOkBits[base + w] !== ok[w]) return false;
    }
    return true;
  }

  private isSubset(entry: number, unknown: Uint32Array): boolean {
    const base = entry * this.unknownWords;
    for (let w = 0; w < this.unknownWords; w++) {
      if (((this.entryUnknownBits[base + w] ?? 0) & ~(unknown[w] ?? 0)) !== 0) return false;
    }
    return true;
  }

  /** Approximate: the bitsets, plus a per-slot allowance for the other columns. */
  private bytes(): number {
    return this.groupOkBits.byteLength + this.entryUnknownBits.byteLength + 20 * this.slots.length;
  }

  private growGroups(): void {
    const capacity = this.groupHashes.length * 2;
    this.groupHashes = grown(this.groupHashes, new Uint32Array(capacity));
    this.groupStates = grown(this.groupStates, new Int32Array(capacity));
    this.groupFirst = grown(this.groupFirst, new Int32Array(capacity));
    this.groupOkBits = grown(this.groupOkBits, new Uint32Array(capacity * this.okWords));
    // Slot positions depend on the table size, so every group is placed anew.
    this.slots = new Int32Array(capacity * 2);
    for (let group = 0; group < this.groupCount; group++) {
      this.claimSlot(group, this.groupHashes[group] ?? 0);
    }
  }

  private growEntries(): void {
    const capacity = this.entryNext.length * 2;
    this.entryNext = grown(this.entryNext, new Int32Array(capacity));
    this.entryUnknownBits = grown(
      this.entryUnknownBits,
      new Uint32Array(capacity * this.unknownWords),
    );
  }
}

/** Typed arrays cannot grow in place: copies `from` into the larger `to`. */
function grown<T extends Uint32Array | Int32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
