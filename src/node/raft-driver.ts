/**
 * The runtime around one Raft core (DESIGN.md §2, node/): it feeds the core
 * time, messages and requests, and carries out each Ready in the order the
 * core requires:
 *
 *   messages → persist (async, group-committed by the WAL) → messages that
 *   wait for the persist → install snapshot → apply committed entries →
 *   serve reads → advance
 *
 * except that committed entries already durable when the earlier Readys'
 * persists are (all of them but those this Ready itself appends) apply as
 * soon as those are, not after this Ready's own fsync.
 *
 * Readys are pipelined: the next one is taken while earlier ones are being
 * persisted, and their durable halves run strictly in order. The event loop
 * never waits on the disk.
 *
 * Time: ticks come from a monotonic clock. A timer that fires late (a stalled
 * event loop, a paused process) is caught up tick by tick before any message
 * is stepped, so a stale leader's lease expires in its own view before it
 * can answer a read from what it receives after the stall.
 */

import type { Logger } from 'pino';
import type { SnapshotChunks } from '../kv/index.js';
import { assert, fail } from '../raft/assert.js';
import type { PersistedState, RaftConfigInput } from '../raft/config.js';
import { bootstrapState, defaultConfig } from '../raft/config.js';
import { applyConfChange } from '../raft/membership.js';
import type { Message, SnapshotMessage } from '../raft/messages.js';
import { Prng } from '../raft/prng.js';
import { type FollowerStatus, RaftNode, type Status } from '../raft/raft.js';
import type { Ready } from '../raft/ready.js';
import type { Refusal } from '../raft/results.js';
import type {
  ConfChange,
  Entry,
  LogIndex,
  Membership,
  NodeId,
  Role,
  SnapshotMeta,
  Term,
} from '../raft/types.js';
import { entryBytes, entryOverheadBytes, logIndex, noNode } from '../raft/types.js';
import type { RaftStorage } from '../storage/raft-storage.js';
import type { SeekableSnapshotSource } from '../transport/snapshot-transfer.js';
import { ProposalTable } from './proposal-table.js';

