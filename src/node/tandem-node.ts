/**
 * One Tandem server process: the Raft driver, the kv state machine, the
 * durable storage and the peer transport, wired together. The protocol
 * layers (resp/, http/) call it to run client commands:
 *
 * - writes go through the log: on the leader they are stamped with its
 *   clock and a random seed and proposed; on a follower they are forwarded
 *   to the leader over the peer link and its answer is relayed;
 * - linearizable reads wait for a read barrier (ReadIndex, or the lease)
 *   and run on local state, on any node; stale reads (READONLY) skip it;
 * - without a leader a request waits a bounded time, then fails with
 *   `TRYAGAIN`.
 *
 * Only the leader expires keys: it proposes deletes for keys past their
 * expiry, a bounded number per cycle (DESIGN.md §2).
 */

import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  type ApplyResult,
  type KvArenaStats,
  type KvStateMachine,
  type Published,
  plantedBugs,
  type WatchedKey,
} from '../kv/index.js';
import { error, type Reply } from '../kv/reply.js';
import type { ReadMode } from '../raft/config.js';
import { isMember } from '../raft/membership.js';
import type { NodeId, Role, Term } from '../raft/types.js';
import { nodeId } from '../raft/types.js';
import type { FileSystem } from '../storage/fs.js';
import { RaftStorage } from '../storage/raft-storage.js';
import { segmentBytesMaxDefault } from '../storage/wal.js';
import { TransportError } from '../transport/errors.js';
import { PeerTransport } from '../transport/peer-transport.js';
import { peerAddressBook } from './address-book.js';
import { type BackupMeta, writeBackup } from './backup.js';
import type { DegradationLimits, HealthState } from './degradation.js';
import {
  FileService,
  type FileServiceOptions,
  gcIntervalMsDefault,
  unknownOutcome,
} from './file-service.js';
import {
  decodeForwardRequest,
  decodeReplyBinary,
  encodeForwardRequest,
  encodeReplyBinary,
  type ForwardRequest,
} from './forward-codec.js';
import { formatHostPort, type HostPort } from './host-port.js';
import { decodeHealth, encodeHealth, LeaderHealth } from './leader-health.js';
import {
  type Alarm,
  encodeMemberEntry,
  entryMember,
  type MemberEntry,
  type MemberRecord,
  sameRecord,
} from './member-registry.js';
import {
  type AdminAnswer,
  addMember,
  autoPromote,
  type MembershipHost,
  promoteMember,
  removeMember,
} from './membership-admin.js';
import { NodeMachine } from './node-machine.js';
import { type ProposalSink, RaftDriver, RaftRefusedError } from './raft-driver.js';
import {
  defaultSpaceCheckMs,
  defaultSpaceLowBytes,
  diskFullCause,
  freeBytes,
  raiseThroughPeers,
  SpaceMonitor,
  spaceRefusal,
} from './space-guard.js';

const defaultPromoteLagEntries = 1000;
/**
 * The log holds entries in memory until a snapshot lets it compact them;
 * file chunks (1 MiB entries) make bytes, not entry counts, the bound that
 * matters: a snapshot every 32 MiB applied, and at most 32 MiB kept before
 * it for followers catching up (one further behind gets a snapshot and
 * fetches the chunks it lacks).
 */
const defaultSnapshotBytes = 32 * 1024 * 1024;
const defaultRetainBytesMax = 32 * 1024 * 1024;
const degradationCheckMs = 1_000;
/** How long the leader waits for a follower's health answer. */
const healthAskMs = 1_000;
const noLeader = error('TRYAGAIN no leader: an election is in progress; retry shortly');
/**
 * Uploads pause while the log holds this many snapshot intervals no
 * snapshot covers yet (96 MiB at the default interval, more once the state
 * outgrows it: see RaftDriverOptions.snapshotLogRatio). It must stay above
 * one interval and the chunks in flight: a pause below the point where the
 * next snapshot starts would wait for a snapshot that only more writes
 * start, and fail the upload.
 */
const uploadBacklogSnapshots = 3;
/**
 * The WAL prepares its next segment (64 MiB of zeros) only while the disk
 * has this many segments free above the NOSPACE threshold: a small disk
 * keeps its space for data (its WAL appends as before), and a prepared
 * segment never brings the alarm nearer.
 */
const prepareRoomSegments = 8;

/** Whether the WAL may prepare a segment now (see prepareRoomSegments). */
async function roomToPrepare(config: TandemNodeConfig): Promise<boolean> {
  try {
    const free = await (config.freeSpace ?? freeBytes)(config.dataDir);
    const low = config.spaceLowBytes ?? defaultSpaceLowBytes;
    return free >= low + prepareRoomSegments * segmentBytesMaxDefault;
  } catch {
    return false; // Not knowing costs only speed.
  }
}

export type { HostPort } from './host-port.js';

