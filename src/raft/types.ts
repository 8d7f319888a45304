/**
 * Core value types of the consensus core. Identifiers and log positions are
 * branded so a term can never be passed where an index is expected.
 */

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A member's identity, stable for the life of the cluster ("n1", "n2"...). */
export type NodeId = Brand<string, 'NodeId'>;
/** A Raft term (§5.1). Term 0 precedes every election. */
export type Term = Brand<number, 'Term'>;
/** A position in the replicated log; the first entry has index 1 (§5.3). */
export type LogIndex = Brand<number, 'LogIndex'>;

export const nodeId = (s: string): NodeId => s as NodeId;
export const term = (n: number): Term => n as Term;
export const logIndex = (n: number): LogIndex => n as LogIndex;

export const noNode = '' as NodeId;

/** Membership change of one server at a time (Raft thesis §4.1). */
export type ConfChange =
  | { readonly type: 'addLearner'; readonly node: NodeId }
  | { readonly type: 'addVoter'; readonly node: NodeId }
  | { readonly type: 'removeNode'; readonly node: NodeId };

/** The set of members. Invariant: voters and learners are disjoint. */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/**
 * A log entry. `normal` entries carry opaque application bytes (an empty
 * payload is the no-op a new leader appends, §8); `conf` entries carry a
 * membership change, which takes effect as soon as it is in the log (§4.1).
 */
export type Entry =
  | {
      readonly kind: 'normal';
      readonly term: Term;
      readonly index: LogIndex;
      readonly data: Uint8Array;
    }
  | {
      readonly kind: 'conf';
      readonly term: Term;
      readonly index: LogIndex;
      readonly change: ConfChange;
    };

/** State that must be on stable storage before answering RPCs (Figure 2). */
export interface HardState {
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: LogIndex;
}

/** Describes a snapshot; the bytes themselves are owned by the runtime. */
export interface SnapshotMeta {
  readonly index: LogIndex;
  readonly term: Term;
  /** Membership as of `index`. */
  readonly membership: Membership;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** A read that has become safe to serve once `applied >= index` (§6.4). */
export interface ReadState {
  readonly context: string;
  readonly index: LogIndex;
}

/** What can be inspected about a node without touching its state. */
export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId;
}

/**
 * What an entry counts against byte limits: its payload and a fixed
 * overhead, which keeps empty entries from being free so the byte limits
 * also bound entry counts.
 */
export const entryOverheadBytes = 24;
/** The payload a conf entry counts as. */
export const confEntryBytes = 16;

export function entryBytes(e: Entry): number {
  return entryOverheadBytes + (e.kind === 'normal' ? e.data.byteLength : confEntryBytes);
}
