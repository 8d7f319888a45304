/**
 * Raft's safety properties (Figure 3 of the paper), checked incrementally as
 * the simulation runs, from what the nodes hand out:
 * - Election safety: at most one leader per term.
 * - Log matching: two logs holding an entry with the same index and term
 *   hold the same entry there, preceded by the same term (by induction, the
 *   same prefix).
 * - Leader completeness: a new leader's log holds every entry committed in an earlier term.
 * - State machine safety: no two nodes apply different entries at an index.
 * - Replicas byte-identical at the same applied index.
 * Each check costs O(1) per event; no log is ever rescanned.
 */
import type { Entry } from '../../src/raft/types.js';
import { hashBytes, hashNumber, hashSeed, hashString } from '../hash.js';

/** Terms stay below this, so (index, term) packs into one safe integer key. */
const termLimit = 1 << 21;

interface LogRecord {
  readonly digest: number;
  readonly prevTerm: number | null;
  readonly node: string;
}

interface AppliedRecord {
  readonly term: number;
  readonly digest: number;
  readonly node: string;
  /**
   * The entry was committed in a term no later than this: the lowest current
   * term of any node when it applied the entry (a node applies an entry only
   * once a leader of its current term, or an earlier one, committed it).
   */
  readonly commitTermBound: number;
}

interface KvRecord {
  readonly digest: number;
  readonly node: string;
}

/** A digest of an entry's content (kind and payload), independent of its position. */
export function entryDigest(entry: Entry): number {
  if (entry.kind === 'normal') return hashBytes(entry.data, hashNumber(1, hashSeed));
  return hashString(entry.change.node, hashString(entry.change.type, hashNumber(2, hashSeed)));
}

export class SafetyChecker {
  readonly violations: string[] = [];
  /** Violations beyond this are counted, not kept: one bug often repeats. */
  violationsDropped = 0;
  private readonly leaders = new Map<number, string>();
  private readonly logs = new Map<number, LogRecord>();
  private readonly applied = new Map<number, AppliedRecord>();
  private readonly kvDigests = new Map<number, KvRecord>();
  private appliedIndexMax = 0;
  /** For each commit-term bound, the highest index applied with that bound. */
  private readonly appliedIndexByBound = new Map<number, number>();

  constructor(
    private readonly clockMs: () => number = () => 0,
    private readonly violationsMax: number = 20,
  ) {}

  get ok(): boolean {
    return this.violations.length === 0;
  }

  /** The highest index any node has applied: what every future leader must hold. */
  get appliedMax(): { readonly index: number; readonly term: number } {
    const record = this.applied.get(this.appliedIndexMax);
    return { index: this.appliedIndexMax, term: record?.term ?? 0 };
  }

  /** Records any violation found outside this checker (the runtime's contract checks). */
  violation(message: string): void {
    if (this.violations.length >= this.violationsMax) {
      this.violationsDropped++;
      return;
    }
    this.violations.push(`[${this.clockMs().toFixed(3)}ms] ${message}`);
  }

  /** Election safety: `node` became leader of `term`. */
  onLeader(node: string, term: number): void {
    const other = this.leaders.get(term);
    if (other !== undefined && other !== node) {
      this.violation(`election safety: ${node} and ${other} are both leaders of term ${term}`);
      return;
    }
    this.leaders.set(term, node);
  }

  /**
   * Log matching: `node` appended entry (index, term, digest) after an entry
   * of term `prevTerm` (null when the previous entry is unknown to the caller).
   */
  onAppend(
    node: string,
    index: number,
    term: number,
    digest: number,
    prevTerm: number | null,
  ): void {
    if (!(term >= 0 && term < termLimit)) {
      this.violation(`log matching: ${node} appended an entry with impossible term ${term}`);
      return;
    }
    const key = index * termLimit + term;
    const seen = this.logs.get(key);
    if (seen === undefined) {
      this.logs.set(key, { digest, prevTerm, node });
      return;
    }
    if (seen.digest !== digest) {
      this.violation(
        `log matching: ${node} and ${seen.node} hold different entries at index ${index} term ${term}`,
      );
    } else if (seen.prevTerm !== null && prevTerm !== null && seen.prevTerm !== prevTerm) {
      this.violation(
        `log matching: entry ${index}@${term} follows term ${prevTerm} on ${node} but term ${seen.prevTerm} on ${seen.node}`,
      );
    }
  }