export interface TandemNodeConfig {
  readonly id: string;
  readonly clusterId: string;
  readonly dataDir: string;
  /** Where this node listens for its peers. */
  readonly peerListen: HostPort;
  /** Peer addresses of every member, this node included (the initial cluster). */
  readonly members: ReadonlyMap<string, HostPort>;
  readonly tickMs: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly readMode: ReadMode;
  readonly snapshotEntries: number;
  /** How long a request waits for a leader (or a forwarded answer) before failing. */
  readonly requestTimeoutMs: number;
  /** How often the leader looks for expired keys, and how many it deletes per cycle. */
  readonly expireCycleMs: number;
  readonly expireKeysPerCycle: number;
  /**
   * Bytes of writes the leader lets wait for commit; past it, writes wait
   * (up to requestTimeoutMs) and then fail with TRYAGAIN.
   */
  readonly pendingBytesMax?: number;
  /**
   * Free bytes under the data directory below which this node raises the
   * cluster's NOSPACE alarm (cleared at 1.25x); default 256 MiB.
   */
  readonly spaceLowBytes?: number;
  /** How often free space is checked (ms); default 2 s. */
  readonly spaceCheckMs?: number;
  /** Free bytes of the file system holding `dir`; statfs by default (tests inject one). */
  readonly freeSpace?: (dir: string) => Promise<number>;
  /** When a slow leader hands leadership over (see degradation.ts); defaults apply per field. */
  readonly degradation?: Partial<DegradationLimits>;
  /** A learner within this many entries of the leader's log is promoted to voter. */
  readonly promoteLagEntries?: number;
  /** Addresses clients use, recorded in the member registry ('' if not served). */
  readonly respAddress?: string;
  readonly httpAddress?: string;
  /** File store tuning (chunk size, upload window, garbage grace period). */
  readonly files?: FileServiceOptions & { readonly gcIntervalMs?: number };
  /** Take a snapshot once this many bytes were applied since the last one (default 32 MiB). */
  readonly snapshotBytes?: number;
  /** Or this fraction of the last snapshot's size, when more (RaftDriverOptions; default 0.5). */
  readonly snapshotLogRatio?: number;
  /** Log retention after a snapshot (see RaftDriverOptions); tests shrink them. */
  readonly catchUpEntries?: number;
  readonly retainEntriesMax?: number;
  readonly retainBytesMax?: number;
}

export const tandemNodeDefaults = {
  tickMs: 100,
  electionTimeoutTicks: 10,
  heartbeatTicks: 1,
  readMode: 'readIndex' as ReadMode,
  snapshotEntries: 100_000,
  requestTimeoutMs: 5_000,
  expireCycleMs: 100,
  expireKeysPerCycle: 200,
} as const;

/** Whether a write refused with TRYAGAIN may be retried without overtaking a later one. */
export interface WriteOrder {
  mayRetry(): boolean;
}

/** A write with nothing issued after it: always retried while time remains. */
const alone: WriteOrder = { mayRetry: () => true };

/**
 * Where `TandemNode.writeTo` answers a write: `reply` with the write's reply,
 * or `fail` with an unexpected failure (a bug; answer an internal error).
 * One of them is called once per write, never within `writeTo` itself.
 * `token` is the caller's own object for the write, handed back as given,
 * so one sink serves all of a connection's writes.
 */
export interface ReplySink<Token> {
  reply(token: Token, reply: Reply): void;
  fail(token: Token, failure: unknown): void;
}

type RetryWrite = (
  request: ForwardRequest,
  order: WriteOrder,
  deadline: number,
  refused: Reply,
) => Promise<Reply>;

/**
 * A write this node proposed as leader, answered through its sink: the one
 * object a write costs between its proposal and its reply (no promise, no
 * reaction, no closure). A refusal that guarantees the write was not
 * applied (TRYAGAIN) is retried as `write` retries it.
 */
class LeaderWrite<Token> implements ProposalSink<ApplyResult> {
  private readonly deadline: number;

  constructor(
    private readonly request: ForwardRequest,
    private readonly order: WriteOrder,
    private readonly sink: ReplySink<Token>,
    private readonly token: Token,
    private readonly retry: RetryWrite,
    timeoutMs: number,
  ) {
    this.deadline = Date.now() + timeoutMs;
  }

  applied(result: ApplyResult | null): void {
    this.answer(appliedReply(result));
  }

  refused(failure: RaftRefusedError): void {
    this.answer(refusedReply(failure));
  }

  /** Answers `reply`, or retries first when it is a TRYAGAIN. */
  answer(reply: Reply): void {
    if (!isTryAgain(reply)) {
      this.sink.reply(this.token, reply);
      return;
    }
    this.retry(this.request, this.order, this.deadline, reply).then(
      (retried) => this.sink.reply(this.token, retried),
      (failure: unknown) => this.sink.fail(this.token, failure),
    );
  }
}

function isTryAgain(reply: Reply): boolean {
  return reply.kind === 'error' && reply.message.startsWith('TRYAGAIN');
}

function appliedReply(result: ApplyResult | null): Reply {
  return result === null ? error('ERR internal: the entry applied without a result') : result.reply;
}

/** A refused proposal: `TRYAGAIN` when it is certain the write was not applied. */
function refusedReply(failure: unknown): Reply {
  if (!(failure instanceof RaftRefusedError)) throw failure;
  if (failure.refusal.kind === 'shutdown') {
    return error(`ERR the write may or may not have been applied: ${failure.message}`);
  }
  return error(`TRYAGAIN ${failure.message}`);
}

