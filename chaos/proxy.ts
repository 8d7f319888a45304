/**
 * A controllable TCP proxy in front of each node's peer port, so the chaos
 * suite can cut, slow and blackhole the links between real processes.
 *
 * Every node advertises its proxy's address (in `--initial-cluster`, hence in
 * the member registry) and listens on a private port behind it. Tandem opens
 * one connection per pair (the lower id dials), and its first frame is the
 * dialer's hello naming `from` and `to`; the proxy reads that hello, so one
 * listener per node is enough to tell every directed link apart. Bytes from
 * the dialer travel link from→to, bytes back travel to→from, and each
 * direction follows its own link's mode:
 *
 * - `pass`: forwarded as is;
 * - `drop`: a blackhole: the connection stays open, the bytes vanish (the
 *   transport must notice by its own timeouts). Leaving `drop` cuts the
 *   pair's connections, since a stream with a hole in it is garbage;
 * - `stall`: what a partition looks like to TCP: nothing is delivered and
 *   the sender is held back (the proxy stops reading), and at heal every
 *   byte held arrives late, in order, on the same connection — old messages
 *   in a burst, unless a side gave up on the connection meanwhile;
 * - `refuse`: new connections are closed at once, open ones are cut;
 * - `delay`: forwarded after `ms` (order kept);
 * - `loss`: each chunk, with probability `p`, cuts the connection: on TCP a
 *   lost packet is retransmitted, so what a peer sees of loss is frames that
 *   never arrive and a broken connection, which is what this produces.
 *
 * Limits: connections per proxy (`connectionsMax`), bytes held per delayed
 * direction (`delayedBytesMax`, beyond which the source is paused).
 */

import { connect, createServer, type Server, type Socket } from 'node:net';
import { FrameType, frameHeaderBytes } from '../src/transport/frame.js';
import { decodeHello, handshakeFrameBytesMax } from '../src/transport/protocol.js';

export type LinkMode =
  | { readonly kind: 'pass' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'stall' }
  | { readonly kind: 'refuse' }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'loss'; readonly p: number };

export const pass: LinkMode = { kind: 'pass' };

const connectionsMax = 64;
const delayedBytesMax = 16 * 1024 * 1024;

/** `a->b`: the directed link from node a to node b. */
export function linkName(from: string, to: string): string {
  return `${from}->${to}`;
}

/** The modes of every directed link; links not named pass. Shared by all proxies. */
export class LinkTable {
  private readonly modes = new Map<string, LinkMode>();
  private readonly listeners = new Set<(from: string, to: string, mode: LinkMode) => void>();

  get(from: string, to: string): LinkMode {
    return this.modes.get(linkName(from, to)) ?? pass;
  }

  set(from: string, to: string, mode: LinkMode): void {
    if (mode.kind === 'pass') this.modes.delete(linkName(from, to));
    else this.modes.set(linkName(from, to), mode);
    for (const listener of this.listeners) listener(from, to, mode);
  }

  /** Both directions. */
  setBoth(a: string, b: string, mode: LinkMode): void {
    this.set(a, b, mode);
    this.set(b, a, mode);
  }

  /** Every link back to pass. */
  healAll(): void {
    for (const name of [...this.modes.keys()]) {
      const [from, to] = name.split('->') as [string, string];
      this.set(from, to, pass);
    }
  }

  /** Links not passing, for the timeline. */
  faulty(): Record<string, LinkMode> {
    return Object.fromEntries(this.modes);
  }

