/**
 * One simulated server process: the runtime issue 4 builds for real, here
 * over a simulated disk and clock. It owns a consensus core and drives it
 * (Ready → persist → send → apply → advance), keeps a durable store that
 * survives crashes, applies committed writes to the KV state machine, serves
 * reads once their read index is applied, and snapshots/compacts the log.
 */

import type { PersistedState, ReadMode } from '../src/raft/config.js';
import type { Message } from '../src/raft/messages.js';
import type { Prng } from '../src/raft/prng.js';
import type { Ready } from '../src/raft/ready.js';
import type { ProposeResult, Refusal, RequestResult } from '../src/raft/results.js';
import { notLeader } from '../src/raft/results.js';
import type {
  ConfChange,
  Entry,
  Membership,
  NodeId,
  ReadState,
  Role,
  SnapshotMeta,
  SoftState,
} from '../src/raft/types.js';
import { logIndex, noNode } from '../src/raft/types.js';
import type { KvInput, KvOutput } from './checker/history.js';
import { entryDigest, type SafetyChecker } from './checker/safety.js';
import { DurableStore } from './durable-store.js';
import { digestBytes } from './hash.js';
import { decodeCommand, encodeCommand, Kv } from './kv.js';
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
  | { readonly kind: 'disk' }
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
  readonly diskLatencyMsMax: number;
  readonly followerReads: boolean;
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
}

interface PendingWrite {
  readonly rd: Ready;
  readonly snapshotBytes: Uint8Array | null;
  /** The node's term when the Ready was handed out: its committed entries were committed by then. */
  readonly term: number;
}

interface PendingProposal {
  readonly term: number;
  readonly request: NodeRequest;
}

interface PendingRead {
  readonly request: NodeRequest;
  readonly key: string;
  index: number | null;
}

/** Limits: a runaway core or runtime shows up as a violation, not a hang. */
const readyLoopMax = 64;
const pendingReadsMax = 10_000;
const receivedSnapshotsMax = 4;
const deferredActionsMax = 200_000;

export class SimNode {
  /** Incarnation: bumps on crash and restart; stale scheduled actions are dropped. */
  epoch = 0;
  raft: SimRaft | null = null;
  /** Removed from the cluster and shut down for good. */
  stopped = false;
  paused = false;
  role: Role = 'follower';
  leader: NodeId = noNode;
  /** Invariant: applied equals the index the state machine reflects. */
  applied = 0;
  kv = new Kv();
  driftFactor: number;
  readonly durable: DurableStore;
  private appliedMembership: Membership;
  private deferred: NodeAction[] = [];
  private tickWaiting = false;
  private nextTickAtMs = 0;
  private writes: PendingWrite[] = [];
  /** The core's term as of the latest Ready (or the durable one after a restart). */
  private knownTerm = 0;
  private lastWriteDoneAtMs = 0;
  private readonly proposals = new Map<number, PendingProposal[]>();
  private readonly reads = new Map<string, PendingRead>();
  private readSeq = 0;
  private readonly received = new Map<string, Uint8Array>();

  constructor(
    private readonly host: NodeHost,
    readonly id: NodeId,
    private readonly settings: NodeSettings,
    private readonly random: Prng,
    initial: PersistedState,
    driftFactor: number,
  ) {
    this.driftFactor = driftFactor;
    this.durable = new DurableStore(initial, new Kv().serialize());
    this.appliedMembership = initial.snapshot.membership;
  }

  get up(): boolean {
    return this.raft !== null;
  }

  get tickIntervalMs(): number {
    return this.settings.tickMs * (1 + this.driftFactor);
  }