export interface NodeInfo {
  readonly id: NodeId;
  readonly role: Role;
  readonly leader: NodeId;
  readonly term: Term;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** The leader's view of each follower; empty elsewhere. */
  readonly followers: readonly {
    id: NodeId;
    match: number;
    lag: number;
    state: string;
    active: boolean;
  }[];
}

export class TandemNode {
  private readonly publishListeners = new Set<(p: Published) => void>();
  private readonly persistListeners: ((ms: number) => void)[] = [];
  private expireTimer: NodeJS.Timeout | null = null;
  private registerTimer: NodeJS.Timeout | null = null;
  private degradationTimer: NodeJS.Timeout | null = null;
  private spaceTimer: NodeJS.Timeout | null = null;
  private gcTimer: NodeJS.Timeout | null = null;
  /** The file store (issue 6): uploads, reads, chunk repair and garbage collection. */
  readonly files: FileService;
  private readonly health: LeaderHealth;
  private readonly space: SpaceMonitor;
  private registering = false;
  private replacedLogged = false;
  private learned: MemberRecord[] = [];
  private expiring = false;
  private stopping = false;
  /** Storage failed: the node is on its way out (see onFatal). */
  private failing = false;
  /** Resolves when the node stopped on its own (storage failure). */
  readonly fatal: Promise<unknown>;
  private reportFatal: (error: unknown) => void = () => undefined;

  private constructor(
    readonly config: TandemNodeConfig,
    private readonly machine: NodeMachine,
    private readonly transport: PeerTransport,
    private driverRef: RaftDriver<ApplyResult> | null,
    /** This node's data-directory incarnation (see member-registry.ts). */
    readonly incarnation: string,
    private readonly log: Logger,
  ) {
    this.health = new LeaderHealth(
      {
        isLeader: () => this.driverRef?.isLeader === true && !this.stopping,
        // Active voters close behind, most caught up first: the transfer
        // itself brings the chosen one up to date (proposals wait meanwhile).
        transferees: () => {
          const info = this.info();
          const lagMax = config.promoteLagEntries ?? defaultPromoteLagEntries;
          return info.followers
            .filter((f) => f.active && f.lag <= lagMax && info.voters.includes(f.id))
            .sort((a, b) => b.match - a.match)
            .map((f) => f.id);
        },
        askHealth: (to) => this.askHealth(to),
        transfer: (to) => {
          try {
            this.driver.transferLeadership(to);
            return null;
          } catch (failure) {
            if (failure instanceof RaftRefusedError) return failure.message;
            throw failure;
          }
        },
        log,
      },
      config.degradation,
    );
    this.space = new SpaceMonitor({
      id: config.id,
      dataDir: config.dataDir,
      lowBytes: config.spaceLowBytes ?? defaultSpaceLowBytes,
      freeSpace: config.freeSpace ?? freeBytes,
      // Read through the machine each time: a snapshot restore (at start, or
      // installed from the leader) replaces the registry object, and a monitor
      // holding the old one never sees its alarm again, so never clears it.
      get registry() {
        return machine.registry;
      },
      log,
      ready: () => !this.stopping && this.driverRef !== null && this.driverRef.leaderId !== '',
      propose: (entry) => this.viaLeader({ kind: 'member', entry }, alone),
    });
    this.fatal = new Promise((resolve) => {
      this.reportFatal = resolve;
    });
    this.files = new FileService(
      {
        table: () => this.machine.files,
        isLeader: () => this.driverRef?.isLeader === true && !this.stopping,
        propose: (data) => this.proposeEntry(data),
        barrier: () => this.barrier(),
        peerHttp: () => this.peerHttp(),
        backlogBytes: () => this.driverRef?.unsnapshottedBytes ?? 0,
        backlogBytesMax: () =>
          uploadBacklogSnapshots *
          (this.driverRef?.snapshotTriggerBytes ?? config.snapshotBytes ?? defaultSnapshotBytes),
        log,
      },
      config.files,
    );
  }

  private get driver(): RaftDriver<ApplyResult> {
    const driver = this.driverRef;
    if (driver === null) throw new Error('the node is not started');
    return driver;
  }

