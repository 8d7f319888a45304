/**
 * Concurrent clients driving the cluster with ioredis, one operation at a
 * time each, spread over every node, recording every operation (history.ts).
 *
 * - register: GET / SET / compare-and-set (WATCH, GET, MULTI SET EXEC) on a
 *   few keys at a time; keys rotate every `registerKeyMs` so no key's
 *   history grows too long to check.
 * - set: SADD of unique elements to one set; read once at the end.
 * - bank: transfers (WATCH the source, GET it, MULTI DECRBY INCRBY EXEC,
 *   skipped when the balance is short) and reads of every balance (MGET).
 * - files: the place for put-and-read-back of checksummed files once the
 *   file store lands (issue 7, workload 4); not driven yet.
 *
 * A client whose operation ended unknown (timeout, connection lost) takes a
 * new client number and a new connection, as in Jepsen: the old one may
 * still be pending forever.
 */

import { Redis } from 'ioredis';
import type { Prng } from '../src/raft/prng.js';
import type { ChaosCluster } from './cluster.js';
import type { History, OperationStatus } from './history.js';

export type WorkloadName = 'register' | 'set' | 'bank';
export const workloadNames: readonly WorkloadName[] = ['register', 'set', 'bank'];

export interface WorkloadOptions {
  readonly clients: number;
  readonly workloads: readonly WorkloadName[];
  /** Each operation's bound; past it the outcome is unknown. */
  readonly opTimeoutMs: number;
  readonly registerKeyMs: number;
  readonly registerKeys: number;
}

export const bankAccounts = 5;
export const bankStart = 100;
export const setKey = 'chaos:set';
const bankKey = (i: number): string => `chaos:bank:${i}`;
export const bankKeys: readonly string[] = Array.from({ length: bankAccounts }, (_, i) =>
  bankKey(i),
);
/** Distinct error texts counted (a limit on everything). */
const errorKindsMax = 200;
/** A client rests this long between operations so two cores keep up. */
const thinkMs = 5;
/** A client whose connection failed waits this long before reconnecting. */
const reconnectMs = 100;

/** How an error ends an operation: certainly not applied, or unknown. */
export function classify(failure: unknown): OperationStatus {
  const message = failure instanceof Error ? failure.message : String(failure);
  // Tandem answers TRYAGAIN only for writes it did not apply.
  if (message.startsWith('TRYAGAIN')) return 'fail';
  // NOSPACE is refused before proposing (src/node/space-guard.ts).
  if (message.startsWith('NOSPACE')) return 'fail';
  // ioredis refused to send: no connection, and no offline queue.
  if (message.includes("Stream isn't writeable")) return 'fail';
  // Timeouts, lost connections ("Connection is closed."), anything else.
  return 'unknown';
}

