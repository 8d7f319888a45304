/**
 * One simulated server process: the runtime issue 4 builds for real, here
 * over a simulated disk and clock. It owns a consensus core and drives it
 * (Ready → persist → send → apply → advance), persists through the real
 * `RaftStorage` over its own simulated disk, applies committed writes to the
 * real KV state machine (`KvStateMachine`; kv-ops.ts maps the clients'
 * operations onto it), serves reads (and the read of a cas) once their read
 * index is applied, and snapshots/compacts the log.
 *
 * Storage is asynchronous: its promises settle while the simulation drains
 * microtasks after the event that completed a disk operation (sim/disk). A
 * crash kills the process incarnation (`epoch`): whatever its pending
 * promises would have done is dropped. A start recovers from the disk and is
 * checked against what storage acknowledged as durable before (`durable`).
 */

import { KvStateMachine, type Reply } from '../src/kv/index.js';
import {
  DegradationDetector,
  type DegradationLimits,
  type HealthState,
  takeoverRefusal,
} from '../src/node/degradation.js';
import type { PersistedState, ReadMode } from '../src/raft/config.js';
import type { Message } from '../src/raft/messages.js';
import type { Prng } from '../src/raft/prng.js';
import type { Ready } from '../src/raft/ready.js';
import type { ProposeResult, Refusal, RequestResult } from '../src/raft/results.js';
import { notLeader } from '../src/raft/results.js';
import type {
  ConfChange,
  Entry,
  HardState,
  Membership,
  NodeId,
  ReadState,
  Role,
  SnapshotMeta,
  SoftState,
} from '../src/raft/types.js';
import { logIndex, noNode } from '../src/raft/types.js';
import type { RaftStorage } from '../src/storage/raft-storage.js';
import type { KvInput, KvOutput } from './checker/history.js';
import { entryDigest, type SafetyChecker } from './checker/safety.js';
import type { NodeDisk } from './disk/node-disk.js';
import { DurableStore } from './durable-store.js';
import { digestBytes } from './hash.js';
import {
  getValue,
  type KvCas,
  type KvWrite,
  prepareCas,
  restoreKv,
  simDb,
  snapshotBytes,
  writeArgv,
  writeOutput,
} from './kv-ops.js';
import type { MakeNode, SimRaft } from './raft-core.js';
import type { Trace } from './trace.js';

/** A message in flight, with what the runtime attaches (snapshot bytes). */
export interface Envelope {
  readonly message: Message;
  /** The stored snapshot the sender streams with a `snapshot` message. */
  readonly snapshotBytes: Uint8Array | null;
  /** False for the duplicate copy of a duplicated message (it reports nothing). */
  readonly primary: boolean;
  readonly senderEpoch: number;
}

export type RequestOutcome =
  /** Completed with this output. */
  | { readonly kind: 'ok'; readonly output: KvOutput }
  /** Refused before anything was proposed: it will never take effect. */
  | { readonly kind: 'refused'; readonly refusal: Refusal }
  /** Proposed, but another entry was applied at its index: it can never commit. */
  | { readonly kind: 'failed'; readonly reason: string }
  /** Outcome unknowable (crash, compacted away): it may or may not take effect. */
  | { readonly kind: 'lost'; readonly reason: string };

/** A client operation as it reaches a node. */
export interface NodeRequest {
  readonly opId: number;
  readonly input: KvInput;
  done(outcome: RequestOutcome): void;
}

export type NodeAction =
  | { readonly kind: 'tick' }
  /** The degradation detector's periodic check (every `degradationCheckMs`). */
  | { readonly kind: 'degradationCheck' }
  /** On a leader, commitNoticeMs after its commit advanced: spread it (RaftNode.spreadCommit). */
  | { readonly kind: 'commitNotice' }
  /** Storage acknowledged a persist: finish the Readys that are durable, in order. */
  | { readonly kind: 'disk' }
  | { readonly kind: 'snapshotSaved'; readonly meta: SnapshotMeta; readonly bytes: Uint8Array }
  | { readonly kind: 'deliver'; readonly envelope: Envelope }
  | { readonly kind: 'snapshotReport'; readonly to: NodeId; readonly ok: boolean }
  | { readonly kind: 'unreachable'; readonly to: NodeId }
  | { readonly kind: 'request'; readonly request: NodeRequest };

export interface NodeSettings {
  readonly tickMs: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readMode: ReadMode;
  readonly leaseMarginTicks: number;
  readonly appendEntriesMax: number;
  readonly inflightMessagesMax: number;
  readonly snapshotThresholdEntries: number;
  readonly followerReads: boolean;
  /** Failover on degradation: the detector's limits, or null when it is off. */
  readonly degradation: DegradationLimits | null;
}

