/**
 * One deterministic simulation run: a cluster of real consensus cores over a
 * simulated network, disk and clock, with clients, a nemesis and an
 * operator, checked on every step. A fault phase is followed by a liveness
 * phase (everything healed) in which the cluster must converge within a
 * bounded time. The same seed and overrides replay the same run exactly.
 */

import type { HealthState } from '../src/node/degradation.js';
import { bootstrapState, joiningState } from '../src/raft/config.js';
import type { Message } from '../src/raft/messages.js';
import { Prng } from '../src/raft/prng.js';
import { notLeader } from '../src/raft/results.js';
import type { Entry, NodeId, Role } from '../src/raft/types.js';
import { nodeId, noNode } from '../src/raft/types.js';
import { SnapshotCorruptionError } from '../src/storage/snapshot-store.js';
import type { Operation } from './checker/history.js';
import { checkLinearizable, formatOperation } from './checker/linearizability.js';
import { SafetyChecker } from './checker/safety.js';
import { Client, type ClientHost, type ClientPhase } from './clients.js';
import { makeRaftNode } from './default-node.js';
import { type DiskClock, NodeDisk } from './disk/node-disk.js';
import { EventQueue } from './event-queue.js';
import { Nemesis, type NemesisHost } from './nemesis.js';
import { type DropReason, Network } from './network.js';
import { Operator } from './operator.js';
import { faultPhaseMsDefault, type SimOptions, swarmOptions } from './options.js';
import type { MakeNode } from './raft-core.js';
import {
  type Envelope,
  type NodeAction,
  type NodeHost,
  type NodeRequest,
  type NodeSettings,
  SimNode,
} from './sim-node.js';
import { Trace } from './trace.js';
import type { World } from './world.js';

export interface RunOverrides extends Partial<SimOptions> {
  /** Builds each consensus core; defaults to the real `RaftNode`. */
  readonly makeNode?: MakeNode;
  /** Range the fault phase length is drawn from (ignored if `faultPhaseMs` is set). */
  readonly faultPhaseMsRange?: readonly [number, number];
  /** Trace lines kept for a failure report. */
  readonly traceLines?: number;
  /** Receives every trace line as it happens (--verbose). */
  readonly traceSink?: (line: string) => void;
  /** Search budget per key for the linearizability checker. */
  readonly linearizabilityStepsMax?: number;
  /** Hard bound on processed events (a livelock guard). */
  readonly eventsMax?: number;
  /**
   * A scripted scenario (tests): called once before the run starts, it may
   * schedule actions on the world (`later`), e.g. slow a leader's disk.
   */
  readonly scenario?: (world: World) => void;
}

export interface RunStats {
  readonly simMs: number;
  readonly events: number;
  readonly operations: number;
  readonly ok: number;
  readonly fail: number;
  readonly unknown: number;
  readonly faults: number;
  readonly nodesCreated: number;
  /** `linearizable`, `inconclusive: why`, `violation`, or `skipped`. */
  readonly linearizability: string;
  /** Simulated ms from healing until the cluster converged (null if it did not). */
  readonly convergedAfterMs: number | null;
  /** Leaderships handed over by degraded leaders, per node id (nodes with none left out). */
  readonly degradedHandovers: Readonly<Record<string, number>>;
}

export interface RunResult {
  readonly seed: number;
  readonly options: SimOptions;
  readonly violations: readonly string[];
  readonly stats: RunStats;
  /** The last trace lines, oldest first. */
  readonly trace: readonly string[];
  /** A digest of every event of the run: equal for two runs of one seed. */
  readonly traceDigest: number;
}

type SimEvent =
  | {
      readonly kind: 'node';
      readonly node: SimNode;
      /** The incarnation the action belongs to; -1 for client requests (any incarnation). */
      readonly epoch: number;
      readonly action: NodeAction;
    }
  | { readonly kind: 'deliver'; readonly envelope: Envelope }
  | { readonly kind: 'call'; readonly fn: () => void };

type Phase = 'faults' | 'liveness' | 'done';

const eventsMaxDefault = 20_000_000;
const livenessCheckMs = 50;
/** Client request travel time to a node (replies are immediate). */
const requestDelayMs = 0.5;