  /** Opens the data directory, recovers, connects to the peers and starts serving. */
  static async start(config: TandemNodeConfig, fs: FileSystem, log: Logger): Promise<TandemNode> {
    const self = nodeId(config.id);
    const peers = peerAddressBook({
      self: config.id,
      configured: config.members,
      records: [],
      onUnusable: () => undefined,
    });
    let node: TandemNode | null = null;
    const openedAt = performance.now();
    const opened = await RaftStorage.open(fs, config.dataDir, {
      wal: {
        preallocate: true,
        prepareAfterBytes: 0,
        mayPrepare: () => roomToPrepare(config),
        onFatal: (failure) => node?.onFatal(failure),
      },
    });
    log.info(
      {
        entries: opened.persisted.entries.length,
        ms: Math.round(performance.now() - openedAt),
      },
      'read the write-ahead log',
    );
    let machine: NodeMachine;
    try {
      machine = new NodeMachine(join(config.dataDir, 'blobs'));
    } catch (failure) {
      await opened.storage.close().catch(() => undefined);
      throw failure;
    }
    const transport = new PeerTransport({
      self,
      clusterId: config.clusterId,
      listen: config.peerListen,
      peers,
      logger: log,
      incarnation: opened.storage.incarnation,
      expectedIncarnation: (id) => machine.registry.get(id)?.incarnation ?? '',
      onMessage: (message) => node?.driverRef?.step(message),
      onUnreachable: (peer) => node?.driverRef?.reportUnreachable(peer),
      onSnapshot: async (_from, message, chunks) => {
        const driver = node?.driverRef;
        if (driver === null || driver === undefined) throw new Error('the node is starting');
        await driver.receiveSnapshot(message, chunks);
      },
      onRequest: async (from, payload) => {
        if (node === null) throw new Error('the node is starting');
        const request = decodeForwardRequest(payload);
        if (request.kind === 'health') return encodeReplyBinary(encodeHealth(node.health.state()));
        return encodeReplyBinary(await node.runForwarded(request, from));
      },
    });
    node = new TandemNode(config, machine, transport, null, opened.storage.incarnation, log);
    machine.onMembersChanged = () => node?.updatePeers();
    machine.onFilesRestored = () => node?.repairFiles();
    const started = node;
    try {
      await transport.start();
      started.driverRef = await RaftDriver.start(
        {
          id: self,
          initialMembers: [...config.members.keys()].map(nodeId),
          tickMs: config.tickMs,
          raft: {
            electionTimeoutTicks: config.electionTimeoutTicks,
            heartbeatTicks: config.heartbeatTicks,
            readMode: config.readMode,
          },
          snapshotEntries: config.snapshotEntries,
          snapshotBytes: config.snapshotBytes ?? defaultSnapshotBytes,
          ...(config.snapshotLogRatio === undefined
            ? {}
            : { snapshotLogRatio: config.snapshotLogRatio }),
          ...(config.catchUpEntries === undefined ? {} : { catchUpEntries: config.catchUpEntries }),
          ...(config.retainEntriesMax === undefined
            ? {}
            : { retainEntriesMax: config.retainEntriesMax }),
          retainBytesMax: config.retainBytesMax ?? defaultRetainBytesMax,
          slowPersistMs: 500,
          pendingProposalsMax: 100_000,
          ...(config.pendingBytesMax === undefined
            ? {}
            : { pendingBytesMax: config.pendingBytesMax }),
          seed: randomInt(2 ** 31),
        },
        opened,
        machine,
        {
          send: (messages) => transport.send(messages),
          sendSnapshot: (message, chunks) => transport.sendSnapshot(message.to, message, chunks),
        },
        {
          onSynced: (ms) => {
            started.health.recordFsync(ms);
            for (const listener of started.persistListeners) listener(ms);
          },
          onFatal: (failure) => started.onFatal(failure),
          onApplied: (_index, result) => {
            if (result?.published !== undefined) started.deliver(result.published);
          },
        },
        log,
      );
    } catch (failure) {
      await transport.close().catch(() => undefined);
      await opened.storage.close().catch(() => undefined);
      throw failure;
    }
    started.expireTimer = setInterval(() => started.expireCycle(), config.expireCycleMs);
    started.health.start();
    const spaceMs = config.spaceCheckMs ?? defaultSpaceCheckMs;
    started.spaceTimer = setInterval(() => void started.space.cycle(), spaceMs);
    started.degradationTimer = setInterval(() => void started.health.cycle(), degradationCheckMs);
    started.gcTimer = setInterval(
      () => started.collectGarbage(),
      config.files?.gcIntervalMs ?? gcIntervalMsDefault,
    );
    // Chunks a snapshot or a crash left missing here are fetched once peers are known.
    setTimeout(
      () => started.repairFiles(),
      2 * config.tickMs * config.electionTimeoutTicks,
    ).unref();
    const registerMs = config.tickMs * config.electionTimeoutTicks;
    started.registerTimer = setInterval(() => {
      started.registerCycle().catch((failure: unknown) => {
        started.log.warn({ err: failure }, 'member registration or promotion failed; will retry');
      });
    }, registerMs);
    return started;
  }

  /** The kv state as applied on this node (swapped by snapshot installs; do not keep it). */
  get kv(): KvStateMachine {
    return this.machine.kv;
  }

  get isLeader(): boolean {
    return this.driver.isLeader;
  }

  /** Runs a write command through the log (forwarded to the leader from a follower). */
  write(db: number, argv: readonly string[], order: WriteOrder = alone): Promise<Reply> {
    return this.viaLeader({ kind: 'write', db, argv }, order);
  }

  /**
   * `write` without a promise, for the RESP connections' hot path: returns
   * the reply when it is known at once (a syntax error, a refusal that is
   * not retried), else null, and `sink` gets it later with `token`.
   */
  writeTo<Token>(
    db: number,
    argv: readonly string[],
    order: WriteOrder,
    sink: ReplySink<Token>,
    token: Token,
  ): Reply | null {
    const request: ForwardRequest = { kind: 'write', db, argv };
    const driver = this.driver;
    if (!driver.isLeader) {
      this.viaLeader(request, order).then(
        (reply) => sink.reply(token, reply),
        (failure: unknown) => sink.fail(token, failure),
      );
      return null;
    }
    const prepared = this.prepare(request, null);
    if (!(prepared instanceof Uint8Array)) return prepared;
    const write = new LeaderWrite(
      request,
      order,
      sink,
      token,
      this.retryWrite,
      this.config.requestTimeoutMs,
    );
    const refusal = driver.proposeTo(prepared, write);
    if (refusal === null) return null;
    const reply = refusedReply(refusal);
    if (!isTryAgain(reply)) return reply;
    write.answer(reply); // retried: answered later
    return null;
  }