/** What a node needs from the simulation around it. */
export interface NodeHost {
  readonly nowMs: number;
  readonly checker: SafetyChecker;
  readonly trace: Trace;
  readonly makeNode: MakeNode;
  /** Schedules `action` for this incarnation of `node` (dropped if it crashes first). */
  schedule(atMs: number, node: SimNode, action: NodeAction): void;
  send(from: SimNode, message: Message): void;
  /** `envelope` was stepped into its receiver (the sender learns a snapshot arrived). */
  onDelivered(envelope: Envelope): void;
  /** A membership entry was applied (the operator watches for committed changes). */
  onConfApplied(node: SimNode, entry: Entry): void;
  /** The node's role changed (the nemesis may aim a fault at it). */
  onRoleChange(node: SimNode, role: Role): void;
  /** Storage work was started: microtasks must be drained after this event. */
  asyncStarted(): void;
  /** Runs a continuation of asynchronous work; an exception becomes a violation. */
  guard(fn: () => void): void;
  /** The process exits on a storage failure; the host restarts it later. */
  onProcessExit(node: SimNode, why: string): void;
  /** The node cannot start from its disk (damaged): it stays down for good. */
  onDiskLost(node: SimNode): void;
  /**
   * The leader `from` asks node `to` whether it is healthy (the real server
   * sends it a request): its detector's state now, or null if it cannot
   * answer (down, paused, or cut off from `from`).
   */
  askHealth(from: SimNode, to: NodeId): HealthState | null;
}

interface PendingWrite {
  readonly rd: Ready;
  readonly snapshotBytes: Uint8Array | null;
  /** The node's term when the Ready was handed out: its committed entries were committed by then. */
  readonly term: number;
  /** Nothing to persist (no entries, snapshot or sync): not given to storage. */
  readonly noop: boolean;
  state: 'queued' | 'issued' | 'done';
}

interface PendingProposal {
  readonly term: number;
  readonly request: NodeRequest;
  readonly input: KvWrite;
}

/** A get, or the read a cas starts with: served once the read index is applied. */
interface PendingRead {
  readonly request: NodeRequest;
  readonly input: Extract<KvInput, { readonly op: 'get' }> | KvCas;
  index: number | null;
}

/** What a start recovered from the disk. */
interface Recovered {
  readonly storage: RaftStorage;
  readonly persisted: PersistedState;
  readonly kvBytes: Uint8Array;
  readonly dir: string;
}

/** Limits: a runaway core or runtime shows up as a violation, not a hang. */
const readyLoopMax = 64;
const pendingReadsMax = 10_000;
const receivedSnapshotsMax = 4;
const deferredActionsMax = 200_000;
/** How often a node samples its degradation detector (the real server's period). */
export const degradationCheckMs = 1_000;
/** As the real driver: a leader's commit notices wait this long for an append to carry the commit. */
const commitNoticeMs = 2;

export class SimNode {
  /** Incarnation: bumps on crash and restart; stale scheduled actions are dropped. */
  epoch = 0;
  raft: SimRaft | null = null;
  /** Removed from the cluster and shut down for good. */
  stopped = false;
  /** Its disk could not be recovered: down for good, waiting to be removed. */
  lost = false;
  /** Recovering from the disk (between `start` and the core running). */
  starting = false;
  paused = false;
  role: Role = 'follower';
  leader: NodeId = noNode;
  /** Invariant: applied equals the index the state machine reflects. */
  applied = 0;
  /** The real kv state machine; its appliedIndex is the last kv entry at or below `applied`. */
  kv = new KvStateMachine();
  driftFactor: number;
  /**
   * What storage acknowledged as durable (each persist and snapshot save as
   * it resolves): a restart must recover at least this, and the log
   * matching checker sees entries as they get here.
   */
  durable: DurableStore;
  private storage: RaftStorage | null = null;
  private appliedMembership: Membership;
  private deferred: NodeAction[] = [];
  private tickWaiting = false;
  private commitNoticeArmed = false;
  private nextTickAtMs = 0;
  /** Readys handed out and not finished, in order. */
  private writes: PendingWrite[] = [];
  /** `writes` before this position were given to storage (or need not be). */
  private issueAt = 0;
  /** An application snapshot is being saved. */
  private snapshotting = false;
  /**
   * Entries from this index on may have been overwritten by a write in
   * flight at the last crash, so a restart need not find the acknowledged ones.
   */
  private overwriteFloor = Number.POSITIVE_INFINITY;
  /** The core's term as of the latest Ready (or the durable one after a restart). */
  private knownTerm = 0;
  private readonly proposals = new Map<number, PendingProposal[]>();
  private readonly reads = new Map<string, PendingRead>();
  private readSeq = 0;
  private readonly received = new Map<string, Uint8Array>();
  /** The seeds this node stamps into the kv entries it proposes, and reads' randomness. */
  private readonly kvRandom: Prng;
  /**
   * Leaderships this node handed over because its detector said it was
   * degraded, over all its incarnations (the server's metric counter).
   */
  degradedHandovers = 0;
  /** This incarnation's detector (a new process starts with no samples); null when off or down. */
  private degradation: DegradationDetector | null = null;
  /** One "degraded but keeps leadership" line per slow spell, not one per check. */
  private refusalTraced = false;

  constructor(
    private readonly host: NodeHost,
    readonly id: NodeId,
    private readonly settings: NodeSettings,
    private readonly random: Prng,
    /** The state a founding member starts from when its disk is empty. */
    private readonly bootstrap: PersistedState,
    driftFactor: number,
    readonly disk: NodeDisk,
  ) {
    this.driftFactor = driftFactor;
    this.kvRandom = random.fork();
    this.durable = new DurableStore(emptyState, emptyKvBytes);
    this.appliedMembership = emptyState.snapshot.membership;
  }

  /** The digest of the state machine's snapshot image, for the replica convergence check. */
  kvDigest(): number {
    return digestBytes(snapshotBytes(this.kv));
  }

  get up(): boolean {
    return this.raft !== null;
  }

  /** The membership as of the last applied entry (committed). */
  get membershipApplied(): Membership {
    return this.appliedMembership;
  }

