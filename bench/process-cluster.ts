/**
 * A Tandem cluster of `tandem node` processes on loopback, for benchmarks:
 * free ports, one log file per node under the cluster's root, status over
 * the admin HTTP API, waiting until it settles, and cleanup by pid.
 *
 * TANDEM_BENCH_NODE_FLAGS passes flags to each node's `node` binary, e.g.
 * Nodes run the built CLI (dist/), as in production: the bench scripts in
 * package.json build first.
 *
 * `TANDEM_BENCH_NODE_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof' npm run bench`
 * writes a CPU profile per node when it stops (Node refuses --cpu-prof in
 * NODE_OPTIONS).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../src/node/test-cluster.test-util.js';

const repo = resolve(import.meta.dirname, '..');
const settleTimeoutMs = 60_000;
const stopTimeoutMs = 20_000;
/** TANDEM_BENCH_ENTRY runs another build (an A/B against an older commit's dist/). */
const entry = process.env.TANDEM_BENCH_ENTRY ?? join(repo, 'dist', 'src', 'cli', 'main.js');
const nodeFlags = (process.env.TANDEM_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
/** Characters of each node's latest output kept for error messages (its log is often removed). */
const outputTailChars = 2_000;

export interface BenchNode {
  readonly id: string;
  readonly args: readonly string[];
  readonly http: string;
  readonly respPort: number;
  child: ChildProcess | null;
}

/** One start of a node's process. */
interface StartedNode {
  /** Its latest output (stdout and stderr), at most outputTailChars. */
  tail: string;
  /** Settles once its output streams have closed. */
  readonly closed: Promise<void>;
}

export interface NodeStatus {
  readonly role: string;
  readonly leader: string;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
}

/**
 * Nodes running, killed if this process exits without stopping them: a
 * bench script that dies on an uncaught error skips its `finally`, and its
 * nodes would run on (six did for an hour of one session's measurements).
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export class ProcessCluster {
  private readonly joiners: BenchNode[] = [];
  /** The latest start of each node: its last output and when its streams closed. */
  private readonly started = new Map<string, StartedNode>();

  private constructor(
    readonly root: string,
    readonly nodes: readonly BenchNode[],
  ) {}

  /**
   * Plans `size` nodes with data and logs under `root`; `extraArgs` go to
   * every node, `argsFor(id)` to one.
   */
  static async plan(
    root: string,
    size: number,
    extraArgs: readonly string[],
    argsFor: (id: string) => readonly string[] = () => [],
  ): Promise<ProcessCluster> {
    const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    const ports: { resp: number; http: number; peer: number }[] = [];
    for (const _ of ids) {
      ports.push({ resp: await freePort(), http: await freePort(), peer: await freePort() });
    }
    const initialCluster = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]?.peer}`).join(',');
    const nodes = ids.map((id, i) => {
      const p = ports[i];
      if (p === undefined) throw new Error('a port per node');
      const args = [
        ...[entry, 'node', '--id', id, '--data', join(root, id)],
        ...['--resp', `127.0.0.1:${p.resp}`, '--http', `127.0.0.1:${p.http}`],
        ...['--peer', `127.0.0.1:${p.peer}`, '--initial-cluster', initialCluster],
        ...extraArgs,
        ...argsFor(id),
      ];
      return { id, args, http: `http://127.0.0.1:${p.http}`, respPort: p.resp, child: null };
    });
    return new ProcessCluster(root, nodes);
  }

  /** Plans one more node that joins through `via`'s admin HTTP address (not started). */
  async planJoiner(id: string, via: BenchNode, extraArgs: readonly string[]): Promise<BenchNode> {
    const p = { resp: await freePort(), http: await freePort(), peer: await freePort() };
    const args = [
      ...[entry, 'node', '--id', id, '--data', join(this.root, id)],
      ...['--resp', `127.0.0.1:${p.resp}`, '--http', `127.0.0.1:${p.http}`],
      ...['--peer', `127.0.0.1:${p.peer}`, '--join', via.http.replace('http://', '')],
      ...extraArgs,
    ];
    const node = { id, args, http: `http://127.0.0.1:${p.http}`, respPort: p.resp, child: null };
    this.joiners.push(node);
    return node;
  }

  /** Starts every node and waits until the cluster settles. */
  async start(): Promise<void> {
    for (const node of this.nodes) this.spawn(node);
    await this.settle();
  }

  /** Starts (or restarts) one node with its flags and data directory. */
  spawn(node: BenchNode): void {
    const log = createWriteStream(join(this.root, `${node.id}.log`), { flags: 'a' });
    node.child = spawn(process.execPath, [...nodeFlags, ...node.args], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const child = node.child;
    // Not events.once: it would turn a later 'error' (a failed kill) into a
    // rejection nobody awaits.
    const closed = new Promise<void>((resolve) =>
      child.once('close', () => {
        log.end();
        resolve();
      }),
    );
    const started: StartedNode = { tail: '', closed };
    this.started.set(node.id, started);
    for (const stream of [child.stdout, child.stderr]) {
      // Both streams write to one file: neither may end it alone.
      stream?.pipe(log, { end: false });
      stream?.on('data', (chunk: Buffer) => {
        started.tail = (started.tail + chunk.toString('utf8')).slice(-outputTailChars);
      });
    }
    running.add(child);
    child.once('exit', () => running.delete(child));
  }

  /** The node's latest output, trimmed, or a note that it printed nothing. */
  private outputTail(node: BenchNode): string {
    return this.started.get(node.id)?.tail.trim() || '(no output)';
  }

  async status(node: BenchNode): Promise<NodeStatus | null> {
    try {
      const response = await fetch(`${node.http}/status`, { signal: AbortSignal.timeout(1_000) });
      return response.ok ? ((await response.json()) as NodeStatus) : null;
    } catch {
      return null;
    }
  }

  /**
   * Waits until every node answers, agrees on a leader and has applied the
   * leader's commit. A node that exits meanwhile (a refused flag, a data
   * directory it will not open) fails this at once with its last output:
   * the caller removes the logs on failure.
   */
  async settle(): Promise<void> {
    const deadline = performance.now() + settleTimeoutMs;
    while (performance.now() < deadline) {
      const exited = this.nodes.find(
        (n) => n.child !== null && (n.child.exitCode !== null || n.child.signalCode !== null),
      );
      if (exited !== undefined && exited.child !== null) {
        await this.started.get(exited.id)?.closed;
        const how = exited.child.signalCode ?? `code ${exited.child.exitCode}`;
        throw new Error(
          `node ${exited.id} exited (${how}) before the cluster settled; its last output:\n${this.outputTail(exited)}`,
        );
      }
      const all = await Promise.all(this.nodes.map((n) => this.status(n)));
      const leader = all.find((s) => s?.role === 'leader');
      if (
        leader != null &&
        all.every((s) => s !== null && s.leader === leader.leader && s.applied >= leader.commit)
      ) {
        return;
      }
      await sleep(50);
    }
    const lastLines = this.nodes.map((n) => `${n.id}: ${this.outputTail(n).split('\n').at(-1)}`);
    throw new Error(
      `the cluster did not settle within ${settleTimeoutMs} ms; logs in ${this.root}; each node's last output line:\n${lastLines.join('\n')}`,
    );
  }

  async leader(): Promise<BenchNode> {
    for (const node of this.nodes) if ((await this.status(node))?.role === 'leader') return node;
    throw new Error('no node reports itself leader');
  }

  /** SIGTERM to every live node, SIGKILL to those still running after the stop timeout. */
  async stop(): Promise<void> {
    const live = [...this.nodes, ...this.joiners].flatMap((n) =>
      n.child !== null && n.child.exitCode === null && n.child.signalCode === null ? [n.child] : [],
    );
    const exited = live.map((c) => new Promise<void>((done) => c.once('exit', () => done())));
    for (const child of live) child.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const child of live) if (child.exitCode === null) child.kill('SIGKILL');
    }, stopTimeoutMs);
    await Promise.all(exited);
    clearTimeout(timer);
  }
}
