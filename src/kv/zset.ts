/**
 * A sorted set: a Map member→score for O(1) lookups plus a skip list with
 * spans (as in Redis's t_zset.c, after Pugh's "Skip Lists: A Probabilistic
 * Alternative to Balanced Trees") for O(log n) rank and range queries.
 * Order: by score, then by member bytes. Node levels come from a private
 * xorshift generator with a fixed seed: the shape never affects replies, and
 * no ambient randomness is used.
 */
import { assert } from '../raft/assert.js';

const levelMax = 32;
const levelP = 0.25;

class SkipNode {
  readonly forward: (SkipNode | null)[];
  readonly span: number[];
  backward: SkipNode | null = null;

  constructor(
    readonly member: string,
    readonly score: number,
    level: number,
  ) {
    this.forward = new Array<SkipNode | null>(level).fill(null);
    this.span = new Array<number>(level).fill(0);
  }
}

/** A score bound: value and whether it is exclusive. */
export interface ScoreBound {
  readonly value: number;
  readonly exclusive: boolean;
}

/** A lex bound: `-`/`+` are the infinities, otherwise `[x` or `(x`. */
export type LexBound =
  | { readonly kind: 'min' }
  | { readonly kind: 'max' }
  | { readonly kind: 'value'; readonly value: string; readonly exclusive: boolean };

function less(aScore: number, aMember: string, bScore: number, bMember: string): boolean {
  return aScore < bScore || (aScore === bScore && aMember < bMember);
}

export function aboveMin(score: number, min: ScoreBound): boolean {
  return min.exclusive ? score > min.value : score >= min.value;
}

export function belowMax(score: number, max: ScoreBound): boolean {
  return max.exclusive ? score < max.value : score <= max.value;
}

export function lexAboveMin(member: string, min: LexBound): boolean {
  if (min.kind === 'min') return true;
  if (min.kind === 'max') return false;
  return min.exclusive ? member > min.value : member >= min.value;
}

export function lexBelowMax(member: string, max: LexBound): boolean {
  if (max.kind === 'max') return true;
  if (max.kind === 'min') return false;
  return max.exclusive ? member < max.value : member <= max.value;
}

export class ZSet {
  readonly scores = new Map<string, number>();
  private readonly head = new SkipNode('', 0, levelMax);
  private level = 1;
  private rng = 0x9e3779b9;

  get size(): number {
    return this.scores.size;
  }

  private randomLevel(): number {
    let level = 1;
    for (;;) {
      let x = this.rng;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.rng = x >>> 0;
      if (level < levelMax && this.rng / 4294967296 < levelP) level++;
      else return level;
    }
  }

  score(member: string): number | undefined {
    return this.scores.get(member);
  }

  /** Adds or updates; returns true when the member is new. */
  set(member: string, score: number): boolean {
    assert(!Number.isNaN(score), 'zset score is not NaN');
    const old = this.scores.get(member);
    if (old !== undefined) {
      if (old === score) return false;
      this.unlink(member, old);
    }
    this.scores.set(member, score);
    this.insert(member, score);
    return old === undefined;
  }

  delete(member: string): boolean {
    const old = this.scores.get(member);
    if (old === undefined) return false;
    this.scores.delete(member);
    this.unlink(member, old);
    return true;
  }

  private insert(member: string, score: number): void {
    const update = new Array<SkipNode>(levelMax);
    const rank = new Array<number>(levelMax).fill(0);
    let x = this.head;
    for (let i = this.level - 1; i >= 0; i--) {
      rank[i] = i === this.level - 1 ? 0 : (rank[i + 1] as number);
      for (;;) {
        const next = x.forward[i];
        if (next == null || !less(next.score, next.member, score, member)) break;
        rank[i] = (rank[i] as number) + (x.span[i] as number);
        x = next;
      }
      update[i] = x;
    }
    const level = this.randomLevel();
    if (level > this.level) {
      for (let i = this.level; i < level; i++) {
        rank[i] = 0;
        update[i] = this.head;
        this.head.span[i] = this.scores.size - 1;
      }
      this.level = level;
    }
    const node = new SkipNode(member, score, level);
    for (let i = 0; i < level; i++) {
      const u = update[i] as SkipNode;
      node.forward[i] = u.forward[i] ?? null;
      u.forward[i] = node;
      const r0 = rank[0] as number;
      const ri = rank[i] as number;
      node.span[i] = (u.span[i] as number) - (r0 - ri);
      u.span[i] = r0 - ri + 1;
    }
    for (let i = level; i < this.level; i++) {
      const u = update[i] as SkipNode;
      u.span[i] = (u.span[i] as number) + 1;
    }
    node.backward = update[0] === this.head ? null : (update[0] as SkipNode);
    const next0 = node.forward[0];
    if (next0 != null) next0.backward = node;
  }

