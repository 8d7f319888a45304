/**
 * The set of ops linearized so far, as two bitsets and an incremental hash.
 *
 * Lowe's memoization (2017) looks up (linearized set, state) at every step, so
 * the set must be cheap to update, compare and hash. Bitsets compare word by
 * word, and Zobrist hashing (a random word per op, xor-ed in and out) keeps
 * the hash current in O(1) per step instead of rehashing the whole set.
 *
 * Ok ops and unknown ops live in separate bitsets because the memo treats
 * them differently: it needs an exact match on the ok set but only a subset
 * match on the unknown set (see FailedConfigs).
 */
import type { Problem } from './wgl-problem.js';

/** murmur3's 32-bit finalizer: a cheap bijective mix. */
function mix32(x: number): number {
  let h = x ^ (x >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class LinearizedSet {
  /** Linearized ok ops. Invariant: setHash is the xor of zobrist over them. */
  readonly okBits: Uint32Array;
  /** Linearized unknown ops. */
  readonly unknownBits: Uint32Array;
  private readonly known: Uint8Array;
  /** Op i's bit in okBits (known ops) or unknownBits (unknown ops). */
  private readonly bitOf: Int32Array;
  /** Zobrist hashing: a random word per op, xor-ed in and out in O(1). */
  private readonly zobrist: Uint32Array;
  private setHash = 0;

  constructor(p: Problem) {
    const n = p.n;
    this.known = p.known;
    this.bitOf = new Int32Array(n);
    let okSeen = 0;
    for (let i = 0; i < n; i++) {
      this.bitOf[i] = p.known[i] === 1 ? okSeen++ : i - okSeen;
    }
    this.okBits = new Uint32Array(Math.max(1, Math.ceil(p.okCount / 32)));
    this.unknownBits = new Uint32Array(Math.max(1, Math.ceil((n - p.okCount) / 32)));
    this.zobrist = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.zobrist[i] = mix32(0x9e3779b9 + i);
  }

  has(i: number): boolean {
    const bit = this.bitOf[i] ?? 0;
    const bits = this.known[i] === 1 ? this.okBits : this.unknownBits;
    return ((bits[bit >>> 5] ?? 0) & (1 << (bit & 31))) !== 0;
  }

  /** Adds op i if absent, removes it if present: the same xor does both. */
  toggle(i: number): void {
    const bit = this.bitOf[i] ?? 0;
    const bits = this.known[i] === 1 ? this.okBits : this.unknownBits;
    const word = bit >>> 5;
    bits[word] = (bits[word] ?? 0) ^ (1 << (bit & 31));
    if (this.known[i] === 1) this.setHash ^= this.zobrist[i] ?? 0;
  }

  /**
   * The hash of (ok set, state), the memo's group key. Only ok ops are hashed:
   * the memo matches unknown sets by subset, which no hash can capture.
   */
  hashWith(state: number): number {
    return (this.setHash ^ mix32(state)) >>> 0;
  }
}
