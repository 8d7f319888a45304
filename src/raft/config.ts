import type { Random } from './prng.js';
import type { Entry, HardState, Membership, NodeId, SnapshotMeta } from './types.js';
import { logIndex, noNode, term } from './types.js';

/** How linearizable reads are confirmed (thesis §6.4). */
export type ReadMode =
  /** A heartbeat round to a quorum confirms leadership for each batch of reads. */
  | 'readIndex'
  /**
   * The leader serves reads without a round trip while its lease holds:
   * followers promise (via CheckQuorum) not to vote for another leader within
   * an election timeout of hearing from this one. Safe only while clocks
   * drift less than `leaseMarginTicks` allows; requires `checkQuorum`.
   */
  | 'lease';

export interface RaftConfig {
  readonly id: NodeId;
  /** Base election timeout; each timeout is drawn from [base, 2·base) (§5.2). */
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly random: Random;
  /** Thesis §9.6: a candidate first asks whether it could win. */
  readonly preVote: boolean;
  /** Thesis §6.2: a leader steps down without a quorum; followers with a leader refuse votes. */
  readonly checkQuorum: boolean;
  readonly readMode: ReadMode;
  /** The lease is this many ticks shorter than the election timeout, for clock drift. */
  readonly leaseMarginTicks: number;
  /** Most entries in one append message. */
  readonly appendEntriesMax: number;
  /** Most entry bytes in one append message (at least one entry is always sent). */
  readonly appendBytesMax: number;
  /** Most append messages in flight to one follower in the replicate state. */
  readonly inflightMessagesMax: number;
  /** Most entry bytes in flight to one follower. */
  readonly inflightBytesMax: number;
  /** Proposals are refused past this many bytes of uncommitted entries. */
  readonly uncommittedBytesMax: number;
  /** Most reads waiting for confirmation at once. */
  readonly pendingReadsMax: number;
}

export type RaftConfigInput = Pick<RaftConfig, 'id' | 'random'> & Partial<RaftConfig>;

export const defaultConfig = {
  electionTimeoutTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  readMode: 'readIndex',
  leaseMarginTicks: 2,
  appendEntriesMax: 4096,
  appendBytesMax: 1 << 20,
  inflightMessagesMax: 256,
  inflightBytesMax: 32 << 20,
  uncommittedBytesMax: 256 << 20,
  pendingReadsMax: 100_000,
} as const satisfies Omit<RaftConfig, 'id' | 'random'>;

/** Fills in defaults and rejects impossible settings with a message saying what to change. */
export function resolveConfig(input: RaftConfigInput): RaftConfig {
  const config: RaftConfig = { ...defaultConfig, ...input };
  const problems: string[] = [];
  if (config.id === noNode) problems.push('id must not be empty');
  if (!(config.heartbeatTicks >= 1)) problems.push('heartbeatTicks must be at least 1');
  if (!(config.electionTimeoutTicks > config.heartbeatTicks)) {
    problems.push('electionTimeoutTicks must exceed heartbeatTicks');
  }
  if (config.readMode === 'lease' && !config.checkQuorum) {
    problems.push("readMode 'lease' requires checkQuorum (followers must honor the lease)");
  }
  if (!(config.leaseMarginTicks >= 0 && config.leaseMarginTicks < config.electionTimeoutTicks)) {
    problems.push('leaseMarginTicks must be in [0, electionTimeoutTicks)');
  }
  for (const key of [
    'appendEntriesMax',
    'appendBytesMax',
    'inflightMessagesMax',
    'inflightBytesMax',
    'uncommittedBytesMax',
    'pendingReadsMax',
  ] as const) {
    if (!(Number.isInteger(config[key]) && config[key] >= 1)) {
      problems.push(`${key} must be a positive integer`);
    }
  }
  if (problems.length > 0) throw new RangeError(`invalid raft config: ${problems.join('; ')}`);
  return config;
}

/** What a node recovers from stable storage when it starts. */
export interface PersistedState {
  readonly hardState: HardState;
  /** The latest snapshot; index 0 with the initial membership for a new cluster. */
  readonly snapshot: SnapshotMeta;
  /** Entries after the snapshot, contiguous. */
  readonly entries: readonly Entry[];
}

/**
 * The persisted state of a founding member of a brand-new cluster. The
 * initial voters are written into the log as committed conf entries (term 0,
 * identical on every founder), so a node that joins later learns the whole
 * membership history from the log or from a snapshot like any other change.
 */
export function bootstrapState(voters: readonly NodeId[]): PersistedState {
  const entries: Entry[] = voters.map((node, i) => ({
    kind: 'conf',
    term: term(0),
    index: logIndex(i + 1),
    change: { type: 'addVoter', node },
  }));
  return {
    hardState: { term: term(0), vote: noNode, commit: logIndex(entries.length) },
    snapshot: { index: logIndex(0), term: term(0), membership: emptyMembership },
    entries,
  };
}

/** The persisted state of a node that will join an existing cluster: it learns everything from the leader. */
export function joiningState(): PersistedState {
  return bootstrapState([]);
}

const emptyMembership: Membership = { voters: [], learners: [] };