  /** Runs a MULTI/EXEC block as one log entry; WATCHed revisions are checked at apply. */
  exec(
    db: number,
    commands: readonly (readonly string[])[],
    watched: readonly WatchedKey[],
    order: WriteOrder = alone,
  ): Promise<Reply> {
    return this.viaLeader({ kind: 'exec', db, commands, watched }, order);
  }

  /**
   * Runs a read command on local state: after a read barrier (linearizable),
   * or at once when `stale` (a READONLY connection). A read that gets its
   * barrier costs one reaction on the promise its round shares; a refused
   * one retries as `barrier()` does, within the same deadline.
   */
  read(db: number, argv: readonly string[], stale: boolean): Reply | Promise<Reply> {
    if (stale || plantedBugs.staleReads) {
      return this.machine.kv.read(db, argv, Date.now(), Math.random);
    }
    const started = Date.now();
    let barrier: Promise<void>;
    try {
      barrier = this.driver.readBarrier();
    } catch (failure) {
      return Promise.reject(failure);
    }
    return barrier.then(
      () => this.machine.kv.read(db, argv, Date.now(), Math.random),
      (failure: unknown) => this.readAfterRefusal(db, argv, started, failure),
    );
  }

  private async readAfterRefusal(
    db: number,
    argv: readonly string[],
    started: number,
    refused: unknown,
  ): Promise<Reply> {
    const failure = await this.barrier(started, refused);
    if (failure !== null) return failure;
    return this.machine.kv.read(db, argv, Date.now(), Math.random);
  }

  /** The revision WATCH records: read after a barrier, so EXEC compares with current state. */
  async watchRevision(db: number, key: string): Promise<number | Reply> {
    const failure = await this.barrier();
    if (failure !== null) return failure;
    return this.machine.kv.watchRevision(db, key);
  }

  onPublish(listener: (p: Published) => void): () => void {
    this.publishListeners.add(listener);
    return () => this.publishListeners.delete(listener);
  }

  /** How many followers hold the log up to `index` (WAIT); meaningful on the leader. */
  replicasAt(index: number): number {
    let count = 0;
    for (const pr of this.driver.status().progress.values()) if (pr.match >= index) count++;
    return count;
  }

  get appliedIndex(): number {
    return this.driver.appliedIndex;
  }

  info(): NodeInfo {
    const s = this.driver.status();
    const followers = [...s.progress].map(([id, pr]) => ({
      id,
      match: pr.match,
      lag: Math.max(0, s.lastIndex - pr.match),
      state: pr.state,
      // recentActive alone reads false for everyone just after each CheckQuorum round.
      active: pr.recentActive || this.driver.heardRecently(id),
    }));
    return {
      id: s.id,
      role: s.role,
      leader: s.leader,
      term: s.term,
      commit: s.commit,
      applied: this.driver.appliedIndex,
      lastIndex: s.lastIndex,
      snapshotIndex: s.snapshot.index,
      voters: s.membership.voters,
      learners: s.membership.learners,
      followers,
    };
  }

  /**
   * The keyspace's digest and the index it is as of, read together without
   * yielding, so two nodes at the same applied index must report the same
   * digest. Costs a pass over the keyspace: for checks, not for hot paths.
   */
  kvArena(): KvArenaStats {
    return this.machine.kv.arenaStats();
  }

  digest(): { applied: number; digest: string } {
    return { applied: this.driver.appliedIndex, digest: this.machine.kv.digest() };
  }

  peerStats(): ReturnType<PeerTransport['stats']> {
    return this.transport.stats();
  }

  driverStats(): RaftDriver<ApplyResult>['stats'] & {
    readonly walBatches: number;
    readonly walBytes: number;
    readonly walPreparedRotations: number;
    readonly walPlainRotations: number;
  } {
    const wal = this.driver.walCounters;
    return {
      ...this.driver.stats,
      walBatches: wal.batches,
      walBytes: wal.bytes,
      walPreparedRotations: wal.preparedRotations,
      walPlainRotations: wal.plainRotations,
    };
  }

  /** Fetches chunks the file table refers to that are not stored here, in the background. */
  repairFiles(): void {
    if (this.stopping) return;
    this.files.repair().catch((failure: unknown) => {
      this.log.warn({ err: failure }, 'chunk repair failed; will retry at the next trigger');
    });
  }

  private collectGarbage(): void {
    if (this.stopping) return;
    // Also retries chunks a snapshot or a crash left missing and no peer had then.
    this.repairFiles();
    this.files.collectGarbage(Date.now()).catch((failure: unknown) => {
      this.log.warn({ err: failure }, 'garbage collection of chunks failed; will retry');
    });
  }

  /** Admin HTTP addresses of the other registered members, the leader first. */
  peerHttp(): string[] {
    const leader = this.driverRef?.leaderId ?? '';
    return this.machine.registry
      .all()
      .filter((r) => r.id !== this.config.id && r.http !== '')
      .sort((a, b) => (a.id === leader ? -1 : b.id === leader ? 1 : 0))
      .map((r) => r.http);
  }