  onChange(listener: (from: string, to: string, mode: LinkMode) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** One direction of a proxied connection, with its delay queue. */
class Direction {
  private queue: { at: number; chunk: Buffer }[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastAt = 0;
  /** Whether this direction ever swallowed bytes: its stream then has a hole. */
  dropped = false;
  /** Bytes held back by a stall, delivered at heal. */
  private held: Buffer[] = [];

  constructor(
    private readonly source: Socket,
    private readonly sink: Socket,
    private readonly mode: () => LinkMode,
    private readonly cut: () => void,
  ) {
    source.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  onData(chunk: Buffer): void {
    const mode = this.mode();
    if (mode.kind !== 'stall' && this.held.length > 0) this.release();
    switch (mode.kind) {
      case 'stall':
        this.held.push(chunk);
        this.source.pause();
        return;
      case 'pass':
        if (this.queue.length > 0) this.enqueue(chunk, 0);
        else this.sink.write(chunk);
        return;
      case 'drop':
        this.dropped = true;
        return;
      case 'refuse':
        this.cut();
        return;
      case 'loss':
        if (Math.random() < mode.p) this.cut();
        else if (this.queue.length > 0) this.enqueue(chunk, 0);
        else this.sink.write(chunk);
        return;
      case 'delay':
        this.enqueue(chunk, mode.ms);
        return;
    }
  }

  private enqueue(chunk: Buffer, delayMs: number): void {
    // Order is kept: nothing leaves before what came earlier.
    const at = Math.max(Date.now() + delayMs, this.lastAt);
    this.lastAt = at;
    this.queue.push({ at, chunk });
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > delayedBytesMax) this.source.pause();
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== null) return;
    const head = this.queue[0];
    if (head === undefined) return;
    this.timer = setTimeout(() => this.flush(), Math.max(0, head.at - Date.now()));
  }

  private flush(): void {
    this.timer = null;
    const now = Date.now();
    while (this.queue.length > 0 && (this.queue[0]?.at ?? 0) <= now) {
      const item = this.queue.shift();
      if (item === undefined) break;
      this.queuedBytes -= item.chunk.length;
      if (!this.sink.destroyed) this.sink.write(item.chunk);
    }
    if (this.queuedBytes <= delayedBytesMax / 2 && this.source.isPaused()) this.source.resume();
    this.schedule();
  }

  /** Once the link no longer stalls: what was held goes out, reading resumes. */
  release(): void {
    if (this.mode().kind === 'stall') return;
    const held = this.held;
    this.held = [];
    for (const chunk of held) this.onData(chunk);
    if (this.source.isPaused() && this.queuedBytes <= delayedBytesMax / 2) this.source.resume();
  }

  stop(): void {
    this.held = [];
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.queue = [];
    this.queuedBytes = 0;
  }
}

interface Proxied {
  readonly from: string;
  readonly to: string;
  readonly client: Socket;
  readonly upstream: Socket;
  readonly directions: Direction[];
}

/** The proxy in front of one node's peer port. */
export class PeerProxy {
  private server: Server | null = null;
  private readonly open = new Set<Proxied>();
  private readonly pending = new Set<Socket>();
  private readonly unsubscribe: () => void;
  /** Connections proxied since start, and those refused or cut by a fault. */
  readonly counts = { accepted: 0, refused: 0, cut: 0 };

  constructor(
    readonly node: string,
    readonly listenPort: number,
    readonly targetPort: number,
    private readonly links: LinkTable,
    readonly host = '127.0.0.1',
    readonly targetHost = '127.0.0.1',
  ) {
    this.unsubscribe = links.onChange((from, to, mode) => this.onModeChange(from, to, mode));
  }

  async start(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenPort, this.host, () => resolve());
    });
  }

  async close(): Promise<void> {
    this.unsubscribe();
    for (const socket of this.pending) socket.destroy();
    for (const c of [...this.open]) this.destroy(c);
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Cuts every open connection (both ends see a reset). */
  cutAll(): void {
    for (const c of [...this.open]) this.cut(c);
  }

  private accept(socket: Socket): void {
    if (this.open.size + this.pending.size >= connectionsMax) {
      socket.destroy();
      return;
    }
    this.pending.add(socket);
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < frameHeaderBytes) return;
      const length = buffered.readUInt32BE(0);
      if (length > handshakeFrameBytesMax || buffered[4] !== FrameType.hello) {
        socket.destroy();
        this.pending.delete(socket);
        return;
      }
      if (buffered.length < 4 + length) return;
      socket.off('data', onData);
      socket.pause();
      this.pending.delete(socket);
      let from: string;
      let to: string;
      try {
        const hello = decodeHello(buffered.subarray(frameHeaderBytes, 4 + length));
        from = hello.from;
        to = hello.to;
      } catch {
        socket.destroy();
        return;
      }
      this.forward(socket, from, to, buffered);
    };
    socket.on('data', onData);
    socket.on('close', () => this.pending.delete(socket));
  }

  private forward(client: Socket, from: string, to: string, hello: Buffer): void {
    const blocked = (m: LinkMode): boolean => m.kind === 'refuse';
    if (blocked(this.links.get(from, to)) || blocked(this.links.get(to, from))) {
      this.counts.refused++;
      client.destroy();
      return;
    }
    this.counts.accepted++;
    const upstream = connect(this.targetPort, this.targetHost);
    upstream.on('error', () => undefined);
    const c: Proxied = { from, to, client, upstream, directions: [] };
    this.open.add(c);
    const cut = (): void => this.cut(c);
    const forward = new Direction(client, upstream, () => this.links.get(from, to), cut);
    const back = new Direction(upstream, client, () => this.links.get(to, from), cut);
    c.directions.push(forward, back);
    client.on('close', () => this.destroy(c));
    upstream.on('close', () => this.destroy(c));
    // The hello itself travels from→to like any other byte.
    forward.onData(hello);
    if (this.links.get(from, to).kind !== 'stall') client.resume();
  }

  private onModeChange(from: string, to: string, mode: LinkMode): void {
    for (const c of [...this.open]) {
      const matches = (c.from === from && c.to === to) || (c.from === to && c.to === from);
      if (!matches) continue;
      // Leaving a blackhole: the stream has a hole in it; refusing: cut now.
      if (mode.kind === 'refuse' || (mode.kind !== 'drop' && c.directions.some((d) => d.dropped))) {
        this.cut(c);
      } else if (mode.kind !== 'stall') {
        for (const d of c.directions) d.release();
      }
    }
  }

  private cut(c: Proxied): void {
    if (!this.open.has(c)) return;
    this.counts.cut++;
    c.client.resetAndDestroy();
    c.upstream.resetAndDestroy();
    this.destroy(c);
  }

  private destroy(c: Proxied): void {
    if (!this.open.delete(c)) return;
    for (const d of c.directions) d.stop();
    c.client.destroy();
    c.upstream.destroy();
  }
}