  get tickIntervalMs(): number {
    return this.settings.tickMs * (1 + this.driftFactor);
  }

  /** Starts (or restarts) the process: it recovers from its disk, then runs. */
  start(): void {
    if (this.stopped || this.lost || this.raft !== null || this.starting) return;
    this.epoch++;
    this.starting = true;
    const epoch = this.epoch;
    const fs = this.disk.attach();
    this.host.asyncStarted();
    this.recover(fs).then(
      (recovered) => this.host.guard(() => this.onRecovered(epoch, recovered)),
      (error: unknown) => this.host.guard(() => this.onRecoverFailed(epoch, error)),
    );
  }

  private async recover(fs: ReturnType<NodeDisk['attach']>): Promise<Recovered> {
    const { storage, persisted, dir } = await this.disk.open(fs);
    let state = persisted;
    if (isEmpty(persisted) && this.bootstrap.entries.length > 0) {
      // A founding member's first start (what `tandem init` would write).
      await storage.persist({
        ...noopReady,
        hardState: this.bootstrap.hardState,
        entries: this.bootstrap.entries,
        mustSync: true,
      });
      state = this.bootstrap;
    }
    let kvBytes = emptyKvBytes;
    if (state.snapshot.index > 0) kvBytes = await readAll(storage, state.snapshot);
    return { storage, persisted: state, kvBytes, dir };
  }

  private onRecovered(epoch: number, r: Recovered): void {
    if (epoch !== this.epoch || !this.starting) return;
    const problem = recoveryProblem(this.durable, r.persisted, this.overwriteFloor);
    const persisted = r.persisted;
    if (problem !== null) {
      if (this.disk.everCorrupted) {
        this.loseDisk(
          `recovered without data it had acknowledged as durable, after sector corruption (the torn-tail blind spot): ${problem}`,
        );
        return;
      }
      this.host.checker.violation(
        `${this.id}: storage lost acknowledged data across a crash: ${problem}`,
      );
    }
    this.starting = false;
    this.overwriteFloor = Number.POSITIVE_INFINITY;
    this.storage = r.storage;
    // What storage holds: the next start is checked against it.
    this.durable = new DurableStore(persisted, r.kvBytes);
    this.knownTerm = persisted.hardState.term;
    const s = this.settings;
    this.raft = this.host.makeNode(
      {
        id: this.id,
        random: this.random.fork(),
        electionTimeoutTicks: s.electionTimeoutTicks,
        heartbeatTicks: s.heartbeatTicks,
        preVote: s.preVote,
        checkQuorum: s.checkQuorum,
        readMode: s.readMode,
        leaseMarginTicks: s.leaseMarginTicks,
        appendEntriesMax: s.appendEntriesMax,
        inflightMessagesMax: s.inflightMessagesMax,
      },
      { ...persisted, entries: [...persisted.entries] },
    );
    this.kv = restoreKv(r.kvBytes);
    this.applied = persisted.snapshot.index;
    this.appliedMembership = persisted.snapshot.membership;
    this.role = 'follower';
    this.leader = noNode;
    this.nextTickAtMs = this.host.nowMs + this.tickIntervalMs * this.random.float();
    this.host.schedule(this.nextTickAtMs, this, { kind: 'tick' });
    if (s.degradation !== null) {
      this.degradation = new DegradationDetector(s.degradation);
      this.refusalTraced = false;
      this.host.schedule(this.host.nowMs + degradationCheckMs, this, { kind: 'degradationCheck' });
    }
    this.trace(
      `start (${r.dir}: snapshot ${this.applied}, log to ${this.durable.lastIndex}, term ${persisted.hardState.term})`,
    );
    this.processReady();
  }

  private onRecoverFailed(epoch: number, error: unknown): void {
    if (epoch !== this.epoch || !this.starting) return;
    const text = describeError(error);
    if (this.disk.everCorrupted) {
      this.loseDisk(`storage refused to start: ${text}`);
      return;
    }
    this.starting = false;
    this.host.checker.violation(
      `${this.id}: storage failed to start with no corruption injected: ${text}`,
    );
  }

  /** Its disk is damaged beyond recovery: the node stays down until it is removed. */
  private loseDisk(why: string): void {
    this.starting = false;
    this.lost = true;
    this.disk.crash();
    this.epoch++;
    this.trace(`lost its disk: ${why}`);
    this.host.onDiskLost(this);
  }

  /** Kills the process, and its machine: only what the disk made durable survives. */
  crash(why: string): void {
    if (this.raft === null && !this.starting) return;
    // Writes given to storage but not acknowledged may have reached the disk.
    for (const w of this.writes) {
      const first = w.rd.entries[0];
      if (w.state === 'issued' && first !== undefined) {
        this.overwriteFloor = Math.min(this.overwriteFloor, first.index);
      }
    }
    this.raft = null;
    this.storage = null;
    this.degradation = null;
    this.starting = false;
    this.disk.crash();
    this.epoch++;
    this.paused = false;
    this.deferred = [];
    this.tickWaiting = false;
    this.commitNoticeArmed = false;
    this.writes = [];
    this.issueAt = 0;
    this.snapshotting = false;
    this.received.clear();
    this.role = 'follower';
    this.leader = noNode;
    for (const list of this.proposals.values()) {
      for (const p of list) p.request.done({ kind: 'lost', reason: `${this.id} ${why}` });
    }
    this.proposals.clear();
    for (const r of this.reads.values())
      r.request.done({ kind: 'lost', reason: `${this.id} ${why}` });
    this.reads.clear();
    this.trace(why);
  }

