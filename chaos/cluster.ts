/**
 * A Tandem cluster of real `tandem node` processes on loopback for the chaos
 * suite: each node's peer port sits behind a PeerProxy (proxy.ts), every
 * process is started, killed (-9), paused (SIGSTOP) and resumed (SIGCONT)
 * by its pid, and its output goes to `<root>/<id>.log`.
 *
 * Nodes run either the built CLI (`dist/`, as `npm run chaos` does after
 * building) or the TypeScript sources through tsx (the CI test, which must
 * not depend on a stale build).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeStatus } from '../src/cli/admin-client.js';
import type { MemberRecord } from '../src/node/member-registry.js';
import { freePort } from '../src/node/test-cluster.test-util.js';
import { LinkTable, PeerProxy } from './proxy.js';

export const repo = resolve(import.meta.dirname, '..');
const distEntry = join(repo, 'dist', 'src', 'cli', 'main.js');

export type NodeRunner = 'dist' | 'tsx';

export interface ChaosNode {
  readonly id: string;
  readonly respPort: number;
  readonly http: string;
  /** The node's real peer listen port (behind the proxy). */
  readonly peerPort: number;
  /** The address every other node dials: the proxy's. */
  readonly proxyPort: number;
  readonly dataDir: string;
  args: string[];
  child: ChildProcess | null;
  paused: boolean;
  /** Set while an exit is this harness's doing (kill -9, a filled disk). */
  exitExpected: boolean;
  log: WriteStream | null;
}

/** A node's /status, with the membership fields the admin client does not read. */
export interface Status extends NodeStatus {
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

export interface ClusterOptions {
  readonly size: number;
  readonly root: string;
  readonly runner: NodeRunner;
  readonly tickMs: number;
  /** Data directory of node `id` (default `<root>/<id>`), e.g. on a small tmpfs. */
  readonly dataDirFor?: (id: string) => string;
  /** Extra flags for one node. */
  readonly argsFor?: (id: string) => readonly string[];
  /** Extra environment for every node (e.g. a planted bug). */
  readonly env?: Readonly<Record<string, string>>;
  /** A small disk (tmpfs) mounted at `dir`, holding node `node`'s data (the disk nemesis). */
  readonly smallDisk?: { readonly dir: string; readonly node: string };
}

const fetchTimeoutMs = 1_000;

export async function getJson<T>(url: string, init: RequestInit = {}): Promise<T | null> {
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(fetchTimeoutMs) });
    if (!response.ok) return null;
    return (await response.json()) as T;
  } catch {
    return null;
  }
}

export interface UnexpectedExit {
  readonly node: string;
  readonly code: number | null;
  readonly signal: string | null;
  readonly at: string;
}

export class ChaosCluster {
  readonly links = new LinkTable();
  /** Processes that ended on their own (a crash, an assertion): each one is a finding. */
  readonly unexpectedExits: UnexpectedExit[] = [];
  private stopping = false;
  private readonly proxies: PeerProxy[] = [];

  private constructor(
    readonly options: ClusterOptions,
    readonly nodes: readonly ChaosNode[],
  ) {}

  static async plan(options: ClusterOptions): Promise<ChaosCluster> {
    const ids = Array.from({ length: options.size }, (_, i) => `n${i + 1}`);
    const planned: Omit<ChaosNode, 'args'>[] = [];
    for (const id of ids) {
      planned.push({
        id,
        respPort: await freePort(),
        http: `http://127.0.0.1:${await freePort()}`,
        peerPort: await freePort(),
        proxyPort: await freePort(),
        dataDir:
          options.smallDisk?.node === id
            ? join(options.smallDisk.dir, id)
            : (options.dataDirFor?.(id) ?? join(options.root, id)),
        child: null,
        paused: false,
        exitExpected: false,
        log: null,
      });
    }
    const initial = planned.map((n) => `${n.id}=127.0.0.1:${n.proxyPort}`).join(',');
    const nodes = planned.map((n) => ({
      ...n,
      args: [
        ...['node', '--id', n.id, '--data', n.dataDir],
        ...['--resp', `127.0.0.1:${n.respPort}`, '--http', n.http.replace('http://', '')],
        ...['--peer', `127.0.0.1:${n.peerPort}`, '--initial-cluster', initial],
        ...['--tick-ms', String(options.tickMs), '--log-level', 'info'],
        ...(options.argsFor?.(n.id) ?? []),
      ],
    }));
    return new ChaosCluster(options, nodes);
  }

