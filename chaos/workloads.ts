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
 * - files (workload 4): whole-file PUTs over the admin HTTP of a random node
 *   (a follower forwards to the leader) of versions whose content follows
 *   from the version number (fileContent), a few KiB up to `fileBytesMax`
 *   so several 1 MiB chunks are involved, with X-Checksum-Sha256; and
 *   linearizable GETs on random nodes, recording the body's length and
 *   sha256. A few paths only; once three quarters of `fileBytesBudget` are
 *   put, files are small (up to 16 KiB), and puts stop at the budget (reads
 *   go on); one request in flight per client; every
 *   request bounded by `fileOpTimeoutMs` (AbortSignal.timeout).
 *
 * A client whose operation ended unknown (timeout, connection lost) takes a
 * new client number and a new connection, as in Jepsen: the old one may
 * still be pending forever.
 */

import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Prng } from '../src/raft/prng.js';
import type { ChaosCluster } from './cluster.js';
import type { FileOp, History, OperationStatus } from './history.js';

export type WorkloadName = 'register' | 'set' | 'bank' | 'files';
export const workloadNames: readonly WorkloadName[] = ['register', 'set', 'bank', 'files'];

export interface WorkloadOptions {
  readonly clients: number;
  readonly workloads: readonly WorkloadName[];
  /** Each operation's bound; past it the outcome is unknown. */
  readonly opTimeoutMs: number;
  readonly registerKeyMs: number;
  readonly registerKeys: number;
  /** Largest file put (bytes); sizes are uniform from `fileBytesMin` up to it. */
  readonly fileBytesMax: number;
  /** How many paths the files workload writes and reads. */
  readonly filePaths: number;
  /**
   * Bytes all puts together may send; past it the files clients only read.
   * Old versions' chunks stay on disk for the file store's GC grace (an
   * hour), and the disk nemesis's node has a 256 MiB tmpfs.
   */
  readonly fileBytesBudget: number;
  /** Each file request's bound (headers and body); past it the outcome is unknown. */
  readonly fileOpTimeoutMs: number;
}

export const fileBytesMin = 4 << 10;
/** Puts once three quarters of the budget are spent are at most this big. */
const smallFileBytesMax = 16 << 10;
export const filePath = (i: number): string => `chaos/files/f${i}`;

/**
 * The content of file version `version`: `size` bytes from an xorshift32
 * stream seeded by the version, so every version's bytes (and sha256) are
 * known to the checker and differ from every other version's.
 */