/** The replicated application: applies committed entries, snapshots and restores. */
export interface StateMachine<Result> {
  /** Applies one committed normal entry (never the empty no-op). Deterministic. */
  apply(index: LogIndex, data: Uint8Array): Result;
  /**
   * A consistent image as of the last applied entry, captured during the
   * call (not when iteration starts), even if applying continues. With
   * `reused`, a chunk is valid only until the next one is pulled.
   */
  snapshot(chunks: SnapshotChunks): AsyncIterable<Uint8Array>;
  /** Replaces the whole state with a snapshot's image. */
  restore(chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

/** How the driver reaches the other members (the peer transport). */
export interface PeerNetwork {
  send(messages: readonly Message[]): void;
  /** Streams a stored snapshot; resolves once the receiver stored it. */
  sendSnapshot(message: SnapshotMessage, chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

export interface RaftDriverOptions {
  readonly id: NodeId;
  /** Founding voters of a new cluster; ignored once the data directory holds state. */
  readonly initialMembers: readonly NodeId[];
  readonly tickMs: number;
  readonly raft: Omit<RaftConfigInput, 'id' | 'random'>;
  /**
   * Take a snapshot once this many entries were applied since the last one
   * (it bounds the per-entry overhead of small entries), but see
   * `snapshotLogRatio`.
   */
  readonly snapshotEntries: number;
  /**
   * Or once this many payload bytes were applied since the last one
   * (default 64 MiB): the log holds its entries in memory until a snapshot
   * lets it compact, so large entries (file chunks) must trigger one sooner.
   */
  readonly snapshotBytes?: number;
  /**
   * But not before the log applied since the last snapshot (payload plus
   * `entryOverheadBytes` per entry) reaches this fraction of that
   * snapshot's size (default 0.5; 0 turns it off), whichever of the two
   * triggers above fired. Each snapshot writes the whole state, so with a
   * fixed interval the writing per applied byte grows with the state: at
   * 32 MiB intervals a 270 MB state (16 KiB values, `npm run bench`) wrote
   * eight bytes of snapshot for every byte of log, and at 100,000-entry
   * intervals a state of 1M keys of 100 B rewrote ten keys per SET. Raft
   * thesis §5.1.3: snapshot once the log exceeds the previous snapshot
   * times an expansion factor; snapshot writing stays within 1/ratio bytes
   * per applied byte, and the log's memory within `ratio` times the state.
   */
  readonly snapshotLogRatio?: number;
  /**
   * A node that applied nothing for this long (default 10 s) snapshots if
   * at least `idleSnapshotEntries` (default 1,000) were applied since its
   * last snapshot, and their payload is at least a sixteenth of that
   * snapshot's size: a restart then replays little, and the log's memory
   * and WAL segments go while the node has nothing else to do, instead of
   * waiting for writes that may not come (as Redis's time-based `save`
   * rules do). The sixteenth keeps bursts with pauses between them from
   * rewriting a large state for little log. 0 turns it off.
   */
  readonly idleSnapshotMs?: number;
  readonly idleSnapshotEntries?: number;
  /**
   * Entries kept in memory before each new snapshot, so that a follower up
   * to this far behind catches up by appends instead of a whole snapshot
   * (etcd's SnapshotCatchUpEntries). On the leader, followers hold the log
   * back further: one receiving a snapshot keeps the entries after that
   * snapshot's index, a responsive one those after its match index; always
   * within `retainEntriesMax` and `retainBytesMax`, which win. Default 5,000
   * (about 5 MiB with 1 KiB values).
   */
  readonly catchUpEntries?: number;
  /**
   * Most entries kept in memory at or before the latest snapshot's index,
   * however far behind (or dead) a follower is. Default
   * max(4 × snapshotEntries, catchUpEntries): a snapshot stream to a new
   * node may span a few snapshots of the leader and still continue by
   * appends.
   */
  readonly retainEntriesMax?: number;
  /**
   * Most bytes (entry sizes as the core counts them) kept in memory at or
   * before the latest snapshot's index. Default 128 MiB: with 1 KiB values
   * about 125,000 entries, on top of the up to `snapshotEntries` entries
   * after the snapshot the log holds anyway.
   */
  readonly retainBytesMax?: number;
  /**
   * On a leader, how long after the commit index advanced the followers not
   * told it by an append meanwhile get a commit notice (default 2 ms; see
   * RaftNode.spreadCommit). Under load appends carry the commit and nothing
   * is sent; a sequential client saves two messages per write, since its next
   * write's append carries the commit. Followers' stale reads lag by up to this.
   */
  readonly commitNoticeMs?: number;
  /** A persist slower than this is logged as a slow fsync. */
  readonly slowPersistMs: number;
  /** Most proposals waiting for their entry to apply. */
  readonly pendingProposalsMax: number;
  /**
   * Payload bytes of proposals not yet applied here. Past it, new proposals
   * are refused (retryable) so memory stays bounded when the cluster cannot
   * keep up; one proposal is always admitted, however large.
   */
  readonly pendingBytesMax?: number;
  /** Seed of the core's randomized election timeouts. */
  readonly seed: number;
}

/** A request the core or the driver refused; `message` says what to do. */
export class RaftRefusedError extends Error {
  override readonly name = 'RaftRefusedError';
  constructor(
    readonly refusal:
      | Refusal
      | { readonly kind: 'shutdown' | 'lost' | 'tooMany'; readonly message: string },
  ) {
    super(refusal.message);
  }
}

export interface DriverEvents<Result> {
  /** Role or leader changed. */
  onRoleChange?(role: Role, leader: NodeId, term: Term): void;
  /** An entry was applied, with what the state machine returned (null for no-ops and conf changes). */
  onApplied?(index: LogIndex, result: Result | null): void;
  /** Storage failed: the process must exit and recover from disk. */
  onFatal(error: unknown): void;
  /** A Ready that had to be synced became durable after `ms` (fsync latency). */
  onSynced?(ms: number): void;
}

/**
 * Receives the outcome of one accepted proposal, exactly once and never
 * synchronously inside the call that proposed it: `applied` with what the
 * state machine returned (null for no-ops and conf changes), or `refused`
 * when the entry was lost to a new leader (it was not applied, and a retry
 * is safe) or the driver stopped. An object rather than a promise: a write
 * on the RESP path costs one (TandemNode's LeaderWrite) instead of a
 * promise, its reaction and the closures chained onto it.
 */
export interface ProposalSink<Result> {
  applied(result: Result | null): void;
  refused(error: RaftRefusedError): void;
}

/**
 * A proposal waiting for its index to apply. Two may wait at one index: an
 * older term's, when this node lost leadership, its log was cut below that
 * index and it leads again. The older entry may still commit (a leader of
 * a later term may hold it), so it waits for the index to apply like the
 * newer one; whichever entry applies there settles its proposal, and the
 * other is lost.
 */
class PendingProposal<Result> {
  /** Set once the entry applied (or was lost), just before the sink is told. */
  result: Result | null = null;
  failure: RaftRefusedError | null = null;
  next: PendingProposal<Result> | null = null;

  constructor(
    readonly index: number,
    readonly term: Term,
    /** Payload bytes, counted against `pendingBytesMax` until settled. */
    readonly bytes: number,
    readonly sink: ProposalSink<Result>,
  ) {}
}

/**
 * The reads that share one read index round: one promise settles them all,
 * so a read costs one reaction on it instead of a promise and two closures.
 */
class ReadBatch {
  readonly done: Promise<void>;
  private settle: { resolve: () => void; reject: (error: Error) => void } | null = null;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
  }

  resolve(): void {
    this.settle?.resolve();
    this.settle = null;
  }

  reject(error: Error): void {
    this.settle?.reject(error);
    this.settle = null;
  }
}

/**
 * How many of `rd`'s committed entries (a prefix) are durable once every
 * earlier Ready is: all of them, unless the Ready installs a snapshot
 * (entries apply on top of it) or appends entries at or below one of them
 * (a follower receiving entries and their commit together).
 */
export function committedBeforeNewEntries(rd: Ready): number {
  if (rd.snapshot !== null) return 0;
  const firstNew = rd.entries[0]?.index;
  if (firstNew === undefined) return rd.committedEntries.length;
  let n = 0;
  while (n < rd.committedEntries.length && (rd.committedEntries[n] as Entry).index < firstNew) n++;
  return n;
}

/** Beyond this many missed ticks every timer has fired; more change nothing. */
const catchUpTicksFactor = 4;
const readyLoopMax = 64;
/**
 * Committed entry bytes (as the core counts them) handed out for applying
 * per turn of the event loop; the Ready that crosses it is the turn's last.
 * A restart applies the log after its snapshot, and a follower catching up
 * applies what it missed: unbounded, one turn applied the whole log of a
 * follower restarted after 7 s of pipelined SETs over 1M keys (up to half
 * the state since its snapshot) and held its event loop for 800 ms.
 */
const applyBytesPerTurnMax = 4 * 1024 * 1024;
const defaultCommitNoticeMs = 2;
const defaultPendingBytesMax = 64 * 1024 * 1024;
const defaultCatchUpEntries = 5_000;
/** `retainEntriesMax` defaults to this many snapshot intervals (at least `catchUpEntries`). */
const defaultRetainSnapshots = 4;
const defaultRetainBytesMax = 128 * 1024 * 1024;
const defaultSnapshotBytes = 64 * 1024 * 1024;
const defaultSnapshotLogRatio = 0.5;
const defaultIdleSnapshotMs = 10_000;
const defaultIdleSnapshotEntries = 1_000;
/** An idle snapshot needs at least this fraction of the last snapshot's size in new payload. */
const idleSnapshotLogFraction = 1 / 16;

export class RaftDriver<Result> {
  private core: RaftNode;
  private readonly started = performanceNow();
  private ticksDone = 0;
  private tickTimer: NodeJS.Timeout | null = null;
  private commitNoticeTimer: NodeJS.Timeout | null = null;
  private readyScheduled = false;
  /** The durable halves of Readys, chained so they run in order. */
  private durableChain: Promise<void> = Promise.resolve();
  /** Proposals waiting for their index to apply. */
  private readonly proposals: ProposalTable<PendingProposal<Result>>;
  /** The sum of `bytes` over `proposals`. */
  private pendingBytes = 0;
  /** Proposals whose outcome is known, for their sinks to hear in one microtask. */
  private settled: PendingProposal<Result>[] = [];
  /** Reads waiting for the next read index request, and those sent, by context. */
  private readsToSend: ReadBatch | null = null;
  private readonly readsSent = new Map<string, { reads: ReadBatch; tick: number }>();
  /** Read states confirmed, waiting for `applied` to reach their index. */
  private readonly readsConfirmed: { index: number; reads: ReadBatch }[] = [];
  private readSeq = 0;
  /** The tick the newest read index round started in. */
  private lastReadRoundTick = -1;
  private applied: number;
  /** Payload bytes applied since start, and as of the latest snapshot (taken or installed). */
  private appliedBytes = 0;
  private snapshotAppliedBytes = 0;
  /** appliedBytes as of the latest snapshot saved (or installed): the log before it can go. */
  private savedAppliedBytes = 0;
  /** Data size of the latest snapshot saved, installed or recovered; 0 before any. */
  private snapshotDataBytes = 0;
  /** `ticksDone` when an entry last applied here. */
  private lastApplyTick = 0;
  /** `RaftDriverOptions.snapshotLogRatio`, its default applied (checked once). */
  private readonly snapshotLogRatio: number;
  private appliedMembership: Membership;
  private snapshotIndex: number;
  private snapshotting = false;
  /** Where the core's in-memory log starts (entries up to it are discarded); may lag the core. */
  private compactedTo: number;
  /** The lowest index the retention bounds let the log start at for `snapshotIndex`. */
  private retainFloor: number;
  private lastRetentionCheckTick = 0;
  /** Leader: the tick each peer was last heard from (responsive followers hold the log back). */
  private readonly lastHeardTick = new Map<NodeId, number>();
  private readonly catchUpEntries: number;
  private readonly retainEntriesMax: number;
  private readonly retainBytesMax: number;
  private role: Role = 'follower';
  private leader: NodeId = noNode;
  private stopped = false;
  private fatal = false;
  /** When a message from the current leader last arrived (for the logs' "why"). */
  private lastFromLeaderMs = performanceNow();
  /** A leadership transfer asked this node to campaign (TimeoutNow), not yet acted on. */
  private transferFrom: NodeId | null = null;
  private readonly electionTimeoutTicks: number;
  /** Counters for metrics. */
  readonly stats = {
    proposals: 0,
    applied: 0,
    persists: 0,
    slowPersists: 0,
    snapshots: 0,
    /** Snapshots this node started streaming to followers. */
    snapshotsSent: 0,
    /** Read index rounds started (each serves every read queued before it). */
    readRounds: 0,
  };

  private constructor(
    private readonly options: RaftDriverOptions,
    private readonly storage: RaftStorage,
    private readonly machine: StateMachine<Result>,
    private readonly network: PeerNetwork,
    private readonly events: DriverEvents<Result>,
    private readonly log: Logger,
    persisted: PersistedState,
  ) {
    this.core = new RaftNode(
      { ...options.raft, id: options.id, random: new Prng(options.seed) },
      persisted,
    );
    this.electionTimeoutTicks =
      options.raft.electionTimeoutTicks ?? defaultConfig.electionTimeoutTicks;
    this.applied = persisted.snapshot.index;
    this.snapshotIndex = persisted.snapshot.index;
    this.compactedTo = persisted.snapshot.index;
    this.retainFloor = persisted.snapshot.index;
    this.appliedMembership = persisted.snapshot.membership;
    this.proposals = new ProposalTable(options.pendingProposalsMax);
    this.catchUpEntries = options.catchUpEntries ?? defaultCatchUpEntries;
    this.retainEntriesMax =
      options.retainEntriesMax ??
      Math.max(defaultRetainSnapshots * options.snapshotEntries, this.catchUpEntries);
    this.retainBytesMax = options.retainBytesMax ?? defaultRetainBytesMax;
    this.snapshotLogRatio = options.snapshotLogRatio ?? defaultSnapshotLogRatio;
    if (!(Number.isFinite(this.snapshotLogRatio) && this.snapshotLogRatio >= 0)) {
      throw new RangeError(
        `snapshotLogRatio must be a finite number >= 0, got ${this.snapshotLogRatio}`,
      );
    }
  }

  /**
   * Recovers the state machine and the core from `storage` (bootstrapping a
   * fresh directory with `initialMembers`) and starts ticking.
   */
  static async start<R>(
    options: RaftDriverOptions,
    opened: { storage: RaftStorage; persisted: PersistedState },
    machine: StateMachine<R>,
    network: PeerNetwork,
    events: DriverEvents<R>,
    log: Logger,
  ): Promise<RaftDriver<R>> {
    let persisted = opened.persisted;
    if (isFresh(persisted) && options.initialMembers.length > 0) {
      persisted = bootstrapState(options.initialMembers);
      // The founding conf entries are durable before the core may act on them.
      await opened.storage.persist(bootstrapReady(persisted));
      log.info({ members: options.initialMembers }, 'bootstrapped a new cluster');
    }
    const snapshot = persisted.snapshot;
    let snapshotDataBytes = 0;
    const restoreStartedAt = performanceNow();
    if (snapshot.index > 0) {
      const reader = await opened.storage.openSnapshot(snapshot);
      snapshotDataBytes = reader.dataBytes;
      try {
        await machine.restore(reader);
      } finally {
        await reader.close();
      }
    }
    const driver = new RaftDriver(
      options,
      opened.storage,
      machine,
      network,
      events,
      log,
      persisted,
    );
    driver.snapshotDataBytes = snapshotDataBytes;
    log.info(
      {
        term: persisted.hardState.term,
        snapshot: snapshot.index,
        snapshotLoadMs: Math.round(performanceNow() - restoreStartedAt),
        lastIndex: persisted.entries.at(-1)?.index ?? snapshot.index,
        commit: persisted.hardState.commit,
      },
      'recovered from disk',
    );
    driver.tickTimer = setInterval(() => driver.onTimer(), options.tickMs);
    driver.scheduleReady();
    return driver;
  }

  /** WAL batches (one fdatasync each) and bytes written since this node started. */
  get walCounters(): RaftStorage['walCounters'] {
    return this.storage.walCounters;
  }

  get id(): NodeId {
    return this.options.id;
  }

  /** The membership as of the last entry applied here (not the log's latest). */
  get membershipApplied(): Membership {
    return this.appliedMembership;
  }

  get isLeader(): boolean {
    return this.role === 'leader';
  }

  get leaderId(): NodeId {
    return this.leader;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  status(): Status {
    return this.core.status();
  }

  /**
   * On a leader: whether `id` was heard from within the last election
   * timeout. The core's `recentActive` alone is cleared at every CheckQuorum
   * round, so right after one every follower looks silent until its next
   * answer arrives.
   */
  heardRecently(id: NodeId): boolean {
    const heard = this.lastHeardTick.get(id);
    return heard !== undefined && this.ticksDone - heard <= this.electionTimeoutTicks;
  }

  /** Steps a message from a peer, after catching up missed ticks. */
  step(message: Message): void {
    if (this.stopped) return;
    this.catchUpTicks();
    if (message.from === this.leader) this.lastFromLeaderMs = performanceNow();
    if (this.role === 'leader') this.lastHeardTick.set(message.from, this.ticksDone);
    if (message.type === 'timeoutNow') this.transferFrom = message.from;
    this.core.step(message);
    this.scheduleReady();
  }

  /**
   * Stores a snapshot streamed from the leader, then steps its message; the
   * core installs it in a later Ready if it still wants it.
   */
  async receiveSnapshot(
    message: SnapshotMessage,
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    await this.storage.receiveSnapshot(message.snapshot, chunks);
    this.step(message);
  }

  /** Tells the core a peer could not be reached, so it stops pipelining to it. */
  reportUnreachable(peer: NodeId): void {
    if (this.stopped) return;
    this.core.reportUnreachable(peer);
    this.scheduleReady();
  }

  /**
   * Proposes `data`; resolves with what the state machine returned once the
   * entry is applied here. Rejects with `RaftRefusedError` when this node is
   * not the leader (the message names the leader), when the leader is
   * overloaded, or when the entry was lost to a new leader (then it was not
   * applied, and a retry is safe).
   */
  propose(data: Uint8Array): Promise<Result | null> {
    return new Promise((resolve, reject) => {
      const refusal = this.proposeTo(data, { applied: resolve, refused: reject });
      if (refusal !== null) reject(refusal);
    });
  }

  /**
   * `propose` without a promise: returns the refusal at once, or null when
   * the entry is in the log and `sink` will hear how it ended.
   */
  proposeTo(data: Uint8Array, sink: ProposalSink<Result>): RaftRefusedError | null {
    if (this.stopped) return shutdownError();
    if (this.proposals.size >= this.options.pendingProposalsMax) {
      return new RaftRefusedError({
        kind: 'tooMany',
        message: `more than ${this.options.pendingProposalsMax} writes are waiting to commit; retry after a short pause`,
      });
    }
    const bytesMax = this.options.pendingBytesMax ?? defaultPendingBytesMax;
    if (this.proposals.size > 0 && this.pendingBytes + data.length > bytesMax) {
      return new RaftRefusedError({
        kind: 'tooMany',
        message:
          `${this.pendingBytes} bytes of writes are waiting to commit (limit ${bytesMax}): ` +
          'the cluster is not keeping up; retry after a short pause',
      });
    }
    const result = this.core.propose(data);
    if (!result.ok) return new RaftRefusedError(result.refusal);
    this.stats.proposals++;
    this.scheduleReady();
    this.addProposal(result.index, result.term, data.length, sink);
    return null;
  }

  /** Proposes a membership change; resolves once it is applied here. */
  proposeConfChange(change: ConfChange): Promise<void> {
    if (this.stopped) return Promise.reject(shutdownError());
    const result = this.core.proposeConfChange(change);
    if (!result.ok) return Promise.reject(new RaftRefusedError(result.refusal));
    this.scheduleReady();
    return new Promise((resolve, reject) => {
      this.addProposal(result.index, result.term, 0, { applied: () => resolve(), refused: reject });
    });
  }

  /**
   * Resolves once this node's state reflects every write committed before
   * the call (a linearizable read point, thesis §6.4). Reads arriving in
   * the same turn of the event loop share one read index request.
   */
  readBarrier(): Promise<void> {
    if (this.stopped) return Promise.reject(shutdownError());
    if (this.readsToSend === null) {
      this.readsToSend = new ReadBatch();
      this.scheduleReady();
    }
    return this.readsToSend.done;
  }

  transferLeadership(to: NodeId): void {
    const result = this.core.transferLeadership(to);
    if (!result.ok) throw new RaftRefusedError(result.refusal);
    this.scheduleReady();
  }

  /**
   * Stops the driver: hands leadership to the most caught-up voter when this
   * node leads (bounded by `handoverMs`), fails waiting requests, waits for
   * writes in flight and closes the storage.
   */
  async stop(handoverMs: number): Promise<void> {
    if (this.stopped) return;
    if (this.role === 'leader' && !this.fatal) await this.handOver(handoverMs);
    this.stopped = true;
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    this.tickTimer = null;
    if (this.commitNoticeTimer !== null) clearTimeout(this.commitNoticeTimer);
    this.commitNoticeTimer = null;
    this.failWaiting(shutdownError());
    await this.durableChain.catch(() => undefined);
    await this.storage.close();
  }

  private async handOver(handoverMs: number): Promise<void> {
    const status = this.core.status();
    let best: NodeId = noNode;
    let bestMatch = -1;
    for (const [id, pr] of status.progress) {
      if (!status.membership.voters.includes(id) || !pr.recentActive) continue;
      if (pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best === noNode) return;
    this.log.info({ to: best, term: status.term }, 'shutting down: handing leadership over');
    try {
      this.transferLeadership(best);
    } catch (error) {
      this.log.warn({ err: error }, 'leadership handover refused; shutting down anyway');
      return;
    }
    const deadline = performanceNow() + handoverMs;
    while (this.role === 'leader' && performanceNow() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, this.options.tickMs));
    }
  }

  private failWaiting(error: RaftRefusedError): void {
    for (const index of this.proposals.indexes()) this.settleProposals(index, null, null, error);
    this.readsToSend?.reject(error);
    this.readsToSend = null;
    for (const sent of this.readsSent.values()) sent.reads.reject(error);
    this.readsSent.clear();
    for (const c of this.readsConfirmed) c.reads.reject(error);
    this.readsConfirmed.length = 0;
  }

  private onTimer(): void {
    this.catchUpTicks();
    this.expireReads();
    this.maybeCompactHeldBack();
    this.maybeIdleSnapshot();
    this.scheduleReady();
  }

  /**
   * A read index request or its answer can be lost with a message; after two
   * election timeouts without an answer the reads fail (and may be retried).
   */
  private expireReads(): void {
    const timeoutTicks = 2 * this.electionTimeoutTicks;
    for (const [context, sent] of this.readsSent) {
      if (this.ticksDone - sent.tick < timeoutTicks) continue;
      this.readsSent.delete(context);
      sent.reads.reject(lostError('no answer to the read index request'));
    }
  }

  /** Delivers every tick the clock says is due, bounded. */
  private catchUpTicks(): void {
    const due = Math.floor((performanceNow() - this.started) / this.options.tickMs);
    let missed = due - this.ticksDone;
    if (missed <= 0) return;
    // A stall of half an election timeout can already cost leadership
    // (CheckQuorum runs before the followers' answers are read): say so.
    if (2 * missed >= this.electionTimeoutTicks) {
      this.log.warn(
        { stalledMs: missed * this.options.tickMs, role: this.role },
        'the event loop stalled (a long GC pause or blocking work); catching up ticks',
      );
    }
    missed = Math.min(missed, catchUpTicksFactor * this.electionTimeoutTicks);
    for (let i = 0; i < missed; i++) this.core.tick();
    this.ticksDone = due;
  }

  private scheduleReady(): void {
    if (this.readyScheduled || this.stopped) return;
    this.readyScheduled = true;
    // After the I/O callbacks of this turn: everything that arrived together
    // goes out in one Ready (one append per follower, one fsync).
    setImmediate(this.runScheduledReady);
  }

  private readonly runScheduledReady = (): void => {
    this.readyScheduled = false;
    this.processReady();
  };

  private processReady(): void {
    if (this.stopped || this.fatal) return;
    this.sendReadIndex();
    let applyBytes = 0;
    for (let i = 0; i < readyLoopMax && applyBytes < applyBytesPerTurnMax; i++) {
      if (!this.core.hasReady()) break;
      const rd = this.core.ready();
      for (const e of rd.committedEntries) applyBytes += entryBytes(e);
      this.handleReady(rd);
    }
    // After a commit, or an acknowledgement from a follower behind the commit.
    if (this.commitNoticeTimer === null && this.core.hasUntoldCommit()) this.armCommitNotice();
    if (this.core.hasReady()) this.scheduleReady();
  }

  /**
   * Starts a read index round for the reads queued since the last one. One
   * round is in flight at a time (etcd's linearizable read loop): reads that
   * arrive meanwhile share the next round, so under load a round of
   * heartbeats serves thousands of reads instead of a round per event-loop
   * turn. A round unanswered for a tick (its message lost) no longer holds
   * the next one back.
   */
  private sendReadIndex(): void {
    if (this.readsToSend === null) return;
    if (this.readsSent.size > 0 && this.ticksDone === this.lastReadRoundTick) return;
    this.lastReadRoundTick = this.ticksDone;
    this.stats.readRounds++;
    const context = `${this.options.id}:${++this.readSeq}`;
    const result = this.core.readIndex(context);
    const reads = this.readsToSend;
    this.readsToSend = null;
    if (!result.ok) {
      reads.reject(new RaftRefusedError(result.refusal));
      return;
    }
    this.readsSent.set(context, { reads, tick: this.ticksDone });
  }

  private handleReady(rd: Ready): void {
    if (rd.softState !== null) this.onSoftState(rd.softState.role, rd.softState.leader);
    this.sendMessages(rd.messages);
    for (const rs of rd.readStates) {
      const sent = this.readsSent.get(rs.context);
      if (sent === undefined) continue;
      this.readsSent.delete(rs.context);
      this.readsConfirmed.push({ index: rs.index, reads: sent.reads });
      // The reads held back while this round was in flight go out next.
      if (this.readsToSend !== null) this.scheduleReady();
    }
    const startedMs = performanceNow();
    const persisted = this.storage.persist(rd);
    const durableAlready = committedBeforeNewEntries(rd);
    this.durableChain = this.durableChain.then(async () => {
      // Every earlier Ready is durable now. Committed entries that none of
      // this Ready's appends touch are stored here and on a majority: apply
      // them without waiting for this Ready's fsync (etcd applies only
      // locally stable entries the same way with asynchronous storage writes).
      if (durableAlready > 0 && !this.stopped && !this.fatal) {
        for (let i = 0; i < durableAlready; i++) this.applyEntry(rd.committedEntries[i] as Entry);
        this.serveReads();
      }
      try {
        await persisted;
      } catch (error) {
        this.onFatal(error);
        return;
      }
      const tookMs = performanceNow() - startedMs;
      this.stats.persists++;
      if (rd.mustSync) this.events.onSynced?.(tookMs);
      if (tookMs > this.options.slowPersistMs && rd.mustSync) {
        this.stats.slowPersists++;
        this.log.warn({ ms: Math.round(tookMs), entries: rd.entries.length }, 'slow fsync');
      }
      await this.onDurable(rd);
    });
  }

  private async onDurable(rd: Ready): Promise<void> {
    if (this.stopped || this.fatal) return;
    this.sendMessages(rd.messagesAfterPersist);
    if (rd.snapshot !== null) await this.installSnapshot(rd.snapshot);
    for (const entry of rd.committedEntries) this.applyEntry(entry);
    this.serveReads();
    this.core.advance(rd);
    this.maybeSnapshot();
    this.scheduleReady();
  }

  /** Spreads the commit index shortly unless appends carry it first (RaftNode.spreadCommit). */
  private armCommitNotice(): void {
    this.commitNoticeTimer = setTimeout(() => {
      this.commitNoticeTimer = null;
      if (this.stopped || this.fatal) return;
      this.core.spreadCommit();
      this.scheduleReady();
    }, this.options.commitNoticeMs ?? defaultCommitNoticeMs);
  }

  private sendMessages(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    const plain: Message[] = [];
    for (const m of messages) {
      if (m.type === 'snapshot') this.sendSnapshot(m);
      else plain.push(m);
    }
    if (plain.length > 0) this.network.send(plain);
  }

  private sendSnapshot(message: SnapshotMessage): void {
    const meta = message.snapshot;
    this.stats.snapshotsSent++;
    this.log.info({ to: message.to, index: meta.index }, 'sending a snapshot');
    const send = async (): Promise<void> => {
      const reader = await this.storage.openSnapshot(meta);
      // Seekable: the transport resumes a transfer the follower kept the start of.
      const source: SeekableSnapshotSource = reader;
      try {
        await this.network.sendSnapshot(message, source);
      } finally {
        await reader.close();
      }
    };
    send().then(
      () => this.reportSnapshot(message.to, true),
      (error: unknown) => {
        this.log.warn({ to: message.to, err: error }, 'sending a snapshot failed');
        this.reportSnapshot(message.to, false);
      },
    );
  }

  private reportSnapshot(to: NodeId, ok: boolean): void {
    if (this.stopped) return;
    this.core.reportSnapshot(to, ok);
    this.scheduleReady();
  }

  private async installSnapshot(meta: SnapshotMeta): Promise<void> {
    const reader = await this.storage.openSnapshot(meta);
    try {
      await this.machine.restore(reader);
    } finally {
      await reader.close();
    }
    this.snapshotDataBytes = reader.dataBytes;
    this.applied = meta.index;
    this.snapshotIndex = meta.index;
    this.snapshotAppliedBytes = this.appliedBytes;
    this.savedAppliedBytes = this.appliedBytes;
    // The core replaced its whole log with the snapshot.
    this.compactedTo = meta.index;
    this.retainFloor = meta.index;
    this.appliedMembership = meta.membership;
    this.log.info({ index: meta.index, term: meta.term }, 'installed a snapshot from the leader');
    // Proposals at or below the snapshot were decided by others; their results are unknown here.
    const lost = lostError('a snapshot replaced the log before the entry was applied here');
    for (const index of this.proposals.indexes()) {
      if (index <= meta.index) this.settleProposals(index, null, null, lost);
    }
  }

  private applyEntry(entry: Entry): void {
    if (entry.index <= this.applied) return;
    if (entry.index !== this.applied + 1) fail(`applying ${entry.index} after ${this.applied}`);
    let result: Result | null = null;
    if (entry.kind === 'conf') {
      this.appliedMembership = applyConfChange(this.appliedMembership, entry.change);
      this.log.info({ change: entry.change, index: entry.index }, 'membership change applied');
    } else if (entry.data.length > 0) {
      result = this.machine.apply(entry.index, entry.data);
      this.appliedBytes += entry.data.length;
    }
    this.applied = entry.index;
    this.lastApplyTick = this.ticksDone;
    this.stats.applied++;
    this.events.onApplied?.(entry.index, result);
    if (this.proposals.size > 0) this.settleProposals(entry.index, entry.term, result, null);
  }

  private addProposal(
    index: LogIndex,
    term: Term,
    bytes: number,
    sink: ProposalSink<Result>,
  ): void {
    const older = this.proposals.newestAt(index);
    assert(older === null || older.term < term, 'one proposal per index and term');
    this.proposals.add(new PendingProposal(index, term, bytes, sink));
    this.pendingBytes += bytes;
  }

  /**
   * Settles every proposal at `index`: the one of `term` (the entry that
   * applied there) with `result`, the others as lost; all of them with
   * `failure` when it is given (term null).
   */
  private settleProposals(
    index: number,
    term: Term | null,
    result: Result | null,
    failure: RaftRefusedError | null,
  ): void {
    for (let p = this.proposals.take(index); p !== null; p = p.next) {
      this.pendingBytes -= p.bytes;
      if (failure !== null) p.failure = failure;
      else if (p.term === term) p.result = result;
      else p.failure = lostError('a new leader replaced the entry before it committed');
      if (this.settled.length === 0) queueMicrotask(this.tellSettled);
      this.settled.push(p);
    }
    assert(this.pendingBytes >= 0, 'pending proposal bytes never go negative');
  }

  /**
   * Tells the sinks of settled proposals, in the order they settled, after
   * the code that settled them has run (as promise reactions would be).
   */
  private readonly tellSettled = (): void => {
    const settled = this.settled;
    this.settled = [];
    let thrown: { error: unknown } | null = null;
    for (const p of settled) {
      try {
        if (p.failure !== null) p.sink.refused(p.failure);
        else p.sink.applied(p.result);
      } catch (error) {
        thrown ??= { error };
      }
    }
    // A sink that throws is a bug: the others still hear their outcome, then
    // it surfaces as an uncaught exception, as from a promise reaction.
    if (thrown !== null) throw thrown.error;
  };

  private serveReads(): void {
    while (this.readsConfirmed.length > 0) {
      const first = this.readsConfirmed[0];
      if (first === undefined || first.index > this.applied) return;
      this.readsConfirmed.shift();
      first.reads.resolve();
    }
  }

  private onSoftState(role: Role, leader: NodeId): void {
    const previousRole = this.role;
    const previousLeader = this.leader;
    const now = performanceNow();
    this.role = role;
    this.leader = leader;
    const term = this.core.status().term;
    if (role !== previousRole) {
      const why = roleChangeReason({
        from: previousRole,
        to: role,
        previousLeader,
        silentMs: Math.round(now - this.lastFromLeaderMs),
        transferFrom: this.transferFrom,
      });
      this.log.info({ role, leader, term, why }, `became ${role}`);
    } else this.log.info({ leader, term }, 'leader changed');
    if (role === 'leader' || role === 'follower') this.transferFrom = null;
    if (role !== previousRole) this.lastHeardTick.clear();
    if (leader !== previousLeader) this.lastFromLeaderMs = now;
    // Read requests sent to (or as) the old leader will not be confirmed now.
    for (const sent of this.readsSent.values()) {
      sent.reads.reject(lostError('the leader changed before the read was confirmed'));
    }
    this.readsSent.clear();
    this.events.onRoleChange?.(role, leader, term);
  }

  /**
   * The state machine's image as of the last applied entry, captured now,
   * with its snapshot meta (a backup). Null before anything was applied.
   */
  captureImage(): { meta: SnapshotMeta; data: AsyncIterable<Uint8Array> } | null {
    const index = logIndex(this.applied);
    const status = this.core.status();
    const term =
      index === status.snapshot.index ? status.snapshot.term : this.core.entry(index)?.term;
    if (index === 0 || term === undefined) return null;
    const meta: SnapshotMeta = { index, term, membership: this.appliedMembership };
    // The caller streams the chunks on (a backup over HTTP) and may hold several.
    return { meta, data: this.machine.snapshot('fresh') };
  }

  /**
   * Payload bytes applied since the latest saved snapshot: what the log
   * holds in memory that no snapshot covers yet. Bulk writers (file
   * uploads) wait while it is large, so memory stays bounded when
   * snapshots are slower than the writes.
   */
  get unsnapshottedBytes(): number {
    return this.appliedBytes - this.savedAppliedBytes;
  }

  /**
   * Applied payload bytes that start a snapshot: `snapshotBytes`, or
   * `snapshotLogRatio` times the latest snapshot's size when more.
   */
  get snapshotTriggerBytes(): number {
    return Math.max(
      this.options.snapshotBytes ?? defaultSnapshotBytes,
      Math.ceil(this.snapshotLogRatio * this.snapshotDataBytes),
    );
  }

  /** See `snapshotEntries`, `snapshotBytes` and `snapshotLogRatio`. */
  private maybeSnapshot(): void {
    if (this.snapshotting) return;
    const entries = this.applied - this.snapshotIndex;
    const payloadBytes = this.appliedBytes - this.snapshotAppliedBytes;
    if (entries < this.options.snapshotEntries && payloadBytes < this.snapshotTriggerBytes) return;
    const logBytes = payloadBytes + entries * entryOverheadBytes;
    if (logBytes < this.snapshotLogRatio * this.snapshotDataBytes) return;
    this.startSnapshot();
  }

  /** See `RaftDriverOptions.idleSnapshotMs`. */
  private maybeIdleSnapshot(): void {
    const idleMs = this.options.idleSnapshotMs ?? defaultIdleSnapshotMs;
    if (idleMs === 0 || this.snapshotting || this.stopped || this.fatal) return;
    const entries = this.applied - this.snapshotIndex;
    const entriesMin = this.options.idleSnapshotEntries ?? defaultIdleSnapshotEntries;
    if (entries < Math.max(1, entriesMin)) return;
    const logBytes = this.appliedBytes - this.snapshotAppliedBytes;
    if (logBytes < idleSnapshotLogFraction * this.snapshotDataBytes) return;
    if ((this.ticksDone - this.lastApplyTick) * this.options.tickMs < idleMs) return;
    if (this.startSnapshot()) {
      this.log.info(
        { entries, idleMs },
        'nothing applied for a while: snapshotting the log so far',
      );
    }
  }

  /** Starts saving a snapshot at the applied index; false when its entry is not in memory. */
  private startSnapshot(): boolean {
    const index = logIndex(this.applied);
    const term = this.core.entry(index)?.term;
    if (term === undefined) return false;
    const meta: SnapshotMeta = { index, term, membership: this.appliedMembership };
    this.snapshotting = true;
    this.snapshotAppliedBytes = this.appliedBytes;
    const bytesAtSnapshot = this.appliedBytes;
    const started = performanceNow();
    // saveSnapshot pulls a chunk only once the one before is written.
    this.storage.saveSnapshot(meta, this.machine.snapshot('reused')).then(
      (info) => {
        this.snapshotting = false;
        this.stats.snapshots++;
        this.savedAppliedBytes = Math.max(this.savedAppliedBytes, bytesAtSnapshot);
        // A newer snapshot from the leader may have been installed meanwhile.
        if (index <= this.snapshotIndex || this.stopped) return;
        this.snapshotIndex = index;
        this.snapshotDataBytes = info.dataBytes;
        this.retainFloor = retentionFloor({
          snapshotIndex: index,
          compactedTo: this.core.status().firstIndex - 1,
          entriesMax: this.retainEntriesMax,
          bytesMax: this.retainBytesMax,
          entryBytesAt: (i) => this.core.entryBytesAt(logIndex(i)),
        });
        // The core sends this snapshot from now on; what it discards is decided next.
        this.core.compact(index, logIndex(0));
        this.compactLog();
        this.log.info(
          {
            index,
            bytes: info.dataBytes,
            ms: Math.round(performanceNow() - started),
            keptFrom: this.compactedTo + 1,
          },
          'snapshot saved; log compacted',
        );
      },
      (error: unknown) => this.onFatal(error),
    );
    return true;
  }

  /**
   * Discards the log entries up to the index `compactionTarget` picks: as
   * far as the catch-up margin and the leader's followers allow, at least
   * as far as the retention bounds demand, never past the latest snapshot.
   */
  private compactLog(): void {
    const status = this.core.status();
    this.compactedTo = status.firstIndex - 1;
    const followers: FollowerRetention[] = [];
    if (status.role === 'leader') {
      for (const [id, pr] of status.progress) {
        followers.push({ ...pr, responsive: pr.recentActive || this.heardRecently(id) });
      }
      for (const id of this.lastHeardTick.keys()) {
        if (!status.progress.has(id)) this.lastHeardTick.delete(id);
      }
    }
    const target = compactionTarget({
      snapshotIndex: this.snapshotIndex,
      retainFloor: this.retainFloor,
      catchUpEntries: this.catchUpEntries,
      followers,
    });
    if (target <= this.compactedTo) return;
    this.core.compact(logIndex(this.snapshotIndex), logIndex(target));
    this.compactedTo = target;
  }

  /**
   * Once per election timeout: when followers held the log back beyond the
   * catch-up margin (one was receiving a snapshot, or catching up), compact
   * further as they progress, without waiting for the next snapshot.
   */
  private maybeCompactHeldBack(): void {
    if (this.ticksDone - this.lastRetentionCheckTick < this.electionTimeoutTicks) return;
    this.lastRetentionCheckTick = this.ticksDone;
    if (this.snapshotting || this.stopped || this.fatal) return;
    if (this.compactedTo >= this.snapshotIndex - this.catchUpEntries) return;
    this.compactLog();
  }

  private onFatal(error: unknown): void {
    if (this.fatal) return;
    this.fatal = true;
    this.log.fatal({ err: error }, 'storage failed; the node must stop and recover from disk');
    this.failWaiting(
      new RaftRefusedError({ kind: 'shutdown', message: 'the node stopped: its storage failed' }),
    );
    this.events.onFatal(error);
  }
}

/** A follower as the leader's log retention sees it. */
export interface FollowerRetention extends FollowerStatus {
  /** Heard from recently (an append or heartbeat response within about an election timeout). */
  readonly responsive: boolean;
}

/**
 * The index the log may be compacted to (entries up to it discarded) after
 * a snapshot at `snapshotIndex`: `catchUpEntries` before it, lower while a
 * follower needs older entries (one receiving a snapshot needs those after
 * the snapshot's index; a responsive one those after its match index; an
 * unresponsive one nothing, it will get a snapshot), but never below
 * `retainFloor` (the retention bounds), nor beyond the snapshot.
 */
export function compactionTarget(c: {
  readonly snapshotIndex: number;
  readonly retainFloor: number;
  readonly catchUpEntries: number;
  readonly followers: Iterable<FollowerRetention>;
}): number {
  assert(c.retainFloor <= c.snapshotIndex, 'the retention floor is at or before the snapshot');
  let target = c.snapshotIndex - c.catchUpEntries;
  for (const f of c.followers) {
    if (f.state === 'snapshot') target = Math.min(target, Math.max(f.match, f.pendingSnapshot));
    else if (f.responsive) target = Math.min(target, f.match);
  }
  return Math.min(c.snapshotIndex, Math.max(target, c.retainFloor));
}

/**
 * The lowest index the log may start after while keeping at most
 * `entriesMax` entries and `bytesMax` bytes in (floor, snapshotIndex]: walks
 * back from the snapshot over the entries still in memory (after
 * `compactedTo`).
 */
export function retentionFloor(r: {
  readonly snapshotIndex: number;
  readonly compactedTo: number;
  readonly entriesMax: number;
  readonly bytesMax: number;
  /** What the entry at `index` counts against byte limits, undefined when not in memory. */
  readonly entryBytesAt: (index: number) => number | undefined;
}): number {
  const lowest = Math.max(r.compactedTo, r.snapshotIndex - r.entriesMax);
  let floor = r.snapshotIndex;
  let bytes = 0;
  while (floor > lowest) {
    const size = r.entryBytesAt(floor);
    if (size === undefined) break;
    bytes += size;
    if (bytes > r.bytesMax) break;
    floor--;
  }
  return floor;
}

function performanceNow(): number {
  return performance.now();
}

function shutdownError(): RaftRefusedError {
  return new RaftRefusedError({
    kind: 'shutdown',
    message: 'the node is shutting down; retry on another node',
  });
}

function lostError(why: string): RaftRefusedError {
  return new RaftRefusedError({
    kind: 'lost',
    message: `the write was not applied: ${why}; retry it`,
  });
}

function isFresh(p: PersistedState): boolean {
  return p.snapshot.index === 0 && p.entries.length === 0 && p.hardState.term === 0;
}

function bootstrapReady(p: PersistedState): Ready {
  return {
    softState: null,
    hardState: p.hardState,
    snapshot: null,
    entries: p.entries,
    mustSync: true,
    messages: [],
    messagesAfterPersist: [],
    committedEntries: [],
    readStates: [],
  };
}

/** What a role change log line says about why it happened. */
export interface RoleChange {
  readonly from: Role;
  readonly to: Role;
  /** The leader known before the change ('' if none). */
  readonly previousLeader: NodeId;
  /** Time since the last message from `previousLeader`. */
  readonly silentMs: number;
  /** The leader that asked this node to campaign (TimeoutNow), if any. */
  readonly transferFrom: NodeId | null;
}

export function roleChangeReason(c: RoleChange): string {
  if (c.to === 'preCandidate' || (c.to === 'candidate' && c.from !== 'preCandidate')) {
    if (c.transferFrom !== null) return `leadership transfer requested by ${c.transferFrom}`;
    if (c.previousLeader === noNode) return 'election timeout with no leader known';
    return `election timeout: nothing from leader ${c.previousLeader} for ${c.silentMs} ms`;
  }
  if (c.to === 'candidate') return 'pre-vote granted by a majority';
  if (c.to === 'leader') return 'won the election';
  if (c.from === 'leader') return 'stepped down (a higher term, lost quorum or handed over)';
  return 'lost the election, or heard from a leader of this term or a later one';
}