  /** Starts (or restarts) the process from its durable store. */
  start(): void {
    if (this.stopped || this.raft !== null) return;
    this.epoch++;
    this.knownTerm = this.durable.hardState.term;
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
      this.durable.recover(),
    );
    this.kv = Kv.restore(this.durable.snapshotBytes);
    this.applied = this.durable.snapshot.index;
    this.appliedMembership = this.durable.snapshot.membership;
    this.lastWriteDoneAtMs = this.host.nowMs;
    this.role = 'follower';
    this.leader = noNode;
    this.nextTickAtMs = this.host.nowMs + this.tickIntervalMs * this.random.float();
    this.host.schedule(this.nextTickAtMs, this, { kind: 'tick' });
    this.trace(`start (snapshot ${this.applied}, log to ${this.durable.lastIndex})`);
    this.processReady();
  }

  /** Kills the process: everything not on the durable store is lost. */
  crash(why: string): void {
    if (this.raft === null) return;
    this.raft = null;
    this.epoch++;
    this.paused = false;
    this.deferred = [];
    this.tickWaiting = false;
    this.writes = [];
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

  /** Bytes of the snapshot described by `meta`, if this node holds them. */
  snapshotBytesFor(meta: SnapshotMeta): Uint8Array | null {
    const stored = this.durable.snapshot;
    if (stored.index === meta.index && stored.term === meta.term) return this.durable.snapshotBytes;
    return this.received.get(snapshotKey(meta)) ?? null;
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
        this.onWriteDone(raft);
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
      if (!raft.hasReady()) return;
      this.onReady(raft, raft.ready());
      if (this.raft !== raft) return;
    }
    this.host.checker.violation(`${this.id}: hasReady() still true after ${readyLoopMax} Readys`);
  }

  private onReady(raft: SimRaft, rd: Ready): void {
    if (rd.softState !== null) this.onSoftState(raft, rd.softState);
    let snapshotBytes: Uint8Array | null = null;
    if (rd.snapshot !== null) {
      snapshotBytes = this.snapshotBytesFor(rd.snapshot);
      if (snapshotBytes === null) {
        this.host.checker.violation(
          `${this.id}: Ready carries snapshot ${rd.snapshot.index}@${rd.snapshot.term} but no such snapshot was received`,
        );
      }
    }
    for (const m of rd.messages) this.host.send(this, m);
    for (const rs of rd.readStates) this.onReadState(rs);
    if (rd.hardState !== null) this.knownTerm = rd.hardState.term;
    this.writes.push({ rd, snapshotBytes, term: this.knownTerm });
    if (!rd.mustSync && this.writes.length === 1) {
      // Nothing to fsync and nothing ahead of it: done at once (saves an event).
      this.onWriteDone(raft);
      return;
    }
    const latencyMs = rd.mustSync ? this.random.float() * this.settings.diskLatencyMsMax : 0;
    const doneAtMs = Math.max(this.host.nowMs + latencyMs, this.lastWriteDoneAtMs);
    this.lastWriteDoneAtMs = doneAtMs;
    this.host.schedule(doneAtMs, this, { kind: 'disk' });
  }

  /** The oldest in-flight write is durable: finish its Ready, in order. */
  private onWriteDone(raft: SimRaft): void {
    const write = this.writes.shift();
    if (write === undefined) {
      this.host.checker.violation(`${this.id}: a disk write completed with none in flight`);
      return;
    }
    const { rd, snapshotBytes, term } = write;
    const problem = this.durable.persist(rd, snapshotBytes);
    if (problem !== null) this.host.checker.violation(`${this.id}: storage: ${problem}`);
    if (rd.entries.length > 0) this.checkPersisted(rd.entries);
    for (const m of rd.messagesAfterPersist) this.host.send(this, m);
    if (rd.snapshot !== null && snapshotBytes !== null)
      this.installSnapshot(rd.snapshot, snapshotBytes, term);
    for (const e of rd.committedEntries) this.apply(e, term);
    this.serveReads();
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
   * Log matching, on every entry as it becomes durable, with the term durably
   * before it. Checked at persist time, not hand-out: an entry lost in a crash
   * before reaching the disk or another node never existed.
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
    this.kv = Kv.restore(bytes);
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
    let output: KvOutput | null = null;
    if (e.kind === 'conf') {
      this.appliedMembership = changeMembership(this.appliedMembership, e.change);
      this.host.onConfApplied(this, e);
    } else if (e.data.length > 0) {
      output = this.kv.apply(decodeCommand(e.data).input);
    }
    const pending = this.proposals.get(e.index);
    if (pending === undefined) return;
    this.proposals.delete(e.index);
    for (const p of pending) {
      if (p.term === e.term && output !== null) p.request.done({ kind: 'ok', output });
      else p.request.done({ kind: 'failed', reason: `${e.index}@${e.term} was applied instead` });
    }
  }

  private maybeSnapshot(raft: SimRaft): void {
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
    const bytes = this.kv.serialize();
    const meta: SnapshotMeta = {
      index: logIndex(this.applied),
      term,
      membership: this.appliedMembership,
    };
    this.host.checker.onKvDigest(this.id, this.applied, digestBytes(bytes));
    this.durable.compact(meta, bytes);
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
    this.trace(`snapshot at ${meta.index}@${meta.term} (${bytes.length} bytes), log compacted`);
  }

  private onRequest(raft: SimRaft, request: NodeRequest): void {
    const input = request.input;
    if (input.op === 'get') {
      if (!this.settings.followerReads && this.role !== 'leader') {
        request.done({ kind: 'refused', refusal: notLeader(this.leader, 'a read') });
        return;
      }
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
      this.reads.set(context, { request, key: input.key, index: null });
      return;
    }
    const result = raft.propose(encodeCommand({ opId: request.opId, input }));
    if (!result.ok) {
      request.done({ kind: 'refused', refusal: result.refusal });
      return;
    }
    this.trace(`proposed op${request.opId} at ${result.index}@${result.term}`);
    const list = this.proposals.get(result.index);
    const pending = { term: result.term, request };
    if (list === undefined) this.proposals.set(result.index, [pending]);
    else list.push(pending);
  }

  private onReadState(rs: ReadState): void {
    const read = this.reads.get(rs.context);
    if (read === undefined) return;
    read.index = rs.index;
    if (this.applied >= rs.index) this.serveRead(rs.context, read);
  }

  private serveReads(): void {
    for (const [context, read] of this.reads) {
      if (read.index !== null && read.index <= this.applied) this.serveRead(context, read);
    }
  }

  private serveRead(context: string, read: PendingRead): void {
    this.reads.delete(context);
    read.request.done({ kind: 'ok', output: { value: this.kv.get(read.key) } });
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