  /** The leader's admin HTTP address (host:port), or null if unknown or this node leads. */
  leaderHttp(): string | null {
    const driver = this.driverRef;
    if (driver === null || driver.isLeader || driver.leaderId === '') return null;
    const http = this.machine.registry.get(driver.leaderId)?.http ?? '';
    return http === '' ? null : http;
  }

  /**
   * Proposes a ready-made entry on the leader and waits for its apply here;
   * refusals that guarantee it was not applied answer `TRYAGAIN`.
   */
  private async proposeEntry(data: Uint8Array): Promise<Reply> {
    const driver = this.driver;
    if (!driver.isLeader) return noLeader;
    const alarm = this.machine.registry.anyAlarm();
    if (alarm !== undefined) {
      return error(`NOSPACE ${alarm.detail}: writes are refused until disk space is freed`);
    }
    try {
      const result = await driver.propose(data);
      if (result === null) return error('ERR internal: the entry applied without a result');
      return result.reply;
    } catch (failure) {
      if (!(failure instanceof RaftRefusedError)) throw failure;
      // Shut down while waiting, or the log replaced by a snapshot: applied or not, unknown.
      const kind = failure.refusal.kind;
      if (kind === 'shutdown' || kind === 'lost')
        return error(`${unknownOutcome}${failure.message}`);
      return error(`TRYAGAIN ${failure.message}`);
    }
  }

  /** Manual failover: hands leadership to `to`, or to the most caught-up voter. */
  transferLeadership(to: NodeId): void {
    this.driver.transferLeadership(to);
  }

  /** Graceful stop: hand leadership over if leader, flush, close. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.expireTimer !== null) clearInterval(this.expireTimer);
    if (this.registerTimer !== null) clearInterval(this.registerTimer);
    if (this.degradationTimer !== null) clearInterval(this.degradationTimer);
    if (this.spaceTimer !== null) clearInterval(this.spaceTimer);
    if (this.gcTimer !== null) clearInterval(this.gcTimer);
    this.files.stop();
    this.health.stop();
    const handoverMs = 2 * this.config.electionTimeoutTicks * this.config.tickMs;
    await this.driverRef?.stop(handoverMs);
    await this.transport.close();
    this.log.info('stopped');
  }

  /** The transport's address book: see address-book.ts. */
  private updatePeers(): void {
    if (this.stopping) return; // the transport may be closed already
    const book = peerAddressBook({
      self: this.config.id,
      configured: this.config.members,
      records: [...this.learned, ...this.machine.registry.all()],
      onUnusable: (record) =>
        this.log.warn(
          { member: record.id, peer: record.peer },
          'member has an unusable peer address',
        ),
    });
    this.transport.setPeers(book);
  }

  /**
   * Records a member's addresses (or removes them) through the log; on the
   * leader only. Resolves once applied here.
   */
  proposeMember(entry: MemberEntry): Promise<Reply> {
    return this.viaLeader({ kind: 'member', entry }, alone);
  }

  /**
   * Addresses learned from a member of the cluster this node joins, used
   * until its own registry (from the log) has them.
   */
  learnPeers(records: readonly MemberRecord[]): void {
    this.learned = [...records];
    this.updatePeers();
  }

  /** The record this node keeps in the registry: its addresses and incarnation. */
  ownRecord(): MemberRecord {
    const peer = this.config.members.get(this.config.id) ?? this.config.peerListen;
    return {
      id: this.config.id,
      peer: formatHostPort(peer),
      resp: this.config.respAddress ?? '',
      http: this.config.httpAddress ?? '',
      incarnation: this.incarnation,
    };
  }

  /**
   * Keeps this node's own registry record current (addresses, incarnation),
   * through the leader. A record under another incarnation means this data
   * directory replaced the one the cluster knows: never overwritten here.
   */
  private async registerCycle(): Promise<void> {
    const driver = this.driverRef;
    if (this.stopping || this.registering || driver === null || driver.leaderId === '') return;
    if (driver.isLeader) {
      this.registering = true;
      const lagMax = this.config.promoteLagEntries ?? defaultPromoteLagEntries;
      await autoPromote(this.membershipHost(), lagMax).finally(() => {
        this.registering = false;
      });
    }
    const own = this.ownRecord();
    const have = this.machine.registry.get(own.id);
    // Not a member here yet: this node has not applied the entries that added
    // it, so its registry may lack the record an operator registered (with
    // `learner`), and a record made from scratch would overwrite that one.
    // A node joining is registered by the leader (join.ts, addMember).
    if (have === undefined && !isMember(driver.membershipApplied, driver.id)) return;
    const want = have?.learner === true ? { ...own, learner: true } : own;
    if (have !== undefined && sameRecord(have, want)) return;
    if (have !== undefined && have.incarnation !== '' && have.incarnation !== want.incarnation) {
      if (!this.replacedLogged) {
        this.replacedLogged = true;
        this.log.error(
          { known: have.incarnation, ours: want.incarnation },
          `the cluster knows ${want.id} by another data directory: this one replaced it (a lost ` +
            'disk?), so peers will refuse this node; remove it from the cluster and add it again ' +
            'as a new member',
        );
      }
      return;
    }
    this.registering = true;
    try {
      const reply = await this.viaLeader(
        { kind: 'member', entry: { kind: 'set', record: want } },
        alone,
      );
      if (reply.kind === 'error') this.log.debug({ reply: reply.message }, 'registration deferred');
      else this.log.info({ record: want }, 'registered this node in the member registry');
    } finally {
      this.registering = false;
    }
  }