  get smallDisk(): { readonly dir: string; readonly node: string } | null {
    return this.options.smallDisk ?? null;
  }

  node(id: string): ChaosNode {
    const found = this.nodes.find((n) => n.id === id);
    if (found === undefined) throw new Error(`no node ${id}`);
    return found;
  }

  get ids(): string[] {
    return this.nodes.map((n) => n.id);
  }

  /** Starts the proxies and every node, and waits for a leader everyone agrees on. */
  async start(timeoutMs: number): Promise<void> {
    if (this.options.runner === 'dist' && !existsSync(distEntry)) {
      throw new Error(`${distEntry} is missing: run npm run build first`);
    }
    for (const n of this.nodes) {
      const proxy = new PeerProxy(n.id, n.proxyPort, n.peerPort, this.links);
      await proxy.start();
      this.proxies.push(proxy);
    }
    for (const n of this.nodes) this.spawn(n);
    const settled = await this.waitSettled(timeoutMs);
    if (settled === null)
      throw new Error(`the cluster did not elect a leader within ${timeoutMs} ms`);
  }

  isRunning(n: ChaosNode): boolean {
    return n.child !== null && n.child.exitCode === null && n.child.signalCode === null;
  }

  spawn(n: ChaosNode): void {
    if (this.isRunning(n)) return;
    n.log ??= createWriteStream(join(this.options.root, `${n.id}.log`), { flags: 'a' });
    const argv =
      this.options.runner === 'dist'
        ? [distEntry, ...n.args]
        : ['--import', 'tsx', join(repo, 'src', 'cli', 'main.ts'), ...n.args];
    const child = spawn(process.execPath, argv, {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.options.env },
    });
    const log = n.log;
    child.stdout?.on('data', (chunk: Buffer) => log.write(chunk));
    child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
    n.child = child;
    n.paused = false;
    n.exitExpected = false;
    child.once('exit', (code, signal) => {
      if (n.exitExpected || this.stopping) return;
      this.unexpectedExits.push({ node: n.id, code, signal, at: new Date().toISOString() });
    });
  }

  /** Resolves once the node's process has exited, or after `ms` if it is still running. */
  async exitWithin(n: ChaosNode, ms: number): Promise<void> {
    const child = n.child;
    if (child === null || !this.isRunning(n)) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((done) => child.once('exit', () => done())),
      new Promise<void>((done) => {
        timer = setTimeout(done, ms);
      }),
    ]);
    clearTimeout(timer);
  }

  /** kill -9; resolves once the process is gone. */
  async kill(n: ChaosNode): Promise<void> {
    const child = n.child;
    if (child === null || !this.isRunning(n) || child.pid === undefined) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    n.exitExpected = true;
    process.kill(child.pid, 'SIGKILL');
    await exited;
    n.paused = false;
  }

  pause(n: ChaosNode): void {
    const pid = n.child?.pid;
    if (pid === undefined || !this.isRunning(n) || n.paused) return;
    process.kill(pid, 'SIGSTOP');
    n.paused = true;
  }

  resume(n: ChaosNode): void {
    const pid = n.child?.pid;
    if (pid === undefined || !n.paused) return;
    if (this.isRunning(n)) process.kill(pid, 'SIGCONT');
    n.paused = false;
  }

  async status(n: ChaosNode): Promise<Status | null> {
    if (!this.isRunning(n) || n.paused) return null;
    return getJson<Status>(`${n.http}/status`);
  }

  async digest(n: ChaosNode): Promise<{ applied: number; digest: string } | null> {
    if (!this.isRunning(n) || n.paused) return null;
    return getJson(`${n.http}/v1/admin/digest`);
  }

  /** The node every running node agrees is leader, or null. */
  async agreedLeader(): Promise<ChaosNode | null> {
    const live = this.nodes.filter((n) => this.isRunning(n) && !n.paused);
    const all = await Promise.all(live.map((n) => this.status(n)));
    const leader = all.find((s) => s?.role === 'leader');
    if (leader === undefined || leader === null) return null;
    if (!all.every((s) => s !== null && s.leader === leader.leader)) return null;
    return this.node(leader.id);
  }

  /**
   * The node reporting itself leader in the highest term, agreed on or not
   * (a removed member never learns it was removed, so agreement may wait).
   */
  async anyLeader(): Promise<ChaosNode | null> {
    const live = this.nodes.filter((n) => this.isRunning(n) && !n.paused);
    const all = await Promise.all(live.map((n) => this.status(n)));
    let best: Status | null = null;
    for (const s of all)
      if (s?.role === 'leader' && (best === null || s.term > best.term)) best = s;
    return best === null ? null : this.node(best.id);
  }

  /** Polls until a leader is agreed on; null after `timeoutMs`. */
  async waitSettled(timeoutMs: number): Promise<ChaosNode | null> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const leader = await this.agreedLeader();
      if (leader !== null) return leader;
      await sleep(100);
    }
    return null;
  }

  /** Asks the leader to hand over (to `to`, or to the best follower). */
  async transferLeadership(to: string | null): Promise<boolean> {
    const leader = await this.agreedLeader();
    if (leader === null) return false;
    const query = to === null ? '' : `?to=${to}`;
    const answer = await getJson(`${leader.http}/v1/admin/transfer-leadership${query}`, {
      method: 'POST',
    });
    return answer !== null;
  }

  /** The member registry's records, from the agreed leader. */
  async members(): Promise<MemberRecord[] | null> {
    const leader = await this.anyLeader();
    if (leader === null) return null;
    const answer = await getJson<{ members: MemberRecord[] }>(`${leader.http}/v1/admin/members`);
    return answer?.members ?? null;
  }

  /** Removes a member through the leader; `STATUS text` of the answer. */
  removeMember(id: string): Promise<string> {
    return this.admin('DELETE', `/v1/admin/members/${id}`, null);
  }

  /** Adds a member (as a learner) through the leader; `STATUS text` of the answer. */
  addMember(record: MemberRecord): Promise<string> {
    return this.admin('POST', '/v1/admin/members', record);
  }

  private async admin(method: string, path: string, body: unknown): Promise<string> {
    const leader = await this.anyLeader();
    if (leader === null) return '503 no leader';
    try {
      const response = await fetch(`${leader.http}${path}`, {
        method,
        headers: body === null ? {} : { 'content-type': 'application/json' },
        body: body === null ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(5_000),
      });
      const answer = (await response.json()) as { message?: string; error?: string };
      return `${response.status} ${answer.message ?? answer.error ?? ''}`;
    } catch (failure) {
      return `000 ${(failure as Error).message}`;
    }
  }

  /** Every node running, unpaused, every link passing. */
  async healAll(): Promise<void> {
    this.links.healAll();
    for (const n of this.nodes) {
      if (n.paused) this.resume(n);
      if (!this.isRunning(n)) this.spawn(n);
    }
  }

  /** kill -9 of every process (resumed first), proxies closed, logs flushed. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const n of this.nodes) {
      if (n.paused) this.resume(n);
      await this.kill(n);
    }
    for (const p of this.proxies) await p.close();
    for (const n of this.nodes) {
      const log = n.log;
      n.log = null;
      if (log !== null) await new Promise<void>((done) => log.end(() => done()));
    }
  }

  /** Synchronous last resort (process exit handlers): SIGKILL by pid. */
  killAllSync(): void {
    for (const n of this.nodes) {
      const pid = n.child?.pid;
      if (pid !== undefined && this.isRunning(n)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
  }
}
