/**
 * A synchronous, in-memory cluster for interaction tests of the core: each
 * node persists instantly, messages are delivered in FIFO order, and links
 * can be cut. Every delivered message is recorded as a readable line so
 * tests can state the exact exchange they expect.
 */
import { assert } from './assert.js';
import type { PersistedState, RaftConfigInput } from './config.js';
import { bootstrapState } from './config.js';
import type { Message } from './messages.js';
import type { Random } from './prng.js';
import { RaftNode } from './raft.js';
import type { Ready } from './ready.js';
import type { Rules } from './rules.js';
import type { Entry, HardState, LogIndex, NodeId, ReadState, SnapshotMeta } from './types.js';
import { logIndex, nodeId } from './types.js';

export const ids = (...names: string[]): NodeId[] => names.map(nodeId);

const encoder = new TextEncoder();
const decoder = new TextDecoder();
export const bytes = (s: string): Uint8Array => encoder.encode(s);

/** What one node has made durable, as its runtime would keep it on disk. */
export class MemoryDisk {
  hardState: HardState;
  snapshot: SnapshotMeta;
  snapshotData: string[] = [];
  entries: Entry[];

  constructor(initial: PersistedState) {
    this.hardState = initial.hardState;
    this.snapshot = initial.snapshot;
    this.entries = [...initial.entries];
  }

  persist(rd: Ready, snapshotData: string[] | undefined): void {
    const snap = rd.snapshot;
    if (snap !== null) {
      this.snapshot = snap;
      this.snapshotData = snapshotData ?? [];
      this.entries = this.entries.filter((e) => e.index > snap.index);
    }
    const first = rd.entries[0];
    if (first !== undefined) {
      this.entries = this.entries.filter((e) => e.index < first.index);
      this.entries.push(...rd.entries);
    }
    if (rd.hardState !== null) this.hardState = rd.hardState;
  }

  compact(snapshot: SnapshotMeta, data: string[]): void {
    this.snapshot = snapshot;
    this.snapshotData = data;
    this.entries = this.entries.filter((e) => e.index > snapshot.index);
  }

  state(): PersistedState {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] };
  }
}

export interface TestNode {
  readonly id: NodeId;
  raft: RaftNode;
  readonly disk: MemoryDisk;
  /** The applied state machine: the data of each applied normal entry. */
  applied: string[];
  readStates: ReadState[];
}