  /** Adds a member as a learner (leader only); see membership-admin.ts. */
  addMember(record: MemberRecord): Promise<AdminAnswer> {
    return addMember(this.membershipHost(), record);
  }

  promoteMember(id: string, force: boolean): Promise<AdminAnswer> {
    return promoteMember(this.membershipHost(), nodeId(id), force);
  }

  removeMember(id: string, force: boolean): Promise<AdminAnswer> {
    return removeMember(this.membershipHost(), nodeId(id), force);
  }

  private membershipHost(): MembershipHost {
    const driver = this.driver;
    return {
      id: nodeId(this.config.id),
      isLeader: driver.isLeader,
      registry: this.machine.registry,
      view: () => {
        const info = this.info();
        return {
          leader: info.leader,
          voters: info.voters,
          learners: info.learners,
          lastIndex: info.lastIndex,
          followers: info.followers,
        };
      },
      proposeMember: (entry) => this.proposeMember(entry),
      proposeConfChange: (change) => driver.proposeConfChange(change),
      log: this.log,
    };
  }

  /**
   * A backup as of a committed index: after a read barrier (so it holds
   * every write acknowledged before the call), the state machine's image,
   * streamed with a checksum (backup.ts).
   */
  async backup(): Promise<{ meta: BackupMeta; stream: AsyncIterable<Uint8Array> } | Reply> {
    const failure = await this.barrier();
    if (failure !== null) return failure;
    const image = this.driver.captureImage();
    if (image === null) return error('ERR nothing to back up yet: no entry was applied');
    const meta: BackupMeta = {
      snapshot: image.meta,
      clusterId: this.config.clusterId,
      node: this.config.id,
      createdAt: new Date().toISOString(),
    };
    return { meta, stream: writeBackup(meta, image.data) };
  }

  /**
   * Calls `listener` with the time each Ready with entries or a hard state
   * took from being handed to storage until durable (write and fsync).
   */
  onPersisted(listener: (ms: number) => void): void {
    this.persistListeners.push(listener);
  }

  /** Raised alarms (NOSPACE), cluster-wide. */
  alarms(): Alarm[] {
    return this.machine.registry.alarms();
  }

  /** The member registry's records (addresses of every registered member). */
  members(): MemberRecord[] {
    return this.machine.registry.all();
  }

  /** Counters for metrics. */
  get counters(): { readonly degradedHandovers: number } {
    return { degradedHandovers: this.health.handovers };
  }

  /** A follower's health, as it answers (null if it did not answer in time). */
  private async askHealth(to: NodeId): Promise<HealthState | null> {
    try {
      const payload = encodeForwardRequest({ kind: 'health' });
      return decodeHealth(
        decodeReplyBinary(await this.transport.request(to, payload, healthAskMs)),
      );
    } catch (failure) {
      if (failure instanceof TransportError) return null;
      throw failure;
    }
  }

  /**
   * Storage failed: the node must stop. If the disk is full, its peers are
   * asked first to raise the NOSPACE alarm for it (this node can no longer
   * write its own log), so the cluster refuses writes instead of filling
   * the other nodes' disks too.
   */
  private onFatal(failure: unknown): void {
    // The WAL and the driver may both report the same failure.
    if (this.failing) return;
    this.failing = true;
    const full = diskFullCause(failure);
    if (full === null || this.stopping || this.driverRef === null) {
      this.reportFatal(failure);
      return;
    }
    const alarm = {
      id: this.config.id,
      kind: 'nospace' as const,
      detail: `${this.config.id} could not write its log: disk full (${full.path})`,
    };
    const info = this.info();
    const peers = [...info.voters, ...info.learners].filter((id) => id !== info.id);
    const electionMs = this.config.tickMs * this.config.electionTimeoutTicks;
    this.log.error({ path: full.path }, 'disk full: asking the cluster to raise the NOSPACE alarm');
    const ask = async (peer: NodeId, request: ForwardRequest, timeoutMs: number) =>
      decodeReplyBinary(
        await this.transport.request(peer, encodeForwardRequest(request), timeoutMs),
      );
    raiseThroughPeers(peers, alarm, ask, 4 * electionMs, this.config.tickMs)
      .then((raised) => {
        if (raised) this.log.warn('the NOSPACE alarm is raised');
        else this.log.error('could not raise the NOSPACE alarm: no leader answered in time');
      })
      .finally(() => this.reportFatal(failure));
  }

  private deliver(published: readonly Published[]): void {
    for (const p of published) for (const listener of this.publishListeners) listener(p);
  }