/**
 * Lets every pending microtask (storage's promise chains) run to the end
 * before the next event. A `process.nextTick` callback queued now runs only
 * once V8 has drained its whole microtask queue, including microtasks queued
 * while draining (Node's processTicksAndRejections alternates the two queues
 * until both are empty), so awaiting it is a complete drain that costs no
 * turn of the event loop. Nothing in a run waits on real I/O or timers: what
 * is left after the drain waits on a disk completion in the event queue.
 */
const drainMicrotasks = (): Promise<void> =>
  new Promise<void>((resolve) => process.nextTick(resolve));

/**
 * Runs one seed. Never throws for a bug in the system under test: that
 * becomes a violation. Runs of several seeds must not overlap in one thread
 * (each would see the other's microtasks drained, harmless but slower).
 */
export async function runSeed(seed: number, overrides: RunOverrides = {}): Promise<RunResult> {
  const sim = new Simulation(seed, overrides);
  await sim.run();
  return sim.result();
}

class Simulation implements NodeHost, ClientHost, NemesisHost {
  nowMs = 0;
  readonly options: SimOptions;
  readonly checker: SafetyChecker;
  readonly trace: Trace;
  readonly network: Network;
  readonly makeNode: MakeNode;
  private phase: Phase = 'faults';
  private readonly queue = new EventQueue<SimEvent>(5_000_000);
  private readonly nodeMap = new Map<NodeId, SimNode>();
  private running: SimNode[] = [];
  private readonly clients: Client[] = [];
  private readonly history: Operation[] = [];
  private readonly nemesis: Nemesis;
  private readonly operator: Operator;
  private readonly nodeRandom: Prng;
  private readonly settings: NodeSettings;
  private opIdLast = 0;
  private events = 0;
  private healedAtMs = 0;
  private convergedAfterMs: number | null = null;
  private linearizability = 'skipped';
  private readonly eventsMax: number;
  /** Storage work was started or a disk operation completed during this event. */
  private asyncDirty = false;
  /** Nodes that lost their disk and are still members: removed through the leader. */
  private readonly lostNodes = new Set<SimNode>();
  private lostRemovalScheduled = false;
  private readonly diskRandom: Prng;
  /** The disks' clock: completions are events of the queue at simulated times. */
  private readonly diskClock: DiskClock = {
    now: () => this.nowMs,
    schedule: (delayMs, callback) => {
      this.queue.push(this.nowMs + delayMs, {
        kind: 'call',
        fn: () => {
          this.asyncDirty = true;
          callback();
        },
      });
    },
  };

  constructor(
    private readonly seed: number,
    overrides: RunOverrides,
  ) {
    const {
      makeNode,
      faultPhaseMsRange,
      traceLines,
      traceSink,
      linearizabilityStepsMax,
      eventsMax,
      scenario,
      ...optionOverrides
    } = overrides;
    const root = new Prng(seed);
    this.options = {
      ...swarmOptions(root.fork(), faultPhaseMsRange ?? faultPhaseMsDefault),
      ...optionOverrides,
    };
    this.scenario = scenario ?? null;
    this.linearizabilityStepsMax = linearizabilityStepsMax ?? 5_000_000;
    this.eventsMax = eventsMax ?? eventsMaxDefault;
    this.makeNode = makeNode ?? makeRaftNode;
    this.checker = new SafetyChecker(() => this.nowMs);
    this.trace = new Trace(traceLines ?? 60, traceSink ?? null);
    const o = this.options;
    this.network = new Network(root.fork(), o);
    this.nodeRandom = root.fork();
    // Drawn after every other stream, so that adding the disk left them unchanged.
    this.diskRandom = root.fork();
    this.settings = {
      tickMs: o.tickMs,
      electionTimeoutTicks: o.electionTimeoutTicks,
      heartbeatTicks: o.heartbeatTicks,
      preVote: o.preVote,
      checkQuorum: o.checkQuorum,
      readMode: o.readMode,
      leaseMarginTicks: o.leaseMarginTicks,
      appendEntriesMax: o.appendEntriesMax,
      inflightMessagesMax: o.inflightMessagesMax,
      snapshotThresholdEntries: o.snapshotThresholdEntries,
      followerReads: o.followerReads,
      // No event loop to be late in the simulation: only the fsync signal counts.
      degradation:
        o.degradation === null
          ? null
          : { ...o.degradation, loopDelayP99Ms: Number.POSITIVE_INFINITY },
    };
    const voters = Array.from({ length: o.clusterSize }, (_, i) => nodeId(`n${i + 1}`));
    for (const id of voters) this.addNode(id, bootstrapState(voters));
    const clientRandom = root.fork();
    for (let i = 0; i < o.clients; i++) {
      this.clients.push(
        new Client(this, i, clientRandom.fork(), {
          keys: o.keys,
          timeoutMs: o.clientTimeoutMs,
          thinkMsMax: o.thinkMsMax,
        }),
      );
    }
    this.operator = new Operator(this, root.fork());
    this.nemesis = new Nemesis(this, this.operator, root.fork(), root.fork());
  }