  pause(): void {
    if (this.raft === null || this.paused) return;
    this.paused = true;
    this.trace('paused');
  }

  /**
   * Resumes a paused process. Its clock kept running: it first catches up the
   * ticks it missed (what lease reads depend on), then handles what arrived.
   */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const raft = this.raft;
    if (raft === null) return;
    const now = this.host.nowMs;
    if (this.tickWaiting) {
      this.tickWaiting = false;
      const interval = this.tickIntervalMs;
      const missed =
        now >= this.nextTickAtMs ? Math.floor((now - this.nextTickAtMs) / interval) + 1 : 0;
      // Beyond two election timeouts every timer has fired; more ticks change nothing.
      const ticks = Math.min(missed, 4 * this.settings.electionTimeoutTicks);
      this.trace(
        `resumed: catching up ${ticks} ticks, then ${this.deferred.length} deferred events`,
      );
      for (let i = 0; i < ticks && this.raft === raft; i++) {
        raft.tick();
        this.processReady();
      }
      this.nextTickAtMs += missed * interval;
      this.host.schedule(this.nextTickAtMs, this, { kind: 'tick' });
    } else {
      this.trace(`resumed: ${this.deferred.length} deferred events`);
    }
    const deferred = this.deferred;
    this.deferred = [];
    for (const action of deferred) {
      if (this.raft !== raft || this.paused) break;
      this.run(action);
    }
  }

  /** Entry point for everything addressed to this process. */
  dispatch(action: NodeAction): void {
    if (this.raft === null) return;
    if (this.paused) {
      if (action.kind === 'tick') this.tickWaiting = true;
      else if (this.deferred.length < deferredActionsMax) this.deferred.push(action);
      else
        this.host.checker.violation(`${this.id}: more than ${deferredActionsMax} deferred events`);
      return;
    }
    this.run(action);
  }

  /** An admin request (from the operator or nemesis) to this node's core. */
  proposeConfChange(change: ConfChange): ProposeResult {
    const raft = this.raft;
    if (raft === null || this.paused)
      return { ok: false, refusal: notLeader(noNode, 'a membership change') };
    const result = raft.proposeConfChange(change);
    this.processReady();
    return result;
  }

  transferLeadership(to: NodeId): RequestResult {
    const raft = this.raft;
    if (raft === null || this.paused)
      return { ok: false, refusal: notLeader(noNode, 'a transfer') };
    const result = raft.transferLeadership(to);
    this.processReady();
    return result;
  }

  /**
   * Reads the stored snapshot described by `meta` from storage, to stream it
   * to a follower. Rejects if it is not stored (retired, or not yet durable)
   * or damaged; never settles if the process dies first.
   */
  readStoredSnapshot(meta: SnapshotMeta): Promise<Uint8Array> {
    const storage = this.storage;
    if (storage === null) return Promise.reject(new Error(`${this.id} is not running`));
    this.host.asyncStarted();
    return readAll(storage, meta);
  }

  /** The stored snapshot read for sending turned out damaged: the process exits. */
  onSnapshotDamaged(epoch: number, error: unknown): void {
    if (epoch !== this.epoch || this.raft === null) return;
    this.host.onProcessExit(this, `exited: ${describeError(error)}`);
  }

  private run(action: NodeAction): void {
    const raft = this.raft;
    if (raft === null) return;
    switch (action.kind) {
      case 'tick':
        raft.tick();
        this.nextTickAtMs += this.tickIntervalMs;
        this.host.schedule(this.nextTickAtMs, this, { kind: 'tick' });
        break;
      case 'disk':
        this.finishWrites(raft);
        break;
      case 'commitNotice':
        this.commitNoticeArmed = false;
        raft.spreadCommit();
        break;
      case 'degradationCheck':
        this.host.schedule(this.host.nowMs + degradationCheckMs, this, action);
        this.degradationCycle(raft);
        break;
      case 'snapshotSaved':
        this.onSnapshotSaved(raft, action.meta, action.bytes);
        break;
      case 'deliver': {
        const { message, snapshotBytes } = action.envelope;
        if (message.type === 'snapshot' && snapshotBytes !== null) {
          this.keepReceivedSnapshot(message.snapshot, snapshotBytes);
        }
        this.host.trace.message(this.host.nowMs, this.id, 'recv', message);
        raft.step(message);
        this.host.onDelivered(action.envelope);
        break;
      }
      case 'snapshotReport':
        raft.reportSnapshot(action.to, action.ok);
        break;
      case 'unreachable':
        raft.reportUnreachable(action.to);
        break;
      case 'request':
        this.onRequest(raft, action.request);
        break;
    }
    this.processReady();
  }

  private processReady(): void {
    const raft = this.raft;
    if (raft === null) return;
    for (let i = 0; i < readyLoopMax; i++) {
      if (!raft.hasReady()) {
        // After a commit, or an acknowledgement from a follower behind the commit.
        if (!this.commitNoticeArmed && raft.hasUntoldCommit()) {
          this.commitNoticeArmed = true;
          this.host.schedule(this.host.nowMs + commitNoticeMs, this, { kind: 'commitNotice' });
        }
        return;
      }
      this.onReady(raft, raft.ready());
      if (this.raft !== raft) return;
    }
    this.host.checker.violation(`${this.id}: hasReady() still true after ${readyLoopMax} Readys`);
  }

  private onReady(raft: SimRaft, rd: Ready): void {
    if (rd.softState !== null) this.onSoftState(raft, rd.softState);
    let snapshotBytes: Uint8Array | null = null;
    if (rd.snapshot !== null) {
      snapshotBytes = this.received.get(snapshotKey(rd.snapshot)) ?? null;
      if (snapshotBytes === null) {
        this.host.checker.violation(
          `${this.id}: Ready carries snapshot ${rd.snapshot.index}@${rd.snapshot.term} but no such snapshot was received`,
        );
        return;
      }
    }
    for (const m of rd.messages) this.host.send(this, m);
    for (const rs of rd.readStates) this.onReadState(raft, rs);
    if (rd.hardState !== null) this.knownTerm = rd.hardState.term;
    const noop = rd.entries.length === 0 && rd.snapshot === null && !rd.mustSync;
    this.writes.push({
      rd,
      snapshotBytes,
      term: this.knownTerm,
      noop,
      state: noop ? 'done' : 'queued',
    });
    if (noop) {
      // Nothing to persist: done once every Ready before it is (at once if none is pending).
      if (this.writes.length === 1) this.finishWrites(raft);
      return;
    }
    this.issueWrites();
  }

  /** This node's health now, as it answers a leader that asks (null when the detector is off). */
  healthState(): HealthState | null {
    return this.degradation?.state(this.host.nowMs) ?? null;
  }

  /**
   * On the leader: once its detector says it stayed slow, hands leadership to
   * an up-to-date, recently active voter that says it is healthy (as
   * src/node/leader-health.ts does); without one it keeps leadership and
   * says why, once per slow spell.
   */
  private degradationCycle(raft: SimRaft): void {
    const detector = this.degradation;
    if (detector === null || this.role !== 'leader') return;
    const now = this.host.nowMs;
    const verdict = detector.check(now);
    if (!verdict.degraded) {
      if (verdict.reason === 'healthy') this.refusalTraced = false;
      return;
    }
    const { to, why } = this.healthyTransferee(raft);
    if (to === null) {
      if (!this.refusalTraced) {
        this.refusalTraced = true;
        this.trace(`degraded (${verdict.reason}), but keeps leadership: ${why}`);
      }
      return;
    }
    this.refusalTraced = false;
    this.degradedHandovers++;
    detector.handedOver(now);
    this.trace(
      `degraded (${verdict.reason}): handing leadership to ${to} (handover ${this.degradedHandovers})`,
    );
    const result = raft.transferLeadership(to);
    if (!result.ok) this.trace(`leadership transfer to ${to} refused: ${result.refusal.message}`);
  }

  /**
   * The voter to hand over to: up to date (it matches the leader's last
   * index), recently active, and healthy by its own detector; the healthiest
   * such (lowest fsync p99), ties in membership order. Otherwise why none.
   */
  private healthyTransferee(raft: SimRaft): { to: NodeId | null; why: string } {
    const status = raft.status();
    const limits = this.settings.degradation;
    let best: { id: NodeId; fsyncP99Ms: number } | null = null;
    const refused: string[] = [];
    for (const id of status.membership.voters) {
      if (id === this.id) continue;
      const pr = status.progress.get(id);
      if (pr === undefined || pr.match !== status.lastIndex || !pr.recentActive) {
        refused.push(`${id} is not up to date and active`);
        continue;
      }
      const theirs = this.host.askHealth(this, id);
      const refusal =
        theirs === null || limits === null ? 'did not answer' : takeoverRefusal(limits, theirs);
      if (theirs === null || refusal !== null) {
        refused.push(`${id} ${refusal}`);
        continue;
      }
      if (best === null || theirs.fsyncP99Ms < best.fsyncP99Ms) {
        best = { id, fsyncP99Ms: theirs.fsyncP99Ms };
      }
    }
    if (best !== null) return { to: best.id, why: '' };
    return { to: null, why: refused.length > 0 ? refused.join('; ') : 'no other voter' };
  }

  /** Gives the queued Readys to storage, in order (its persists resolve in that order). */
  private issueWrites(): void {
    const storage = this.storage;
    if (storage === null) return;
    while (this.issueAt < this.writes.length) {
      const w = this.writes[this.issueAt] as PendingWrite;
      if (!w.noop) this.issue(storage, w);
      this.issueAt++;
    }
  }

  private issue(storage: RaftStorage, w: PendingWrite): void {
    w.state = 'issued';
    const epoch = this.epoch;
    this.host.asyncStarted();
    const bytes = w.snapshotBytes ?? undefined;
    const startedMs = this.host.nowMs;
    storage.persist(w.rd, bytes).then(
      () =>
        this.host.guard(() => {
          if (epoch !== this.epoch) return;
          // As the real driver measures it: a persist that had to fsync, issue to durable.
          if (w.rd.mustSync) {
            this.degradation?.record('fsync', this.host.nowMs, this.host.nowMs - startedMs);
          }
          w.state = 'done';
          this.dispatch({ kind: 'disk' });
        }),
      (error: unknown) => this.host.guard(() => this.onStorageFailure(epoch, 'persist', error)),
    );
  }

  private onStorageFailure(epoch: number, what: string, error: unknown): void {
    if (epoch !== this.epoch || this.raft === null) return;
    const text = describeError(error);
    if (!this.disk.faultInjected && !this.disk.everCorrupted) {
      this.host.checker.violation(
        `${this.id}: storage ${what} failed with no disk fault injected: ${text}`,
      );
      return;
    }
    this.host.onProcessExit(this, `exited: storage ${what} failed: ${text}`);
  }

  /** Finishes the Readys at the head of the queue that are durable, in order. */
  private finishWrites(raft: SimRaft): void {
    for (;;) {
      const head = this.writes[0];
      if (head === undefined || head.state !== 'done') break;
      this.writes.shift();
      this.issueAt = Math.max(0, this.issueAt - 1);
      this.onWriteDone(raft, head);
      if (this.raft !== raft) return;
    }
    this.issueWrites();
  }

  /** A Ready is durable: finish it (ready.ts steps 2 to 4). */
  private onWriteDone(raft: SimRaft, write: PendingWrite): void {
    const { rd, snapshotBytes, term } = write;
    if (!write.noop) {
      const problem = this.durable.persist(rd, snapshotBytes);
      if (problem !== null) this.host.checker.violation(`${this.id}: storage: ${problem}`);
      if (rd.entries.length > 0) this.checkPersisted(rd.entries);
    }
    for (const m of rd.messagesAfterPersist) this.host.send(this, m);
    if (rd.snapshot !== null && snapshotBytes !== null)
      this.installSnapshot(rd.snapshot, snapshotBytes, term);
    for (const e of rd.committedEntries) this.apply(e, term);
    this.serveReads(raft);
    raft.advance(rd);
    this.maybeSnapshot(raft);
  }

  private onSoftState(raft: SimRaft, soft: SoftState): void {
    this.role = soft.role;
    this.leader = soft.leader;
    const status = raft.status();
    this.trace(
      `${soft.role} of term ${status.term}, leader ${soft.leader === noNode ? '-' : soft.leader}`,
    );
    this.host.onRoleChange(this, soft.role);
    if (soft.role !== 'leader') return;
    this.host.checker.onLeader(this.id, status.term);
    this.host.checker.onLeaderLog(
      this.id,
      status.term,
      (index) => raft.entry(logIndex(index))?.term,
      status.snapshot,
    );
  }

  /**
   * Log matching, on every entry as storage acknowledges it durable, with
   * the term durably before it. Checked at persist time, not hand-out: an
   * entry lost in a crash before reaching the disk or another node never existed.
   */
  private checkPersisted(entries: readonly Entry[]): void {
    const store = this.durable;
    for (const e of entries) {
      if (e.index <= store.snapshot.index) continue;
      const before = e.index - 1;
      const prevTerm =
        before === store.snapshot.index
          ? store.snapshot.term
          : (store.entryAt(before)?.term ?? null);
      this.host.checker.onAppend(this.id, e.index, e.term, entryDigest(e), prevTerm);
    }
  }

  private installSnapshot(meta: SnapshotMeta, bytes: Uint8Array, term: number): void {
    if (meta.index <= this.applied) {
      this.host.checker.violation(
        `${this.id}: asked to install snapshot ${meta.index}@${meta.term} at applied ${this.applied}`,
      );
      return;
    }
    this.kv = restoreKv(bytes);
    this.applied = meta.index;
    this.appliedMembership = meta.membership;
    this.host.checker.onSnapshotInstalled(this.id, meta.index, meta.term, term);
    this.host.checker.onKvDigest(this.id, meta.index, digestBytes(bytes));
    for (const [index, list] of this.proposals) {
      if (index > meta.index) continue;
      this.proposals.delete(index);
      for (const p of list) {
        p.request.done({ kind: 'lost', reason: `${this.id} installed a snapshot past ${index}` });
      }
    }
    this.trace(`installed snapshot ${meta.index}@${meta.term}`);
  }

  private apply(e: Entry, term: number): void {
    if (e.index !== this.applied + 1) {
      this.host.checker.violation(
        `${this.id}: applied entry ${e.index} right after ${this.applied}`,
      );
      if (e.index <= this.applied) return;
    }
    this.applied = e.index;
    this.host.checker.onApply(this.id, e.index, e.term, entryDigest(e), term);
    this.host.trace.apply(this.host.nowMs, this.id, e);
    let reply: Reply | null = null;
    if (e.kind === 'conf') {
      this.appliedMembership = changeMembership(this.appliedMembership, e.change);
      this.host.onConfApplied(this, e);
    } else if (e.data.length > 0) {
      // Every node applies; the reply matters only to the proposer's client.
      reply = this.kv.apply(e.index, e.data).reply;
    }
    const pending = this.proposals.get(e.index);
    if (pending === undefined) return;
    this.proposals.delete(e.index);
    for (const p of pending) {
      if (p.term !== e.term || reply === null) {
        p.request.done({ kind: 'failed', reason: `${e.index}@${e.term} was applied instead` });
        continue;
      }
      const output = writeOutput(p.input, reply);
      if (output !== null) {
        if (p.input.op === 'cas' && reply.kind === 'nullArray') {
          this.trace(
            `op${p.request.opId}: EXEC aborted, ${p.input.key} was modified after its read`,
          );
        }
        p.request.done({ kind: 'ok', output });
        continue;
      }
      this.host.checker.violation(
        `${this.id}: ${p.input.op} applied at ${e.index}@${e.term} replied ${JSON.stringify(reply)}`,
      );
      p.request.done({ kind: 'lost', reason: 'unexpected reply' });
    }
  }

  /**
   * Saves an application snapshot once enough entries were applied past the
   * last one. The core's log is compacted only once the snapshot is durable.
   */
  private maybeSnapshot(raft: SimRaft): void {
    const storage = this.storage;
    if (this.snapshotting || storage === null) return;
    if (this.applied - this.durable.snapshot.index < this.settings.snapshotThresholdEntries) return;
    const term = raft.entry(logIndex(this.applied))?.term;
    if (term === undefined) {
      // A newer snapshot from the leader already replaced the core's log; it is
      // on its way to the state machine in a later Ready.
      if (raft.status().snapshot.index > this.applied) return;
      this.host.checker.violation(
        `${this.id}: entry ${this.applied} was applied but is not in the log`,
      );
      return;
    }
    const bytes = snapshotBytes(this.kv);
    const meta: SnapshotMeta = {
      index: logIndex(this.applied),
      term,
      membership: this.appliedMembership,
    };
    this.host.checker.onKvDigest(this.id, this.applied, digestBytes(bytes));
    this.snapshotting = true;
    const epoch = this.epoch;
    this.host.asyncStarted();
    storage.saveSnapshot(meta, bytes).then(
      () =>
        this.host.guard(() => {
          if (epoch === this.epoch) this.dispatch({ kind: 'snapshotSaved', meta, bytes });
        }),
      (error: unknown) =>
        this.host.guard(() => this.onStorageFailure(epoch, 'saveSnapshot', error)),
    );
  }

  private onSnapshotSaved(raft: SimRaft, meta: SnapshotMeta, bytes: Uint8Array): void {
    this.snapshotting = false;
    if (meta.index > this.durable.snapshot.index) this.durable.compact(meta, bytes);
    const before = raft.status().snapshot;
    if (meta.index <= before.index) {
      this.trace(`snapshot at ${meta.index}@${meta.term} saved (the core has ${before.index})`);
      return;
    }
    raft.compact(meta.index);
    const core = raft.status().snapshot;
    if (
      core.index !== meta.index ||
      core.term !== meta.term ||
      !sameMembers(core.membership, meta.membership)
    ) {
      this.host.checker.violation(
        `${this.id}: after compact(${meta.index}) the core's snapshot is ${describeSnapshot(core)} but the runtime saved ${describeSnapshot(meta)}`,
      );
    }
    this.trace(
      `snapshot at ${meta.index}@${meta.term} (${bytes.length} bytes) saved, log compacted`,
    );
    this.maybeSnapshot(raft);
  }

  private onRequest(raft: SimRaft, request: NodeRequest): void {
    const input = request.input;
    switch (input.op) {
      case 'get':
        if (!this.settings.followerReads && this.role !== 'leader') {
          request.done({ kind: 'refused', refusal: notLeader(this.leader, 'a read') });
          return;
        }
        this.startRead(raft, request, input);
        return;
      case 'cas':
        // Its EXEC must be proposed here, after the read: only a leader can.
        if (this.role !== 'leader') {
          request.done({ kind: 'refused', refusal: notLeader(this.leader, 'a write') });
          return;
        }
        this.startRead(raft, request, input);
        return;
      case 'put':
      case 'append': {
        const data = this.kv.prepareWrite(simDb, writeArgv(input), this.host.nowMs, this.seed());
        if (!(data instanceof Uint8Array)) {
          this.host.checker.violation(
            `${this.id}: prepareWrite refused ${input.op}: ${JSON.stringify(data)}`,
          );
          request.done({ kind: 'refused', refusal: { kind: 'overloaded', message: 'refused' } });
          return;
        }
        this.propose(raft, request, input, data);
        return;
      }
    }
  }

  /** The u32 seed a proposer stamps into a kv entry (apply never draws randomness itself). */
  private seed(): number {
    return this.kvRandom.uint32();
  }

  private propose(raft: SimRaft, request: NodeRequest, input: KvWrite, data: Uint8Array): void {
    const result = raft.propose(data);
    if (!result.ok) {
      request.done({ kind: 'refused', refusal: result.refusal });
      return;
    }
    this.host.trace.noteProposal(result.index, result.term, request.opId);
    this.trace(`proposed op${request.opId} at ${result.index}@${result.term}`);
    const list = this.proposals.get(result.index);
    const pending = { term: result.term, request, input };
    if (list === undefined) this.proposals.set(result.index, [pending]);
    else list.push(pending);
  }

  /** A read barrier (ReadIndex, or the lease) for a get or the read of a cas. */
  private startRead(raft: SimRaft, request: NodeRequest, input: PendingRead['input']): void {
    if (this.reads.size >= pendingReadsMax) {
      request.done({
        kind: 'refused',
        refusal: { kind: 'overloaded', message: 'too many reads' },
      });
      return;
    }
    const context = `${this.id}.${this.epoch}.${++this.readSeq}`;
    const result = raft.readIndex(context);
    if (!result.ok) {
      request.done({ kind: 'refused', refusal: result.refusal });
      return;
    }
    this.reads.set(context, { request, input, index: null });
  }

  private onReadState(raft: SimRaft, rs: ReadState): void {
    const read = this.reads.get(rs.context);
    if (read === undefined) return;
    read.index = rs.index;
    if (this.applied >= rs.index) this.serveRead(raft, rs.context, read);
  }

  private serveReads(raft: SimRaft): void {
    for (const [context, read] of this.reads) {
      if (read.index !== null && read.index <= this.applied) this.serveRead(raft, context, read);
    }
  }

  private serveRead(raft: SimRaft, context: string, read: PendingRead): void {
    this.reads.delete(context);
    const { request, input } = read;
    const reply = this.kv.read(simDb, ['GET', input.key], this.host.nowMs, () =>
      this.kvRandom.float(),
    );
    const value = getValue(reply);
    if (value === undefined) {
      this.host.checker.violation(`${this.id}: GET ${input.key} replied ${JSON.stringify(reply)}`);
      request.done({ kind: 'lost', reason: 'unexpected reply' });
      return;
    }
    if (input.op === 'get') {
      request.done({ kind: 'ok', output: { value } });
      return;
    }
    // A cas: as a WATCH client would, swap only if the value read is the expected one.
    if (value !== input.expected) {
      this.trace(`op${request.opId}: ${input.key} is not the expected value; nothing proposed`);
      request.done({ kind: 'ok', output: { ok: false } });
      return;
    }
    const revision = this.kv.watchRevision(simDb, input.key);
    this.propose(
      raft,
      request,
      input,
      prepareCas(this.kv, input, revision, this.host.nowMs, this.seed()),
    );
  }

  private keepReceivedSnapshot(meta: SnapshotMeta, bytes: Uint8Array): void {
    this.received.delete(snapshotKey(meta));
    this.received.set(snapshotKey(meta), bytes);
    while (this.received.size > receivedSnapshotsMax) {
      const oldest = this.received.keys().next().value;
      if (oldest === undefined) break;
      this.received.delete(oldest);
    }
  }

  private trace(text: string): void {
    this.host.trace.text(this.host.nowMs, this.id, text);
  }
}