  /**
   * Waits for a read barrier, retrying while there is no leader, until
   * `requestTimeoutMs` after `started`; an error Reply on failure. `refused`
   * is the failure of an attempt already made.
   */
  async barrier(started: number = Date.now(), refused?: unknown): Promise<Reply | null> {
    const deadline = started + this.config.requestTimeoutMs;
    let failure = refused;
    for (;;) {
      if (failure !== undefined) {
        if (!(failure instanceof RaftRefusedError)) throw failure;
        if (this.stopping || Date.now() + this.config.tickMs >= deadline) {
          return error(`TRYAGAIN ${failure.message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, this.config.tickMs));
      }
      try {
        await this.driver.readBarrier();
        return null;
      } catch (caught) {
        failure = caught;
      }
    }
  }

  /**
   * Runs a write on the leader, forwarding it there from a follower. A
   * `TRYAGAIN` answer means the write was not applied: it is retried while
   * time remains, unless a later write of the same client went out meanwhile.
   * The common case (this node leads, the write commits) costs one promise
   * chain, with no async wrapper per layer.
   */
  private viaLeader(request: ForwardRequest, order: WriteOrder): Promise<Reply> {
    const deadline = Date.now() + this.config.requestTimeoutMs;
    let first: Promise<Reply>;
    try {
      first = this.tryViaLeader(request, deadline);
    } catch (failure) {
      return Promise.reject(failure); // callers get a promise, as from an async function
    }
    return first.then((reply) =>
      isTryAgain(reply) ? this.retryViaLeader(request, order, deadline, reply) : reply,
    );
  }

  private readonly retryWrite: RetryWrite = (request, order, deadline, refused) =>
    this.retryViaLeader(request, order, deadline, refused);

  private async retryViaLeader(
    request: ForwardRequest,
    order: WriteOrder,
    deadline: number,
    refused: Reply,
  ): Promise<Reply> {
    let reply = refused;
    while (isTryAgain(reply)) {
      if (this.stopping || Date.now() + this.config.tickMs >= deadline) return reply;
      await new Promise((resolve) => setTimeout(resolve, this.config.tickMs));
      if (!order.mayRetry()) return reply;
      reply = await this.tryViaLeader(request, deadline);
    }
    return reply;
  }

  private tryViaLeader(request: ForwardRequest, deadline: number): Promise<Reply> {
    const driver = this.driver;
    if (driver.isLeader) return this.runForwarded(request);
    const leader = driver.leaderId;
    if (leader === '') return Promise.resolve(noLeader);
    const payload = encodeForwardRequest(request);
    const timeoutMs = Math.max(1, deadline - Date.now());
    return this.transport.request(leader, payload, timeoutMs).then(decodeReplyBinary, (failure) => {
      if (failure instanceof TransportError) {
        // Not sent at all: the write was not applied.
        if (failure.code === 'unreachable' || failure.code === 'busy') return noLeader;
        return error(`ERR the write may or may not have been applied: ${failure.message}`);
      }
      throw failure;
    });
  }

  /**
   * On the leader: stamp, propose and wait for the apply. Refusals that
   * guarantee the write was not applied answer `TRYAGAIN`.
   */
  private runForwarded(request: ForwardRequest, from: NodeId | null = null): Promise<Reply> {
    const driver = this.driver;
    if (!driver.isLeader) return Promise.resolve(noLeader);
    const prepared = this.prepare(request, from);
    if (!(prepared instanceof Uint8Array)) return Promise.resolve(prepared);
    return driver.propose(prepared).then(appliedReply, refusedReply);
  }

  /** The entry to propose for `request`, or the error to answer without proposing. */
  private prepare(request: ForwardRequest, from: NodeId | null): Uint8Array | Reply {
    if (request.kind === 'health') return error('ERR internal: a health question is not a write');
    const refusal = spaceRefusal(this.machine.registry, request);
    if (refusal !== null) return refusal;
    if (request.kind === 'member') {
      const id = entryMember(request.entry);
      if (from !== null && id !== from) {
        return error(`ERR ${from} may register only itself, not ${id}`);
      }
      const info = from === null ? null : this.info();
      if (
        info !== null &&
        !info.voters.includes(nodeId(id)) &&
        !info.learners.includes(nodeId(id))
      ) {
        // A removed node must not put itself back: joining goes through the admin API.
        return error(`ERR ${id} is not a member of the cluster; join it first (--join)`);
      }
      return encodeMemberEntry(request.entry);
    }
    const kv = this.machine.kv;
    const now = Date.now();
    // Seeds the command's replicated randomness (SPOP, RANDOMKEY...): it needs
    // to be varied, not secret, and crypto's randomInt was 0.6% of the
    // leader's CPU profile under pipelined SETs.
    const seed = Math.floor(Math.random() * 2 ** 32);
    return request.kind === 'write'
      ? kv.prepareWrite(request.db, request.argv, now, seed)
      : kv.prepareExec(request.db, request.commands, request.watched, now, seed);
  }

  private expireCycle(): void {
    const driver = this.driverRef;
    if (driver === null || !driver.isLeader || this.expiring) return;
    const now = Date.now();
    const keys = this.machine.kv.expiredCandidates(now, this.config.expireKeysPerCycle);
    if (keys.length === 0) return;
    this.expiring = true;
    driver
      .propose(this.machine.kv.prepareExpire(keys, now))
      .catch(() => undefined)
      .finally(() => {
        this.expiring = false;
      });
  }
}