export class Workloads {
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private nextClient = 0;
  private nextOpId = 0;
  private nextElement = 0;
  private readonly connections = new Set<Redis>();
  readonly started = performance.now();

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly history: History,
    private readonly options: WorkloadOptions,
    private readonly prng: Prng,
  ) {}

  /** classify(), counting the error's text in the history. */
  private classify(failure: unknown): OperationStatus {
    const text = (failure instanceof Error ? failure.message : String(failure))
      .slice(0, 100)
      .replace(/\d+/g, 'N');
    const errors = this.history.errors;
    if (text in errors || Object.keys(errors).length < errorKindsMax) {
      errors[text] = (errors[text] ?? 0) + 1;
    }
    return classify(failure);
  }

  now(): number {
    return performance.now() - this.started;
  }

  connect(port: number): Redis {
    const redis = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: this.options.opTimeoutMs,
      connectTimeout: this.options.opTimeoutMs,
      retryStrategy: () => null,
      reconnectOnError: () => false,
    });
    redis.on('error', () => undefined);
    this.connections.add(redis);
    return redis;
  }

  /** Sets the bank's opening balances (retried until acknowledged). */
  async setup(deadlineMs: number): Promise<void> {
    if (!this.options.workloads.includes('bank')) return;
    const deadline = Date.now() + deadlineMs;
    const node = this.cluster.nodes[0];
    if (node === undefined) throw new Error('no nodes');
    const args = bankKeys.flatMap((k) => [k, String(bankStart)]);
    while (Date.now() < deadline) {
      const redis = this.connect(node.respPort);
      try {
        await waitReady(redis, this.options.opTimeoutMs);
        await redis.mset(...args);
        return;
      } catch {
        await sleep(200);
      } finally {
        this.close(redis);
      }
    }
    throw new Error('could not set the bank up');
  }

  start(): void {
    this.running = true;
    for (let i = 0; i < this.options.clients; i++) {
      const workload = this.options.workloads[i % this.options.workloads.length];
      if (workload === undefined) continue;
      this.loops.push(this.loop(i, workload));
    }
  }

  /** Stops issuing; resolves when every in-flight operation has ended. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  close(redis: Redis): void {
    this.connections.delete(redis);
    redis.disconnect();
  }

  closeAll(): void {
    for (const r of [...this.connections]) this.close(r);
  }

  private async loop(slot: number, workload: WorkloadName): Promise<void> {
    let nodeIndex = slot % this.cluster.nodes.length;
    let client = this.nextClient++;
    let redis: Redis | null = null;
    while (this.running) {
      const node = this.cluster.nodes[nodeIndex];
      if (node === undefined) break;
      if (redis === null) {
        redis = this.connect(node.respPort);
        try {
          await waitReady(redis, this.options.opTimeoutMs);
        } catch {
          this.close(redis);
          redis = null;
          nodeIndex = (nodeIndex + 1) % this.cluster.nodes.length;
          await sleep(reconnectMs);
          continue;
        }
      }
      const status = await this.step(workload, redis, client);
      if (status !== 'ok' || redis.status !== 'ready') {
        // A fresh connection (no WATCH left behind, no late reply), and after
        // an unknown outcome a fresh client: the old op may be pending forever.
        this.close(redis);
        redis = null;
        if (status === 'unknown') client = this.nextClient++;
        nodeIndex = (nodeIndex + 1) % this.cluster.nodes.length;
      }
      await sleep(thinkMs);
    }
    if (redis !== null) this.close(redis);
  }

  private step(workload: WorkloadName, redis: Redis, client: number): Promise<OperationStatus> {
    // Workload 4, files (issue 7), goes here once the file store lands: put a
    // checksummed file through one node's HTTP file API, read it back through
    // another; add 'files' to WorkloadName, a FileOp to history.ts and a
    // checker to checkers.ts (every acknowledged put reads back with its
    // checksum, no read returns bytes that were never put).
    switch (workload) {
      case 'register':
        return this.registerOp(redis, client);
      case 'set':
        return this.setOp(redis, client);
      case 'bank':
        return this.bankOp(redis, client);
    }
  }

  private registerKey(): string {
    const epoch = Math.floor(this.now() / this.options.registerKeyMs);
    return `chaos:r:${epoch}:${this.prng.int(this.options.registerKeys)}`;
  }

  private async registerOp(redis: Redis, client: number): Promise<OperationStatus> {
    const key = this.registerKey();
    const id = this.nextOpId++;
    const value = `${client}-${id}`;
    const roll = this.prng.int(10);
    const invoked = this.now();
    const record = (
      input: Parameters<typeof this.history.registers.push>[0]['input'],
      status: OperationStatus,
      output: { value: string | null } | { ok: boolean } | null,
    ): OperationStatus => {
      this.history.registers.push({
        id,
        client,
        input,
        invoked,
        returned: status === 'unknown' ? null : this.now(),
        status,
        output: status === 'ok' ? output : null,
      });
      return status;
    };
    if (roll < 4) {
      try {
        const got = await redis.get(key);
        return record({ op: 'get', key }, 'ok', { value: got });
      } catch (failure) {
        return record({ op: 'get', key }, this.classify(failure), null);
      }
    }
    if (roll < 7) {
      try {
        await redis.set(key, value);
        return record({ op: 'put', key, value }, 'ok', { ok: true });
      } catch (failure) {
        return record({ op: 'put', key, value }, this.classify(failure), null);
      }
    }
    // Compare-and-set: expect the value last written by someone, or absence.
    const last = this.history.registers.findLast(
      (op) => op.input.key === key && op.input.op !== 'get',
    );
    const expected = last === undefined ? null : (last.input as { value: string }).value;
    const input = { op: 'cas' as const, key, expected, value };
    let sent = false;
    try {
      await redis.watch(key);
      const current = await redis.get(key);
      if (current !== expected) {
        await redis.unwatch();
        return record(input, 'ok', { ok: false });
      }
      sent = true;
      const result = await redis.multi().set(key, value).exec();
      if (result === null) return record(input, 'ok', { ok: false });
      const inner = result[0]?.[0];
      return inner == null ? record(input, 'ok', { ok: true }) : record(input, 'unknown', null);
    } catch (failure) {
      return record(input, sent ? this.classify(failure) : 'fail', null);
    }
  }

  private async setOp(redis: Redis, client: number): Promise<OperationStatus> {
    const element = String(this.nextElement++);
    const invoked = this.now();
    let status: OperationStatus;
    try {
      await redis.sadd(setKey, element);
      status = 'ok';
    } catch (failure) {
      status = this.classify(failure);
    }
    this.history.setAdds.push({
      client,
      key: setKey,
      element,
      invoked,
      returned: status === 'unknown' ? null : this.now(),
      status,
    });
    return status;
  }

  private async bankOp(redis: Redis, client: number): Promise<OperationStatus> {
    const invoked = this.now();
    if (this.prng.int(2) === 0) {
      try {
        const balances = await redis.mget(...bankKeys);
        this.history.bank.push({
          kind: 'read',
          client,
          balances,
          invoked,
          returned: this.now(),
          source: 'client',
        });
        return 'ok';
      } catch (failure) {
        return this.classify(failure) === 'unknown' ? 'unknown' : 'fail';
      }
    }
    const from = this.prng.int(bankAccounts);
    const to = (from + 1 + this.prng.int(bankAccounts - 1)) % bankAccounts;
    const amount = 1 + this.prng.int(20);
    let sent = false;
    let status: OperationStatus;
    try {
      await redis.watch(bankKey(from));
      const balance = Number(await redis.get(bankKey(from)));
      if (balance < amount) {
        await redis.unwatch();
        return 'ok';
      }
      sent = true;
      const result = await redis
        .multi()
        .decrby(bankKey(from), amount)
        .incrby(bankKey(to), amount)
        .exec();
      const inner = result?.some(([err]) => err != null) ?? false;
      status = result === null ? 'fail' : inner ? 'unknown' : 'ok';
    } catch (failure) {
      status = sent ? this.classify(failure) : 'fail';
    }
    if (sent) {
      this.history.bank.push({
        kind: 'transfer',
        client,
        from,
        to,
        amount,
        invoked,
        returned: status === 'unknown' ? null : this.now(),
        status,
      });
    }
    return status;
  }

  /**
   * The final reads, from every node once the cluster recovered: the set's
   * members and every balance. A node that cannot answer within
   * `deadlineMs` contributes no read (the checkers then say so).
   */
  async finalReads(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    for (const node of this.cluster.nodes) {
      while (Date.now() < deadline) {
        const redis = this.connect(node.respPort);
        try {
          await waitReady(redis, this.options.opTimeoutMs);
          if (this.options.workloads.includes('set')) {
            const members = await redis.smembers(setKey);
            this.history.setReads.push({ key: setKey, node: node.id, members });
          }
          if (this.options.workloads.includes('bank')) {
            const invoked = this.now();
            const balances = await redis.mget(...bankKeys);
            this.history.bank.push({
              kind: 'read',
              client: -1,
              balances,
              invoked,
              returned: this.now(),
              source: `final read on ${node.id}`,
            });
          }
          break;
        } catch {
          await sleep(200);
        } finally {
          this.close(redis);
        }
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function waitReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error('connect timeout'));
    }, timeoutMs);
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error('connection ended'));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('end', onEnd);
    };
    redis.once('ready', onReady);
    redis.once('end', onEnd);
  });
}
