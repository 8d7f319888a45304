/**
 * The nemesis: during the fault phase it injects one fault at a time, at
 * random intervals, from the kinds this seed enabled. Each fault with a
 * duration schedules its own end; a generation number per target keeps an
 * old end from cutting a newer fault short. Healing everything at the end of
 * the phase is the simulation's job.
 */
import type { Prng } from '../src/raft/prng.js';
import type { NodeId, Role } from '../src/raft/types.js';
import type { Operator } from './operator.js';
import type { FaultKind } from './options.js';
import { isolate, makePartition, type Partition, partitionKinds, shuffle } from './partitions.js';
import type { SimNode } from './sim-node.js';
import type { World } from './world.js';

export interface NemesisHost extends World {
  crash(node: SimNode, why: string): void;
  restart(node: SimNode): void;
  pause(node: SimNode): void;
  resume(node: SimNode): void;
}

export class Nemesis {
  faultsInjected = 0;
  private partitionGeneration = 0;
  private readonly crashGeneration = new Map<NodeId, number>();
  private readonly pauseGeneration = new Map<NodeId, number>();

  constructor(
    private readonly world: NemesisHost,
    private readonly operator: Operator,
    private readonly random: Prng,
    /** Separate stream for reactive faults, so seeds without them replay as before. */
    private readonly reactiveRandom: Prng,
  ) {}

  /**
   * Faults aimed at moments where bugs hide: a new leader crashed before it
   * replicated much (Figure 8 of the Raft paper needs exactly that), a new
   * candidate paused so its vote responses arrive after its next election.
   */
  onRoleChange(node: SimNode, role: Role): void {
    const rate = this.world.options.reactiveFaultRate;
    if (rate <= 0 || this.reactiveRandom.float() >= rate) return;
    const faults = this.world.options.faults;
    const o = this.world.options;
    if (role === 'leader') {
      const actions: ('crash' | 'isolate')[] = [];
      if (faults.includes('crashLeader')) actions.push('crash');
      if (faults.includes('partition')) actions.push('isolate');
      const action = actions[this.reactiveRandom.int(Math.max(1, actions.length))];
      if (action === undefined) return;
      // Often within the disk's latency: before the new term is even durable.
      const windowMs =
        this.reactiveRandom.int(2) === 0 ? o.diskLatencyMsMax : 2 * o.heartbeatTicks * o.tickMs;
      const afterMs = this.reactiveRandom.float() * windowMs;
      const electionMs = o.electionTimeoutTicks * o.tickMs;
      const isolateMs = electionMs * (1 + 3 * this.reactiveRandom.float());
      this.world.later(this.world.nowMs + afterMs, () => {
        if (!this.world.inFaultPhase || node.role !== 'leader') return;
        this.faultsInjected++;
        if (action === 'crash') {
          this.world.note(`nemesis: crash new leader ${node.id}`);
          this.crashSome([node]);
        } else {
          const ids = this.world.nodes().map((n) => n.id);
          this.setPartition(isolate(ids, node.id, 'both'), isolateMs);
        }
      });
    } else if (role === 'candidate' && faults.includes('pause')) {
      // After this event, so the vote requests are already on the wire.
      this.world.later(this.world.nowMs, () => {
        if (!this.world.inFaultPhase || node.role !== 'candidate') return;
        this.faultsInjected++;
        const electionMs = o.electionTimeoutTicks * o.tickMs;
        this.pauseFor(node, electionMs * (1 + 2 * this.reactiveRandom.float()), 'candidate ');
      });
    }
  }

  start(): void {
    this.scheduleNext();
  }

  private scheduleNext(): void {
    const mean = this.world.options.faultIntervalMsMean;
    // Exponential gaps: faults sometimes bunch up, sometimes leave long quiet spells.
    const gapMs = -Math.log(1 - this.random.float()) * mean;
    this.world.later(this.world.nowMs + gapMs, () => {
      if (!this.world.inFaultPhase) return;
      this.inject();
      this.scheduleNext();
    });
  }

  private inject(): void {
    const kinds = this.world.options.faults;
    const kind = kinds[this.random.int(Math.max(1, kinds.length))];
    if (kind === undefined) return;
    this.faultsInjected++;
    this.run(kind);
  }