  private unlink(member: string, score: number): void {
    const update = new Array<SkipNode>(levelMax);
    let x = this.head;
    for (let i = this.level - 1; i >= 0; i--) {
      for (;;) {
        const next = x.forward[i];
        if (next == null || !less(next.score, next.member, score, member)) break;
        x = next;
      }
      update[i] = x;
    }
    const node = x.forward[0];
    assert(node != null && node.member === member && node.score === score, 'zset node found');
    for (let i = 0; i < this.level; i++) {
      const u = update[i] as SkipNode;
      if (u.forward[i] === node) {
        u.span[i] = (u.span[i] as number) + (node.span[i] as number) - 1;
        u.forward[i] = node.forward[i] ?? null;
      } else {
        u.span[i] = (u.span[i] as number) - 1;
      }
    }
    const next0 = node.forward[0];
    if (next0 != null) next0.backward = node.backward;
    while (this.level > 1 && this.head.forward[this.level - 1] == null) this.level--;
  }

  /** 0-based rank of a member in ascending order, or undefined. */
  rank(member: string): number | undefined {
    const score = this.scores.get(member);
    if (score === undefined) return undefined;
    let rank = 0;
    let x = this.head;
    for (let i = this.level - 1; i >= 0; i--) {
      for (;;) {
        const next = x.forward[i];
        if (next == null) break;
        if (!(next.score < score || (next.score === score && next.member <= member))) break;
        rank += x.span[i] as number;
        x = next;
      }
      if (x !== this.head && x.member === member) return rank - 1;
    }
    return undefined;
  }

  /** The node at 0-based rank (caller checks the range). */
  private nodeAt(rank: number): SkipNode {
    assert(rank >= 0 && rank < this.size, 'zset rank in range');
    let traversed = 0;
    let x = this.head;
    const target = rank + 1;
    for (let i = this.level - 1; i >= 0; i--) {
      for (;;) {
        const next = x.forward[i];
        if (next == null || traversed + (x.span[i] as number) > target) break;
        traversed += x.span[i] as number;
        x = next;
      }
      if (traversed === target) return x;
    }
    throw new Error('unreachable: zset rank walk');
  }

  /** Members with scores for ranks start..end inclusive, ascending or descending. */
  rangeByRank(start: number, end: number, reverse: boolean): [string, number][] {
    const out: [string, number][] = [];
    if (start > end) return out;
    let x: SkipNode | null = this.nodeAt(reverse ? this.size - 1 - start : start);
    for (let i = start; i <= end && x != null; i++) {
      out.push([x.member, x.score]);
      x = reverse ? x.backward : (x.forward[0] ?? null);
    }
    return out;
  }

  /** Number of elements strictly ordered before the first element >= the bound. */
  private countBelow(pred: (n: SkipNode) => boolean): number {
    // pred(n) true means n is "before" the boundary; it must be monotone.
    let rank = 0;
    let x = this.head;
    for (let i = this.level - 1; i >= 0; i--) {
      for (;;) {
        const next = x.forward[i];
        if (next == null || !pred(next)) break;
        rank += x.span[i] as number;
        x = next;
      }
    }
    return rank;
  }

  /** Rank range [from, to) of elements with min <= score <= max. */
  scoreRankRange(min: ScoreBound, max: ScoreBound): [number, number] {
    const from = this.countBelow((n) => !aboveMin(n.score, min));
    const to = this.countBelow((n) => belowMax(n.score, max));
    return [from, Math.max(from, to)];
  }

  /** Rank range [from, to) of elements within the lex range (all scores assumed equal). */
  lexRankRange(min: LexBound, max: LexBound): [number, number] {
    const from = this.countBelow((n) => !lexAboveMin(n.member, min));
    const to = this.countBelow((n) => lexBelowMax(n.member, max));
    return [from, Math.max(from, to)];
  }

  clone(): ZSet {
    const z = new ZSet();
    for (const [m, s] of this.entries()) z.set(m, s);
    return z;
  }

  /** Ascending order. */
  *entries(): IterableIterator<[string, number]> {
    let x = this.head.forward[0] ?? null;
    while (x != null) {
      yield [x.member, x.score];
      x = x.forward[0] ?? null;
    }
  }
}
