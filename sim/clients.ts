/**
 * Simulated clients. Each runs one operation at a time against a random
 * node, follows leader hints on refusals, gives up after a timeout, and
 * records every operation in the history format the linearizability checker
 * reads. Outcomes map to statuses conservatively: `fail` only when the
 * operation can certainly never take effect.
 */
import type { Prng } from '../src/raft/prng.js';
import type { Refusal } from '../src/raft/results.js';
import type { NodeId } from '../src/raft/types.js';
import type { KvInput, KvOutput, Operation, OperationStatus } from './checker/history.js';
import type { NodeRequest, RequestOutcome, SimNode } from './sim-node.js';

export type ClientPhase = 'ops' | 'final' | 'idle';

export interface ClientHost {
  readonly nowMs: number;
  /** What clients should be doing now. */
  readonly clientPhase: ClientPhase;
  /** Nodes a client may connect to (every server process not shut down). */
  targets(): readonly SimNode[];
  node(id: NodeId): SimNode | undefined;
  /** Delivers `request` to `node` shortly (connection refused if it is down). */
  sendRequest(node: SimNode, request: NodeRequest): void;
  later(atMs: number, fn: () => void): void;
  nextOpId(): number;
  record(op: Operation): void;
  traceClient(client: number, text: string): void;
}

export interface ClientSettings {
  readonly keys: number;
  readonly timeoutMs: number;
  readonly thinkMsMax: number;
}

/** Bound on redirects and retries of one operation after refusals. */
const attemptsMax = 6;

interface OpState {
  readonly id: number;
  readonly input: KvInput;
  readonly invokedMs: number;
  readonly final: boolean;
  attempts: number;
  finished: boolean;
}

export class Client {
  busy = false;
  /** Set once this client's post-heal write completed ok. */
  finalDone = false;
  private readonly lastSeen = new Map<string, string | null>();

  constructor(
    private readonly host: ClientHost,
    readonly index: number,
    private readonly random: Prng,
    private readonly settings: ClientSettings,
  ) {}

  /** Schedules this client's next operation, if its phase calls for one. */
  wake(delayMs: number): void {
    if (this.busy) return;
    this.busy = true;
    this.host.later(this.host.nowMs + delayMs, () => {
      this.busy = false;
      this.startNext();
    });
  }

  private startNext(): void {
    const phase = this.host.clientPhase;
    if (phase === 'ops') this.start(this.randomInput(), false);
    else if (phase === 'final' && !this.finalDone) {
      this.start(
        {
          op: 'put',
          key: this.randomKey(),
          value: `final.${this.index}.${this.host.nextOpId().toString(36)}`,
        },
        true,
      );
    }
  }

  private start(input: KvInput, final: boolean): void {
    const op: OpState = {
      id: this.host.nextOpId(),
      input,
      invokedMs: this.host.nowMs,
      final,
      attempts: 0,
      finished: false,
    };
    this.busy = true;
    this.host.later(op.invokedMs + this.settings.timeoutMs, () => this.finish(op, 'unknown', null));
    this.attempt(op, this.randomTarget(null));
  }

  private attempt(op: OpState, node: SimNode | undefined): void {
    if (op.finished) return;
    if (node === undefined) {
      this.finish(op, 'fail', null);
      return;
    }
    op.attempts++;
    const request: NodeRequest = {
      opId: op.id,
      input: op.input,
      done: (outcome) => this.onOutcome(op, node, outcome),
    };
    this.host.sendRequest(node, request);
  }

  private onOutcome(op: OpState, node: SimNode, outcome: RequestOutcome): void {
    if (op.finished) return;
    switch (outcome.kind) {
      case 'ok':
        this.finish(op, 'ok', outcome.output);
        return;
      case 'failed':
        this.finish(op, 'fail', null);
        return;
      case 'lost':
        this.finish(op, 'unknown', null);
        return;
      case 'refused':
        this.onRefused(op, node, outcome.refusal);
        return;
    }
  }

  /** Nothing was proposed, so retrying elsewhere is safe. */
  private onRefused(op: OpState, node: SimNode, refusal: Refusal): void {
    if (op.attempts >= attemptsMax) {
      this.finish(op, 'fail', null);
      return;
    }
    const hint = refusal.kind === 'notLeader' ? this.host.node(refusal.leader) : undefined;
    const next =
      hint !== undefined && hint !== node && !hint.stopped ? hint : this.randomTarget(node);
    const delayMs = next === hint ? 0 : 5 + this.random.float() * 45;
    this.host.later(this.host.nowMs + delayMs, () => this.attempt(op, next));
  }

  private finish(op: OpState, status: OperationStatus, output: KvOutput | null): void {
    if (op.finished) return;
    op.finished = true;
    this.busy = false;
    const returned = status === 'unknown' ? null : this.host.nowMs;
    this.host.record({
      id: op.id,
      client: this.index,
      input: op.input,
      invoked: op.invokedMs,
      returned,
      status,
      output,
    });
    if (status === 'ok' && output !== null) this.remember(op.input, output);
    const result = status === 'ok' ? JSON.stringify(output) : status;
    this.host.traceClient(this.index, `op${op.id} ${describe(op.input)} -> ${result}`);
    if (op.final && status === 'ok') this.finalDone = true;
    const thinkMs = op.final
      ? 20 + this.random.float() * 80
      : this.random.float() * this.settings.thinkMsMax;
    this.wake(thinkMs);
  }

  private remember(input: KvInput, output: KvOutput): void {
    if (input.op === 'get' && 'value' in output) this.lastSeen.set(input.key, output.value);
    else if ((input.op === 'put' || input.op === 'cas') && 'ok' in output && output.ok) {
      this.lastSeen.set(input.key, input.value);
    }
  }

  private randomInput(): KvInput {
    const key = this.randomKey();
    const tag = `${this.index}.${this.host.nextOpId().toString(36)}`;
    const roll = this.random.int(10);
    if (roll < 4) return { op: 'get', key };
    if (roll < 6) return { op: 'put', key, value: tag };
    if (roll < 8) {
      const expected = this.random.int(4) === 0 ? null : (this.lastSeen.get(key) ?? null);
      return { op: 'cas', key, expected, value: tag };
    }
    return { op: 'append', key, value: `${tag} ` };
  }

  private randomKey(): string {
    return `k${this.random.int(this.settings.keys)}`;
  }

  private randomTarget(avoid: SimNode | null): SimNode | undefined {
    const targets = this.host.targets();
    if (targets.length === 0) return undefined;
    let pick = targets[this.random.int(targets.length)];
    if (pick === avoid && targets.length > 1) pick = targets[this.random.int(targets.length)];
    return pick;
  }
}

function describe(input: KvInput): string {
  switch (input.op) {
    case 'get':
      return `get ${input.key}`;
    case 'put':
      return `put ${input.key}=${input.value}`;
    case 'cas':
      return `cas ${input.key} ${JSON.stringify(input.expected)}->${input.value}`;
    case 'append':
      return `append ${input.key} ${JSON.stringify(input.value)}`;
  }
}