  private run(kind: FaultKind): void {
    switch (kind) {
      case 'partition':
        this.partition();
        return;
      case 'crash':
        this.crashSome([this.pickRunning()]);
        return;
      case 'crashLeader':
        this.crashSome([this.world.leader()]);
        return;
      case 'crashMajority': {
        const running = shuffle(
          this.world.nodes().filter((n) => n.up),
          this.random,
        );
        this.crashSome(running.slice(0, Math.floor(running.length / 2) + 1));
        return;
      }
      case 'pause':
        this.pause(this.random.int(2) === 0 ? this.world.leader() : this.pickRunning());
        return;
      case 'clog':
        this.clog();
        return;
      case 'drift':
        this.drift();
        return;
      case 'membership':
        this.operator.act();
        return;
      case 'transfer':
        this.transfer();
        return;
      case 'diskSlow':
        this.diskSlow();
        return;
      case 'diskFail':
        this.diskFail();
        return;
      case 'diskCorrupt':
        this.diskCorrupt();
        return;
    }
  }

  /** Latency spikes on one node's disk for a while. */
  private diskSlow(): void {
    const node = this.pickRunning();
    if (node === undefined) return;
    const durationMs = this.durationMs(200, 4000);
    node.disk.slowUntilMs = this.world.nowMs + durationMs;
    node.disk.slowExtraMsMax = 10 + this.random.float() * 300;
    this.world.note(
      `nemesis: ${node.id} disk slow (+${node.disk.slowExtraMsMax.toFixed(0)}ms) for ${durationMs.toFixed(0)}ms`,
    );
  }

  /** The next write or fdatasync of one node fails (EIO or ENOSPC): its process must exit. */
  private diskFail(): void {
    const node = this.pickRunning();
    if (node === undefined) return;
    const op = this.random.int(2) === 0 ? 'write' : 'datasync';
    const code = this.random.int(2) === 0 ? 'EIO' : 'ENOSPC';
    node.disk.fs.failNext(op, code);
    node.disk.faultInjected = true;
    this.world.note(`nemesis: ${node.id}'s next ${op} fails with ${code}`);
  }

  /**
   * Crashes a node and, while it is down, corrupts a sector of one of its WAL
   * or snapshot files (sticky). Only while the cluster could lose that node's
   * disk for good and still have a majority of healthy voters: a node that
   * ever had a bad sector counts as at risk for good (the sector stays bad,
   * and a later write there may read back damaged at a later start).
   */
  private diskCorrupt(): void {
    const node = this.pickRunning();
    if (node === undefined || !this.mayLoseDisk(node)) return;
    this.crashSome([node]);
    const files = node.disk.damageableFiles();
    const file = files[this.random.int(Math.max(1, files.length))];
    if (file === undefined) return;
    const sizeBytes = node.disk.fs.sizeOf(file);
    if (sizeBytes === 0) return;
    const offsetBytes = this.random.int(sizeBytes);
    const lengthBytes = 1 + this.random.int(Math.min(32, sizeBytes - offsetBytes));
    node.disk.fs.corrupt(file, offsetBytes, lengthBytes);
    node.disk.everCorrupted = true;
    this.world.note(
      `nemesis: ${node.id} bad sector: ${lengthBytes} bytes at ${offsetBytes} of ${file} (${sizeBytes} bytes)`,
    );
  }

  private mayLoseDisk(node: SimNode): boolean {
    // One lost disk at a time: the leader's membership may already leave out
    // a lost node whose removal is not committed yet (and may never be).
    if (this.world.nodes().some((n) => n.lost)) return false;
    // The leader's latest membership may hold a change that never commits,
    // so both it and the applied one are considered, pessimistically.
    const leader = this.world.leader();
    const latest = leader?.raft?.status().membership;
    if (leader === undefined || latest === undefined) return false;
    const applied = leader.membershipApplied;
    const voters = new Set([...latest.voters, ...applied.voters]);
    if (!voters.has(node.id)) return true;
    const atRisk = [...voters].filter((id) => {
      const n = this.world.node(id);
      return n === undefined || n.lost || n.disk.everCorrupted;
    }).length;
    return 2 * (atRisk + 1) < Math.min(latest.voters.length, applied.voters.length);
  }

  private partition(): void {
    const ids = this.world.nodes().map((n) => n.id);
    if (ids.length < 2) return;
    const kind = partitionKinds[this.random.int(partitionKinds.length)] ?? 'isolate';
    this.setPartition(makePartition(kind, ids, this.random), this.durationMs(100, 4000));
  }