const emptyState: PersistedState = {
  hardState: { term: 0 as HardState['term'], vote: noNode, commit: logIndex(0) },
  snapshot: {
    index: logIndex(0),
    term: 0 as HardState['term'],
    membership: { voters: [], learners: [] },
  },
  entries: [],
};

const emptyKvBytes = snapshotBytes(new KvStateMachine());

const noopReady: Ready = {
  softState: null,
  hardState: null,
  snapshot: null,
  entries: [],
  mustSync: false,
  messages: [],
  messagesAfterPersist: [],
  committedEntries: [],
  readStates: [],
};

function isEmpty(p: PersistedState): boolean {
  return p.hardState.term === 0 && p.entries.length === 0 && p.snapshot.index === 0;
}

/** Reads a whole stored snapshot (its checksum is verified at the end). */
async function readAll(
  storage: RaftStorage,
  meta: Pick<SnapshotMeta, 'index' | 'term'>,
): Promise<Uint8Array> {
  const reader = await storage.openSnapshot(meta);
  const chunks: Uint8Array[] = [];
  for await (const chunk of reader) chunks.push(chunk);
  return chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks);
}

/**
 * Why `got` (recovered at a start) lacks something storage acknowledged as
 * durable (`acked`), or null: the term and vote, the snapshot, and every
 * acknowledged entry below `floor` (entries from `floor` on may have been
 * overwritten by a write in flight at the crash).
 */