export function fileContent(version: number, size: number): Buffer {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = (Math.imul(version + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer, 0, size);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The system error code under a failed fetch (undici puts it in `cause`), or ''. */
export function fetchFailureCode(failure: unknown): string {
  const cause = (failure as { cause?: { code?: unknown } } | null)?.cause;
  return typeof cause?.code === 'string' ? cause.code : '';
}

/**
 * How a failed fetch ends a request: refused connections never carried it
 * (`fail`); timeouts, resets and anything else are `unknown`.
 */
export function classifyFetchFailure(failure: unknown): OperationStatus {
  return fetchFailureCode(failure) === 'ECONNREFUSED' ? 'fail' : 'unknown';
}

/** How a file request's HTTP status ends it: definite 4xx refusals fail, the rest is unknown. */
export function classifyHttp(status: number): OperationStatus {
  // 408 (the server gave up waiting) and 5xx (503 "retry", a forwarding 502) say nothing definite.
  return status >= 400 && status < 500 && status !== 408 ? 'fail' : 'unknown';
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
  private nextFileVersion = 0;
  private fileBytesSent = 0;
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
    this.countError(failure instanceof Error ? failure.message : String(failure));
    return classify(failure);
  }

  private countError(message: string): void {
    const text = message.slice(0, 100).replace(/\d+/g, 'N');
    const errors = this.history.errors;
    if (text in errors || Object.keys(errors).length < errorKindsMax) {
      errors[text] = (errors[text] ?? 0) + 1;
    }
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
    if (workload === 'files') return this.filesLoop();
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
      case 'files':
        throw new Error('the files workload runs in filesLoop, over HTTP');
    }
  }

  /** One files client: a put or a linearizable read at a time, each on a random node. */
  private async filesLoop(): Promise<void> {
    let client = this.nextClient++;
    while (this.running) {
      const node = this.cluster.nodes[this.prng.int(this.cluster.nodes.length)];
      if (node === undefined) break;
      const path = filePath(this.prng.int(this.options.filePaths));
      const put = this.prng.int(2) === 0 && this.fileBytesSent < this.options.fileBytesBudget;
      const status = put
        ? await this.filePut(client, node, path)
        : await this.fileRead(client, node, path, 'client');
      // An unknown outcome may still be pending: a fresh client number, as for Redis clients.
      if (status === 'unknown') client = this.nextClient++;
      await sleep(status === 'ok' ? thinkMs : reconnectMs);
    }
  }

  private async filePut(
    client: number,
    node: { id: string; http: string },
    path: string,
  ): Promise<OperationStatus> {
    const version = this.nextFileVersion++;
    // The last quarter of the budget goes to small files, so versions keep changing for long.
    const large = this.fileBytesSent < (this.options.fileBytesBudget * 3) / 4;
    const bytesMax = large ? this.options.fileBytesMax : smallFileBytesMax;
    const span = bytesMax - fileBytesMin + 1;
    const size = fileBytesMin + this.prng.int(Math.max(1, span));
    this.fileBytesSent += size;
    const content = fileContent(version, size);
    const sha256 = sha256Hex(content);
    const invoked = this.now();
    let status: OperationStatus;
    try {
      const response = await fetch(`${node.http}/v1/files/${path}`, {
        method: 'PUT',
        body: content,
        headers: { 'content-type': 'application/octet-stream', 'x-checksum-sha256': sha256 },
        signal: AbortSignal.timeout(this.options.fileOpTimeoutMs),
      });
      const answer = await response.text();
      status = response.status === 201 ? 'ok' : classifyHttp(response.status);
      if (status !== 'ok') this.countError(`files PUT ${response.status}: ${answer}`);
    } catch (failure) {
      this.countError(`files PUT: ${(failure as Error).message} ${fetchFailureCode(failure)}`);
      status = classifyFetchFailure(failure);
    }
    this.history.files.push({
      kind: 'put',
      client,
      path,
      version,
      size,
      sha256,
      node: node.id,
      invoked,
      returned: status === 'unknown' ? null : this.now(),
      status,
    });
    return status;
  }

  /** A linearizable GET of the whole file; records what the body held. */
  private async fileRead(
    client: number,
    node: { id: string; http: string },
    path: string,
    source: 'client' | 'final',
  ): Promise<OperationStatus> {
    const invoked = this.now();
    let status: OperationStatus;
    let found: Extract<FileOp, { kind: 'read' }>['found'] = null;
    try {
      const response = await fetch(`${node.http}/v1/files/${path}?linearizable=1`, {
        signal: AbortSignal.timeout(this.options.fileOpTimeoutMs),
      });
      const body = new Uint8Array(await response.arrayBuffer());
      if (response.status === 200) {
        const length = response.headers.get('content-length');
        found = {
          size: body.length,
          sha256: sha256Hex(body),
          headerSha256: response.headers.get('x-checksum-sha256'),
          headerSize: length === null ? null : Number(length),
        };
        status = 'ok';
      } else if (response.status === 404) {
        status = 'ok';
      } else {
        status = classifyHttp(response.status);
        this.countError(`files GET ${response.status}: ${Buffer.from(body).toString()}`);
      }
    } catch (failure) {
      this.countError(`files GET: ${(failure as Error).message}`);
      status = 'unknown';
    }
    this.history.files.push({
      kind: 'read',
      client,
      path,
      node: node.id,
      invoked,
      returned: status === 'ok' ? this.now() : null,
      status,
      found: status === 'ok' ? found : null,
      source,
    });
    return status;
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
      if (this.options.workloads.includes('files')) await this.finalFileReads(node, deadline);
    }
  }

  /** Every path read on `node`, retried until answered; a read never answered is recorded so. */
  private async finalFileReads(node: { id: string; http: string }, deadline: number) {
    for (let i = 0; i < this.options.filePaths; i++) {
      let status: OperationStatus = 'unknown';
      for (;;) {
        const before = this.history.files.length;
        status = await this.fileRead(-1, node, filePath(i), 'final');
        if (status === 'ok' || Date.now() > deadline) break;
        // Only the last attempt counts: the failed ones are dropped.
        this.history.files.splice(before, 1);
        await sleep(200);
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