  private readonly linearizabilityStepsMax: number;
  private readonly scenario: ((world: World) => void) | null;

  // ---------------------------------------------------------------------
  // The run

  async run(): Promise<void> {
    try {
      for (const node of this.running) node.start();
      for (const client of this.clients)
        client.wake(this.options.thinkMsMax * (client.index + 1) * 0.1);
      this.nemesis.start();
      this.scenario?.(this);
      this.later(this.options.faultPhaseMs, () => this.heal());
      await this.loop();
    } catch (error) {
      this.exception(error);
    }
    this.trace.mix(this.nowMs);
    if (this.checker.ok && this.convergedAfterMs !== null) this.checkHistory();
  }

  private exception(error: unknown): void {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    this.checker.violation(`exception: ${text}`);
  }

  private async loop(): Promise<void> {
    while (this.phase !== 'done') {
      if (this.asyncDirty) {
        // Storage promise chains settle at the simulated time of the event that set them off.
        await drainMicrotasks();
        this.asyncDirty = false;
        if (!this.checker.ok) return;
      }
      const scheduled = this.queue.pop();
      if (scheduled === undefined) {
        this.checker.violation('no events left to run (every timer stopped)');
        return;
      }
      this.nowMs = scheduled.time;
      this.dispatch(scheduled.value);
      if (++this.events >= this.eventsMax) {
        this.checker.violation(`gave up after ${this.eventsMax} events (livelock?)`);
        return;
      }
      if (!this.checker.ok) return;
    }
  }

  private dispatch(ev: SimEvent): void {
    switch (ev.kind) {
      case 'node': {
        const node = ev.node;
        if (ev.epoch === -1) {
          if (ev.action.kind === 'request' && !node.up) {
            ev.action.request.done({
              kind: 'refused',
              refusal: notLeader(noNode, `connection to ${node.id} refused: a request`),
            });
            return;
          }
          node.dispatch(ev.action);
        } else if (ev.epoch === node.epoch) {
          node.dispatch(ev.action);
        }
        return;
      }
      case 'deliver':
        this.deliver(ev.envelope);
        return;
      case 'call':
        ev.fn();
        return;
    }
  }

  /** End of the fault phase: heal everything, then require convergence. */
  private heal(): void {
    if (this.phase !== 'faults') return;
    this.phase = 'liveness';
    this.healedAtMs = this.nowMs;
    this.note('heal: partitions, clogs, loss and duplication end; every process runs');
    this.network.heal();
    for (const node of this.nodeMap.values()) {
      node.disk.fs.clearFaults();
      node.disk.slowUntilMs = 0;
    }
    for (const node of [...this.running]) {
      if (node.paused) node.resume();
      else if (!node.up) node.start();
    }
    for (const client of this.clients) client.wake(0);
    this.later(this.nowMs + livenessCheckMs, () => this.checkLiveness());
  }

  private checkLiveness(): void {
    if (this.phase !== 'liveness') return;
    const problem = this.livenessProblem();
    if (problem === null) {
      this.converged();
      return;
    }
    const elapsedMs = this.nowMs - this.healedAtMs;
    if (elapsedMs >= this.options.livenessBudgetMs) {
      this.checker.violation(
        `liveness: ${elapsedMs.toFixed(0)}ms after healing, ${problem}; nodes: ${this.describeNodes()}`,
      );
      this.phase = 'done';
      return;
    }
    this.later(this.nowMs + livenessCheckMs, () => this.checkLiveness());
  }