export function recoveryProblem(
  acked: DurableStore,
  got: PersistedState,
  floor: number,
): string | null {
  const a = acked.hardState;
  const g = got.hardState;
  if (g.term < a.term) return `term ${g.term}, acknowledged ${a.term}`;
  if (g.term === a.term && a.vote !== noNode && g.vote !== a.vote) {
    return `vote ${g.vote || '-'} in term ${g.term}, acknowledged ${a.vote}`;
  }
  if (got.snapshot.index < acked.snapshot.index) {
    return `snapshot ${got.snapshot.index}, acknowledged ${acked.snapshot.index}`;
  }
  const from = Math.max(got.snapshot.index, acked.snapshot.index) + 1;
  const to = Math.min(acked.lastIndex, floor - 1);
  for (let i = from; i <= to; i++) {
    const want = acked.entryAt(i);
    const have = got.entries[i - got.snapshot.index - 1];
    if (want === undefined) continue;
    if (have === undefined)
      return `entry ${i}@${want.term} missing (log ends at ${got.snapshot.index + got.entries.length})`;
    if (have.index !== i || have.term !== want.term) {
      return `entry ${i} is ${have.index}@${have.term}, acknowledged ${i}@${want.term}`;
    }
  }
  return null;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

function sameMembers(a: Membership, b: Membership): boolean {
  const key = (m: Membership): string =>
    `${[...m.voters].sort().join(',')}/${[...m.learners].sort().join(',')}`;
  return key(a) === key(b);
}

function describeSnapshot(s: SnapshotMeta): string {
  return `${s.index}@${s.term} voters {${s.membership.voters.join(',')}} learners {${s.membership.learners.join(',')}}`;
}

function snapshotKey(meta: SnapshotMeta): string {
  return `${meta.index}@${meta.term}`;
}

/** Single-server membership change, as the core applies it (thesis §4.1). */
export function changeMembership(m: Membership, change: ConfChange): Membership {
  const voters = m.voters.filter((id) => id !== change.node);
  const learners = m.learners.filter((id) => id !== change.node);
  if (change.type === 'addVoter') voters.push(change.node);
  if (change.type === 'addLearner') learners.push(change.node);
  return { voters, learners };
}