  private setPartition(partition: Partition, durationMs: number): void {
    const generation = ++this.partitionGeneration;
    this.world.network.setPartition(partition);
    this.world.note(
      `nemesis: partition ${partition.kind} ${partition.label} for ${durationMs.toFixed(0)}ms`,
    );
    this.world.later(this.world.nowMs + durationMs, () => {
      if (generation !== this.partitionGeneration || this.world.network.partition === null) return;
      this.world.network.clearPartition();
      this.world.note(`nemesis: partition ${partition.kind} healed`);
    });
  }

  private crashSome(nodes: readonly (SimNode | undefined)[]): void {
    for (const node of nodes) {
      if (node === undefined || !node.up) continue;
      const generation = (this.crashGeneration.get(node.id) ?? 0) + 1;
      this.crashGeneration.set(node.id, generation);
      const downMs = this.durationMs(50, 4000);
      this.world.note(`nemesis: crash ${node.id} for ${downMs.toFixed(0)}ms`);
      this.world.crash(node, 'crashed');
      this.world.later(this.world.nowMs + downMs, () => {
        if (this.crashGeneration.get(node.id) !== generation || node.up || node.stopped) return;
        this.world.restart(node);
      });
    }
  }

  private pause(node: SimNode | undefined): void {
    const electionMs = this.world.options.electionTimeoutTicks * this.world.options.tickMs;
    // Around an election timeout is where lease bugs live; longer pauses too.
    const durationMs =
      this.random.int(2) === 0
        ? electionMs * (0.5 + this.random.float() * 2)
        : this.durationMs(20, 3000);
    this.pauseFor(node, durationMs, '');
  }

  private pauseFor(node: SimNode | undefined, durationMs: number, what: string): void {
    if (node === undefined || !node.up || node.paused) return;
    const generation = (this.pauseGeneration.get(node.id) ?? 0) + 1;
    this.pauseGeneration.set(node.id, generation);
    this.world.note(`nemesis: pause ${what}${node.id} for ${durationMs.toFixed(0)}ms`);
    this.world.pause(node);
    this.world.later(this.world.nowMs + durationMs, () => {
      if (this.pauseGeneration.get(node.id) !== generation || !node.paused) return;
      this.world.resume(node);
    });
  }

  private clog(): void {
    const nodes = this.world.nodes();
    if (nodes.length < 2) return;
    const [a, b] = shuffle(nodes, this.random);
    if (a === undefined || b === undefined) return;
    const untilMs = this.world.nowMs + this.durationMs(200, 3000);
    const extraMsMax = 20 + this.random.float() * 300;
    const bothWays = this.random.int(2) === 0;
    this.world.network.clog(a.id, b.id, untilMs, extraMsMax);
    if (bothWays) this.world.network.clog(b.id, a.id, untilMs, extraMsMax);
    this.world.note(
      `nemesis: clog ${a.id}${bothWays ? '<->' : '->'}${b.id} +${extraMsMax.toFixed(0)}ms until ${untilMs.toFixed(0)}ms`,
    );
  }

  private drift(): void {
    const node = this.pickRunning();
    if (node === undefined) return;
    const max = this.world.options.driftMax;
    node.driftFactor = (this.random.float() * 2 - 1) * max;
    this.world.note(`nemesis: ${node.id} clock drift now ${(node.driftFactor * 100).toFixed(2)}%`);
  }

  private transfer(): void {
    const leader = this.world.leader();
    const status = leader?.raft?.status();
    if (leader === undefined || status === undefined) return;
    const others = status.membership.voters.filter((id) => id !== leader.id);
    const to = others[this.random.int(Math.max(1, others.length))];
    if (to === undefined) return;
    const result = leader.transferLeadership(to);
    const outcome = result.ok ? 'started' : `refused: ${result.refusal.message}`;
    this.world.note(`nemesis: transfer leadership ${leader.id} -> ${to} ${outcome}`);
  }

  private pickRunning(): SimNode | undefined {
    const running = this.world.nodes().filter((n) => n.up);
    return running[this.random.int(Math.max(1, running.length))];
  }

  private durationMs(lo: number, hi: number): number {
    return lo + this.random.float() * (hi - lo);
  }
}