  /** Why the cluster has not converged yet, or null once it has. */
  private livenessProblem(): string | null {
    const leader = this.leader();
    const raft = leader?.raft;
    if (leader === undefined || raft === null || raft === undefined) return 'no leader';
    const status = raft.status();
    const waiting = this.clients.filter((c) => !c.finalDone).map((c) => `c${c.index}`);
    if (waiting.length > 0) return `clients ${waiting.join(',')} have not completed a write`;
    if (leader.applied !== status.commit) {
      return `leader ${leader.id} applied ${leader.applied} of commit ${status.commit}`;
    }
    for (const id of [...status.membership.voters, ...status.membership.learners]) {
      const node = this.nodeMap.get(id);
      if (node === undefined || !node.up) return `member ${id} is not running`;
      if (node.applied !== status.commit) {
        return `member ${id} applied ${node.applied}, leader ${leader.id} committed ${status.commit}`;
      }
    }
    return null;
  }

  private converged(): void {
    this.convergedAfterMs = this.nowMs - this.healedAtMs;
    const leader = this.leader();
    const status = leader?.raft?.status();
    if (status !== undefined) {
      for (const id of [...status.membership.voters, ...status.membership.learners]) {
        const node = this.nodeMap.get(id);
        if (node === undefined) continue;
        const digest = node.kvDigest();
        this.checker.onKvDigest(node.id, node.applied, digest);
        this.trace.mix(digest);
      }
    }
    this.note(`converged ${this.convergedAfterMs.toFixed(0)}ms after healing`);
    this.phase = 'done';
  }

  private checkHistory(): void {
    const verdict = checkLinearizable(this.history, { stepsMax: this.linearizabilityStepsMax });
    switch (verdict.verdict) {
      case 'linearizable':
        this.linearizability = 'linearizable';
        return;
      case 'inconclusive':
        this.linearizability = `inconclusive: ${verdict.reason}`;
        return;
      case 'violation': {
        this.linearizability = 'violation';
        const ops = verdict.operations.slice(-40).map((op) => `    ${formatOperation(op)}`);
        this.checker.violation(
          `linearizability: key ${verdict.key}:\n${verdict.explanation}\n  operations on ${verdict.key} (last ${ops.length}):\n${ops.join('\n')}`,
        );
        return;
      }
    }
  }

  result(): RunResult {
    let ok = 0;
    let fail = 0;
    let unknown = 0;
    for (const op of this.history) {
      if (op.status === 'ok') ok++;
      else if (op.status === 'fail') fail++;
      else unknown++;
    }
    const degradedHandovers: Record<string, number> = {};
    for (const node of this.nodeMap.values()) {
      if (node.degradedHandovers > 0) degradedHandovers[node.id] = node.degradedHandovers;
    }
    const violations = [...this.checker.violations];
    if (this.checker.violationsDropped > 0) {
      violations.push(`(${this.checker.violationsDropped} more violations not shown)`);
    }
    return {
      seed: this.seed,
      options: this.options,
      violations,
      stats: {
        simMs: this.nowMs,
        events: this.events,
        operations: this.history.length,
        ok,
        fail,
        unknown,
        faults: this.nemesis.faultsInjected,
        nodesCreated: this.nodeMap.size,
        linearizability: this.linearizability,
        convergedAfterMs: this.convergedAfterMs,
        degradedHandovers,
      },
      trace: this.trace.lines(),
      traceDigest: this.trace.digest,
    };
  }

  // ---------------------------------------------------------------------
  // NodeHost: the network and the disk

  schedule(atMs: number, node: SimNode, action: NodeAction): void {
    this.queue.push(atMs, { kind: 'node', node, epoch: node.epoch, action });
  }

  asyncStarted(): void {
    this.asyncDirty = true;
  }