export interface ClusterOptions {
  readonly config?: Partial<RaftConfigInput>;
  readonly rules?: Rules;
}

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages in flight, delivered FIFO by `deliver()`. */
  queue: Message[] = [];
  readonly cut = new Set<string>();
  /** Messages matching this are dropped on delivery (in addition to cut links). */
  dropIf: ((m: Message) => boolean) | null = null;
  /** Every delivered message as a line, cleared by `takeTrace()`. */
  private trace: string[] = [];
  private nodeCount = 0;
  private readonly timeoutRank = new Map<NodeId, number>();
  private pendingSnapshotData = new Map<NodeId, string[]>();

  constructor(
    voters: readonly string[],
    private readonly options: ClusterOptions = {},
  ) {
    for (const name of voters) this.addNode(name, bootstrapState(ids(...voters)));
  }

  addNode(name: string, persisted: PersistedState): TestNode {
    const id = nodeId(name);
    const disk = new MemoryDisk(persisted);
    const node: TestNode = {
      id,
      raft: this.makeRaft(id, persisted),
      disk,
      applied: [],
      readStates: [],
    };
    this.nodes.set(id, node);
    return node;
  }

  private makeRaft(id: NodeId, persisted: PersistedState): RaftNode {
    let rank = this.timeoutRank.get(id);
    if (rank === undefined) {
      rank = this.nodeCount++;
      this.timeoutRank.set(id, rank);
    }
    const config: RaftConfigInput = {
      electionTimeoutTicks: 10,
      heartbeatTicks: 1,
      ...this.options.config,
      id,
      random: new FixedRandom(1 + rank),
    };
    return new RaftNode(config, persisted, this.options.rules);
  }

  node(name: string): TestNode {
    const n = this.nodes.get(nodeId(name));
    assert(n !== undefined, `no node ${name}`);
    return n;
  }

  raft(name: string): RaftNode {
    return this.node(name).raft;
  }

  /** Simulates a crash and restart: the node keeps only what it persisted. */
  restart(name: string): void {
    const n = this.node(name);
    n.raft = this.makeRaft(n.id, n.disk.state());
    n.applied = [...n.disk.snapshotData];
    n.readStates = [];
    this.queue = this.queue.filter((m) => m.to !== n.id);
  }

  isolate(name: string): void {
    for (const other of this.nodes.keys()) {
      if (other === name) continue;
      this.cut.add(`${name}>${other}`);
      this.cut.add(`${other}>${name}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Drives every node's Ready: persist, send, apply, advance. */
  processReadys(): void {
    for (let round = 0; round < 100; round++) {
      let any = false;
      for (const n of this.nodes.values()) {
        if (!n.raft.hasReady()) continue;
        any = true;
        this.handleReady(n, n.raft.ready());
      }
      if (!any) return;
    }
    assert(false, 'Readys did not quiesce in 100 rounds');
  }

  private handleReady(n: TestNode, rd: Ready): void {
    n.disk.persist(rd, this.pendingSnapshotData.get(n.id));
    if (rd.snapshot !== null) {
      n.applied = [...(this.pendingSnapshotData.get(n.id) ?? [])];
      this.pendingSnapshotData.delete(n.id);
    }
    this.queue.push(...rd.messages, ...rd.messagesAfterPersist);
    for (const e of rd.committedEntries) {
      if (e.kind === 'normal' && e.data.byteLength > 0) n.applied.push(decoder.decode(e.data));
    }
    n.readStates.push(...rd.readStates);
    n.raft.advance(rd);
  }

  /** Delivers queued messages (and those they cause) until none are left. */
  deliver(messagesMax = 10_000): void {
    this.processReadys();
    for (let i = 0; i < messagesMax; i++) {
      let m = this.queue.shift();
      if (m === undefined) {
        // All quiet: the runtimes' commit notice timers fire (RaftDriver's commitNoticeMs).
        for (const n of this.nodes.values()) n.raft.spreadCommit();
        this.processReadys();
        m = this.queue.shift();
        if (m === undefined) return;
      }
      this.deliverOne(m);
      this.processReadys();
    }
    assert(false, `messages did not quiesce after ${messagesMax}`);
  }

  private deliverOne(m: Message): void {
    const to = this.nodes.get(m.to);
    if (to === undefined || this.cut.has(`${m.from}>${m.to}`) || this.dropIf?.(m) === true) {
      this.trace.push(`${describe(m)} (dropped)`);
      return;
    }
    this.trace.push(describe(m));
    if (m.type === 'snapshot') {
      const from = this.nodes.get(m.from);
      this.pendingSnapshotData.set(m.to, [...(from?.disk.snapshotData ?? [])]);
      from?.raft.reportSnapshot(m.to, true);
    }
    to.raft.step(m);
  }

  tick(name: string, times = 1): void {
    for (let i = 0; i < times; i++) this.raft(name).tick();
    this.processReadys();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const n of this.nodes.values()) n.raft.tick();
      this.deliver();
    }
  }

  /**
   * Makes `name` campaign and win: the others first wait out an election
   * timeout (so they no longer honor a previous leader or their start-up
   * lockout), without reaching their own (later) timeouts.
   */
  elect(name: string): void {
    const raft = this.raft(name);
    const timeout = this.options.config?.electionTimeoutTicks ?? 10;
    for (const n of this.nodes.values()) {
      if (n.id === name) continue;
      for (let i = 0; i < timeout; i++) n.raft.tick();
    }
    this.deliver();
    for (let i = 0; i < 4 * timeout && raft.status().role !== 'leader'; i++) {
      raft.tick();
      this.deliver();
    }
    assert(raft.status().role === 'leader', `${name} did not become leader`);
  }

  propose(name: string, data: string): LogIndex {
    const r = this.raft(name).propose(bytes(data));
    assert(r.ok, `proposal refused: ${r.ok ? '' : r.refusal.message}`);
    this.deliver();
    return r.index;
  }

  /**
   * Proposes `data` on `leader` and has every follower store it and answer,
   * step by step, without `deliver()`: no quiet moment, so no runtime's
   * commit notice timer fires (the leader commits and tells nobody yet).
   */
  replicateByHand(leader: string, data: string): void {
    const raft = this.raft(leader);
    raft.propose(bytes(data));
    const rd = raft.ready();
    raft.advance(rd);
    const followers = new Set<NodeId>();
    for (const m of rd.messages) {
      this.raft(m.to).step(m);
      followers.add(m.to);
    }
    for (const id of followers) {
      const follower = this.raft(id);
      const frd = follower.ready();
      follower.advance(frd);
      for (const m of frd.messagesAfterPersist) raft.step(m);
    }
  }

  /** The application snapshot of `name` at its applied index, then compaction. */
  snapshotAndCompact(name: string): SnapshotMeta {
    const n = this.node(name);
    const applied = n.raft.status().applied;
    n.raft.compact(applied);
    const snap = n.raft.status().snapshot;
    n.disk.compact(snap, [...n.applied]);
    return snap;
  }

  takeTrace(): string[] {
    const t = this.trace;
    this.trace = [];
    return t;
  }
}

export function describe(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'append':
      return `${head} prev=${m.prevIndex}/t${m.prevTerm} entries=[${m.entries.map(describeEntry).join(' ')}] commit=${m.commit}`;
    case 'appendAccept':
      return `${head} match=${m.matchIndex}`;
    case 'appendReject':
      return `${head} rejected=${m.rejectedIndex} hint=${m.hintIndex}/t${m.hintTerm}`;
    case 'heartbeat':
      return `${head} commit=${m.commit} seq=${m.seq}`;
    case 'heartbeatResponse':
      return `${head} seq=${m.seq}`;
    case 'vote':
    case 'preVote':
      return `${head} last=${m.lastIndex}/t${m.lastTerm}${m.transfer ? ' transfer' : ''}`;
    case 'voteResponse':
    case 'preVoteResponse':
      return `${head} ${m.granted ? 'granted' : 'rejected'}`;
    case 'snapshot':
      return `${head} index=${m.snapshot.index}/t${m.snapshot.term}`;
    case 'timeoutNow':
      return head;
    case 'readIndex':
      return `${head} ctx=${m.context}`;
    case 'readIndexResponse':
      return `${head} ctx=${m.context} index=${m.index}`;
  }
}

export function describeEntry(e: Entry): string {
  if (e.kind === 'conf') return `${e.index}/t${e.term}:${e.change.type}(${e.change.node})`;
  return `${e.index}/t${e.term}:${e.data.byteLength === 0 ? '-' : decoder.decode(e.data)}`;
}

export const idx = logIndex;

/**
 * Election timeouts in a fixed order: node k (in creation order) times out
 * after base + 1 + k ticks, so tests decide who campaigns first.
 */
export class FixedRandom implements Random {
  constructor(private readonly value: number) {}
  int(boundExclusive: number): number {
    return Math.min(this.value, boundExclusive - 1);
  }
  float(): number {
    return 0;
  }
}