  /**
   * Leader completeness (§5.4), checked when `node` becomes leader of `term`:
   * its log must hold every entry committed in an earlier term. Entries known
   * committed before `term` are those applied with a commit-term bound below
   * it; commitment is prefix-closed, so checking the highest such entry is
   * enough (log matching covers the rest). A leader of a stale term may win
   * on late votes after a later term committed more: those entries are not
   * owed to it. `termAt` gives the term of the leader's entry at an index
   * (undefined when absent or compacted); `snapshot` is its latest snapshot.
   */
  onLeaderLog(
    node: string,
    term: number,
    termAt: (index: number) => number | undefined,
    snapshot: { readonly index: number; readonly term: number },
  ): void {
    const index = this.highestCommittedBefore(term);
    if (index === 0) return;
    const appliedTerm = this.applied.get(index)?.term ?? 0;
    if (index < snapshot.index) {
      const atSnapshot = this.applied.get(snapshot.index);
      if (atSnapshot !== undefined && atSnapshot.term !== snapshot.term) {
        this.violation(
          `leader completeness: ${node} (leader of term ${term}) has a snapshot at ${snapshot.index}@${snapshot.term} but ${atSnapshot.node} applied ${snapshot.index}@${atSnapshot.term}`,
        );
      }
      return;
    }
    const have = index === snapshot.index ? snapshot.term : termAt(index);
    if (have !== appliedTerm) {
      this.violation(
        `leader completeness: ${node} became leader of term ${term} without entry ${index}@${appliedTerm}, committed before that term (its log has ${have === undefined ? 'nothing' : `term ${have}`} there)`,
      );
    }
  }

  /** The highest index applied by a node whose term was below `term` at the time. */
  private highestCommittedBefore(term: number): number {
    let highest = 0;
    for (const [bound, index] of this.appliedIndexByBound) {
      if (bound < term && index > highest) highest = index;
    }
    return highest;
  }

  private noteCommitBound(index: number, bound: number): void {
    if (index > (this.appliedIndexByBound.get(bound) ?? 0))
      this.appliedIndexByBound.set(bound, index);
  }

  /**
   * State machine safety: `node` applied entry (index, term, digest) while
   * its current term was `nodeTerm`.
   */
  onApply(node: string, index: number, term: number, digest: number, nodeTerm: number): void {
    this.noteCommitBound(index, nodeTerm);
    const seen = this.applied.get(index);
    if (seen === undefined) {
      this.applied.set(index, { term, digest, node, commitTermBound: nodeTerm });
      if (index > this.appliedIndexMax) this.appliedIndexMax = index;
      return;
    }
    if (Number.isNaN(seen.digest) && seen.term === term) {
      // First seen inside a snapshot; now its content is known.
      const commitTermBound = Math.min(seen.commitTermBound, nodeTerm);
      this.applied.set(index, { term, digest, node, commitTermBound });
      return;
    }
    if (seen.term !== term || seen.digest !== digest) {
      this.violation(
        `state machine safety: ${node} applied ${index}@${term} but ${seen.node} applied ${index}@${seen.term}${seen.term === term ? ' with different content' : ''}`,
      );
    }
  }

  /** State machine safety for snapshots: `node` installed a snapshot at (index, term) in term `nodeTerm`. */
  onSnapshotInstalled(node: string, index: number, term: number, nodeTerm: number): void {
    this.noteCommitBound(index, nodeTerm);
    const seen = this.applied.get(index);
    if (seen !== undefined && seen.term !== term) {
      this.violation(
        `state machine safety: ${node} installed a snapshot at ${index}@${term} but ${seen.node} applied ${index}@${seen.term}`,
      );
    }
    if (index > this.appliedIndexMax && term > 0) {
      // Its entries were applied somewhere, just not seen here entry by entry.
      this.applied.set(index, { term, digest: Number.NaN, node, commitTermBound: nodeTerm });
      this.appliedIndexMax = index;
    }
  }

  /** Replicas byte-identical: `node`'s state machine at applied `index` has `digest`. */
  onKvDigest(node: string, index: number, digest: number): void {
    const seen = this.kvDigests.get(index);
    if (seen === undefined) {
      this.kvDigests.set(index, { digest, node });
      return;
    }
    if (seen.digest !== digest) {
      this.violation(
        `replica divergence: at applied index ${index} the state of ${node} (digest ${digest.toString(16)}) differs from ${seen.node} (${seen.digest.toString(16)})`,
      );
    }
  }
}