  guard(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.exception(error);
    }
  }

  onProcessExit(node: SimNode, why: string): void {
    node.crash(why);
    // A supervisor restarts it after a moment (the nemesis may restart it sooner).
    const afterMs = 20 + this.diskRandom.float() * 500;
    this.later(this.nowMs + afterMs, () => {
      if (!node.up && !node.stopped) node.start();
    });
  }

  askHealth(from: SimNode, to: NodeId): HealthState | null {
    const node = this.nodeMap.get(to);
    if (node === undefined || !node.up || node.paused) return null;
    // The question and its answer travel the peer link both ways.
    if (this.network.isBlocked(from.id, to) || this.network.isBlocked(to, from.id)) return null;
    return node.healthState();
  }

  onDiskLost(node: SimNode): void {
    this.lostNodes.add(node);
    this.note(`${node.id} lost its disk: it stays down and is removed from the cluster`);
    this.scheduleLostRemoval();
  }

  /** Until every node that lost its disk is removed, proposes its removal now and then. */
  private scheduleLostRemoval(): void {
    if (this.lostRemovalScheduled || this.lostNodes.size === 0) return;
    this.lostRemovalScheduled = true;
    this.later(this.nowMs + 100, () => {
      this.lostRemovalScheduled = false;
      for (const node of [...this.lostNodes]) {
        if (node.stopped) this.lostNodes.delete(node);
      }
      const leader = this.leader();
      const status = leader?.raft?.status();
      if (leader !== undefined && status !== undefined) {
        const member = [...this.lostNodes].find(
          (n) =>
            status.membership.voters.includes(n.id) || status.membership.learners.includes(n.id),
        );
        if (member !== undefined) {
          const result = leader.proposeConfChange({ type: 'removeNode', node: member.id });
          this.note(
            `operator: removeNode ${member.id} (lost its disk) via ${leader.id}: ${result.ok ? `proposed at ${result.index}@${result.term}` : `refused: ${result.refusal.message}`}`,
          );
        }
      }
      this.scheduleLostRemoval();
    });
  }

  send(from: SimNode, message: Message): void {
    if (message.from !== from.id) {
      this.checker.violation(`${from.id} sent a message claiming to be from ${message.from}`);
      return;
    }
    if (message.type === 'snapshot') {
      this.sendSnapshot(from, message);
      return;
    }
    this.route(from, message, null);
  }

  /** Streams the stored snapshot from the sender's storage, then sends it. */
  private sendSnapshot(from: SimNode, message: Message & { readonly type: 'snapshot' }): void {
    const epoch = from.epoch;
    const { index, term } = message.snapshot;
    from.readStoredSnapshot(message.snapshot).then(
      (bytes) =>
        this.guard(() => {
          if (from.epoch === epoch) this.route(from, message, bytes);
        }),
      (error: unknown) =>
        this.guard(() => {
          if (from.epoch !== epoch) return;
          const text = error instanceof Error ? error.message : String(error);
          this.trace.text(this.nowMs, from.id, `cannot send snapshot ${index}@${term}: ${text}`);
          if (error instanceof SnapshotCorruptionError) {
            from.onSnapshotDamaged(epoch, error);
            return;
          }
          this.schedule(this.nowMs, from, { kind: 'snapshotReport', to: message.to, ok: false });
        }),
    );
  }

  private route(from: SimNode, message: Message, snapshotBytes: Uint8Array | null): void {
    const route = this.network.route(message.from, message.to, this.nowMs);
    if (!route.delivered) {
      const envelope: Envelope = { message, snapshotBytes, primary: true, senderEpoch: from.epoch };
      this.dropped(envelope, route.reason, this.options.delayMsMax);
      return;
    }
    for (let i = 0; i < route.delaysMs.length; i++) {
      const envelope: Envelope = {
        message,
        snapshotBytes,
        primary: i === 0,
        senderEpoch: from.epoch,
      };
      this.queue.push(this.nowMs + (route.delaysMs[i] ?? 0), { kind: 'deliver', envelope });
    }
  }

  private deliver(envelope: Envelope): void {
    const m = envelope.message;
    const target = this.nodeMap.get(m.to);
    if (target === undefined || !target.up) {
      this.dropped(envelope, 'down', 0);
      return;
    }
    if (this.network.isBlocked(m.from, m.to)) {
      this.dropped(envelope, 'partition', 0);
      return;
    }
    target.dispatch({ kind: 'deliver', envelope });
  }

  onDelivered(envelope: Envelope): void {
    const m = envelope.message;
    if (m.type !== 'snapshot' || !envelope.primary) return;
    const sender = this.nodeMap.get(m.from);
    if (sender === undefined || sender.epoch !== envelope.senderEpoch) return;
    this.schedule(this.nowMs, sender, { kind: 'snapshotReport', to: m.to, ok: true });
  }

  private dropped(envelope: Envelope, reason: DropReason, reportAfterMs: number): void {
    const m = envelope.message;
    this.trace.message(this.nowMs, m.to, `drop (${reason})`, m);
    const sender = this.nodeMap.get(m.from);
    if (sender === undefined || sender.epoch !== envelope.senderEpoch || !envelope.primary) return;
    const atMs = this.nowMs + reportAfterMs;
    if (m.type === 'snapshot')
      this.schedule(atMs, sender, { kind: 'snapshotReport', to: m.to, ok: false });
    if (reason !== 'loss' && (m.type === 'append' || m.type === 'snapshot')) {
      this.schedule(atMs, sender, { kind: 'unreachable', to: m.to });
    }
  }

  onConfApplied(_node: SimNode, entry: Entry): void {
    this.operator.onConfApplied(entry);
  }

  onRoleChange(node: SimNode, role: Role): void {
    if (this.phase === 'faults') this.nemesis.onRoleChange(node, role);
  }

  // ---------------------------------------------------------------------
  // ClientHost

  get clientPhase(): ClientPhase {
    if (this.phase === 'faults') return this.history.length < this.options.opsMax ? 'ops' : 'idle';
    return this.phase === 'liveness' ? 'final' : 'idle';
  }

  targets(): readonly SimNode[] {
    return this.running;
  }

  sendRequest(node: SimNode, request: NodeRequest): void {
    this.queue.push(this.nowMs + requestDelayMs, {
      kind: 'node',
      node,
      epoch: -1,
      action: { kind: 'request', request },
    });
  }

  later(atMs: number, fn: () => void): void {
    this.queue.push(Math.max(atMs, this.nowMs), { kind: 'call', fn });
  }

  nextOpId(): number {
    return ++this.opIdLast;
  }

  record(op: Operation): void {
    this.history.push(op);
  }

  traceClient(client: number, text: string): void {
    this.trace.text(this.nowMs, `c${client}`, text);
  }

  // ---------------------------------------------------------------------
  // World / NemesisHost

  get inFaultPhase(): boolean {
    return this.phase === 'faults';
  }

  get nodesCreated(): number {
    return this.nodeMap.size;
  }

  nodes(): readonly SimNode[] {
    return this.running;
  }

  node(id: NodeId): SimNode | undefined {
    return this.nodeMap.get(id);
  }

  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.running) {
      if (node.role !== 'leader' || node.paused || node.raft === null) continue;
      const term = node.raft.status().term;
      if (term > bestTerm) {
        best = node;
        bestTerm = term;
      }
    }
    return best;
  }

  createJoiningNode(): SimNode | undefined {
    if (this.nodeMap.size >= this.options.nodesMax) return undefined;
    const node = this.addNode(nodeId(`n${this.nodeMap.size + 1}`), joiningState());
    this.note(`operator: started new empty node ${node.id}`);
    node.start();
    return node;
  }

  stopNode(node: SimNode, why: string): void {
    node.crash(why);
    node.stopped = true;
    this.running = this.running.filter((n) => n !== node);
  }

  crash(node: SimNode, why: string): void {
    node.crash(why);
  }

  restart(node: SimNode): void {
    node.start();
  }

  pause(node: SimNode): void {
    node.pause();
  }

  resume(node: SimNode): void {
    node.resume();
  }

  note(text: string): void {
    this.trace.text(this.nowMs, '*', text);
  }

  private addNode(id: NodeId, initial: ReturnType<typeof joiningState>): SimNode {
    const drift = (this.nodeRandom.float() * 2 - 1) * this.options.driftMax;
    const o = this.options;
    const disk = new NodeDisk(
      `/${id}`,
      this.diskRandom.fork(),
      this.diskRandom.fork(),
      this.diskClock,
      o.diskLatencyMsMax,
      {
        wal: {
          segmentBytesMax: o.walSegmentBytesMax,
          preallocate: o.walPreallocate,
          prepareAfterBytes: 0,
        },
      },
      o.sectorTears ? { sectors: 'prng' } : 'prng',
    );
    const node = new SimNode(this, id, this.settings, this.nodeRandom.fork(), initial, drift, disk);
    this.nodeMap.set(id, node);
    this.running.push(node);
    return node;
  }

  private describeNodes(): string {
    const parts: string[] = [];
    for (const node of this.nodeMap.values()) {
      if (node.stopped || node.lost) {
        parts.push(`${node.id}: ${node.stopped ? 'stopped' : 'lost its disk'}`);
        continue;
      }
      const status = node.raft?.status();
      if (status === undefined) {
        parts.push(`${node.id}: down`);
        continue;
      }
      const m = status.membership;
      parts.push(
        `${node.id}: ${status.role} t${status.term} leader ${status.leader || '-'} commit ${status.commit} applied ${node.applied} last ${status.lastIndex} voters {${m.voters.join(',')}} learners {${m.learners.join(',')}}`,
      );
    }
    return parts.join('; ');
  }
}
