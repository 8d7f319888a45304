/**
 * TCP transport between Raft nodes.
 *
 * One connection per pair of nodes, used in both directions. The node whose
 * id sorts lower (JavaScript string order, the same on every node) dials;
 * the other only accepts. So the two nodes never race to dial each other.
 * The one remaining race, a restarted dialer connecting while the acceptor
 * still holds the old (half-open) connection, is settled deterministically:
 * a newly authenticated connection from a peer replaces the old one, since
 * the dialer only dials when it has no connection of its own.
 *
 * Every connection starts with a handshake. The dialer sends hello (magic,
 * protocol version, cluster id, its id, the id it means to reach); the
 * acceptor checks the version, the cluster id, that it is the intended
 * receiver, that the sender is a member and is the one that should dial,
 * then answers welcome, or refusal with a reason and closes. Both sides log
 * one line per refusal (rate-limited), and a refused dialer backs off longer.
 * Until the handshake completes only tiny frames are accepted.
 *
 * Frames on an established connection (frame.ts): Raft messages, snapshot
 * streams (begin, chunks, end, acks granting credit, done, abort) and
 * request/response pairs. Raft messages and control frames go before
 * snapshot chunks (connection.ts), so heartbeats are not starved.
 *
 * @example
 * const transport = new PeerTransport({
 *   self: nodeId('n1'),
 *   clusterId: 'prod-eu',
 *   listen: { host: '0.0.0.0', port: 7001 },
 *   peers: new Map([[nodeId('n2'), { host: '10.0.0.2', port: 7001 }]]),
 *   logger,
 *   onMessage: (m) => raft.step(m),
 *   onUnreachable: (peer) => raft.reportUnreachable(peer),
 *   onSnapshot: (from, m, chunks) => installSnapshot(m, chunks),
 *   onRequest: (from, payload) => handleForwarded(from, payload),
 * });
 * await transport.start();
 * transport.send(ready.messages);
 * await transport.close();
 */

import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { assert } from '../raft/assert.js';
import type { Message, SnapshotMessage } from '../raft/messages.js';
import type { NodeId } from '../raft/types.js';
import { backoffMs, RateLimiter } from './backoff.js';
import { decodeMessage, messageBytesEstimate, writeMessage } from './codec.js';
import { Connection, type ConnectionCounters, type ConnectionLimits } from './connection.js';
import { DecodeError, TransportError } from './errors.js';
import {
  FrameType,
  finishFrame,
  frameBytesMaxDefault,
  frameHeaderBytes,
  startFrame,
} from './frame.js';
import {
  decodeHello,
  decodeRefusal,
  decodeRequest,
  decodeResponse,
  decodeSnapBegin,
  decodeSnapChunk,
  decodeStreamNumber,
  decodeStreamResult,
  decodeWelcome,
  encodeHello,
  encodeRefusal,
  encodeRequest,
  encodeResponse,
  encodeSnapBegin,
  encodeSnapChunk,
  encodeStreamNumber,
  encodeStreamResult,
  encodeWelcome,
  type Hello,
  handshakeFrameBytesMax,
  protocolVersion,
  type Refusal,
} from './protocol.js';
import { IncomingSnapshot, OutgoingSnapshot } from './snapshot-stream.js';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Every bound of the transport; units last. Defaults in `transportLimitsDefault`. */
export interface TransportLimits extends ConnectionLimits {
  /** Largest frame accepted or sent (length field); must exceed the Raft config's appendBytesMax. */
  readonly frameBytesMax: number;
  /** Snapshot data per chunk frame. */
  readonly snapshotChunkBytesMax: number;
  /** Snapshot bytes sent but not yet consumed by the receiver (also what a receiver grants). */
  readonly snapshotWindowBytes: number;
  /** Our requests awaiting a response, per peer. */
  readonly requestsInFlightMax: number;
  /** A peer's requests our handler is working on; beyond it they get a 'busy' error. */
  readonly incomingRequestsMax: number;
  /** Unauthenticated incoming connections at once. */
  readonly handshakesPendingMax: number;
  readonly handshakeTimeoutMs: number;
  /** Reconnect delay after a failed or lost connection. */
  readonly backoffMsMin: number;
  readonly backoffMsMax: number;
  /** Reconnect delay after a refusal: a misconfiguration rarely heals in milliseconds. */
  readonly refusedBackoffMsMin: number;
  readonly refusedBackoffMsMax: number;
  /** One log line per peer and kind of problem per interval. */
  readonly logIntervalMs: number;
  /** One onUnreachable call per peer per interval. */
  readonly unreachableIntervalMs: number;
  /** How long close() waits for queued frames to be written. */
  readonly closeFlushMs: number;
}

export const transportLimitsDefault: TransportLimits = {
  frameBytesMax: frameBytesMaxDefault,
  queueBytesMax: 64 * 1024 * 1024,
  queueFramesMax: 10_000,
  writeBatchBytesMax: 4 * 1024 * 1024,
  bulkBatchBytesMax: 1024 * 1024,
  snapshotChunkBytesMax: 1024 * 1024,
  snapshotWindowBytes: 8 * 1024 * 1024,
  requestsInFlightMax: 1_024,
  incomingRequestsMax: 1_024,
  handshakesPendingMax: 64,
  handshakeTimeoutMs: 5_000,
  backoffMsMin: 50,
  backoffMsMax: 2_000,
  refusedBackoffMsMin: 1_000,
  refusedBackoffMsMax: 30_000,
  logIntervalMs: 10_000,
  unreachableIntervalMs: 100,
  closeFlushMs: 500,
};

export interface PeerTransportOptions {
  readonly self: NodeId;
  /** Nodes of other clusters are refused at the handshake. */
  readonly clusterId: string;
  /** Where to listen; port 0 picks a free port (see `start()`'s result). */
  readonly listen: PeerAddress;
  /** Initial address book (this node's own entry, if present, is ignored). Update with `setPeers`. */
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  readonly logger: Logger;
  /**
   * An incoming Raft message, already checked: `from` is the authenticated
   * peer and `to` is this node. Snapshot messages arrive through `onSnapshot`.
   */
  readonly onMessage: (message: Message) => void;
  /**
   * A message to `peer` was dropped (not connected, or its queue is full).
   * Rate-limited per peer and called from a microtask, never from inside
   * `send()`, so the runtime may call `raft.reportUnreachable(peer)` directly.
   */
  readonly onUnreachable?: (peer: NodeId) => void;
  /**
   * A peer streams a snapshot. Consume `chunks` (each chunk taken frees the
   * sender to send more) and resolve once the snapshot is installed; the
   * sender's `sendSnapshot` then resolves. Rejecting reports the error to the
   * sender. If the connection drops, iterating `chunks` throws a
   * TransportError. Without this callback snapshots are refused.
   */
  readonly onSnapshot?: (
    from: NodeId,
    message: SnapshotMessage,
    chunks: AsyncIterable<Uint8Array>,
  ) => Promise<void>;
  /** Answers a peer's `request()`; a rejection is sent back as a 'remote' error. */
  readonly onRequest?: (from: NodeId, payload: Uint8Array) => Promise<Uint8Array>;
  /**
   * Whether a node that connects to us is a member. Defaults to "is in the
   * address book". Use it to admit members whose address we do not know
   * (we never dial them, they dial us).
   */
  readonly isMember?: (id: NodeId) => boolean;
  readonly limits?: Partial<TransportLimits>;
  /** For tests: the jitter source. */
  readonly random?: () => number;
}

/** Counters and gauges of one peer, for metrics. Counters include past connections. */
export interface PeerStats {
  readonly connected: boolean;
  /** Whether this node dialed the current connection (it has the lower id). */
  readonly dialer: boolean;
  readonly localPort: number | null;
  readonly remotePort: number | null;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly framesSent: number;
  readonly framesReceived: number;
  /** Frames dropped: queue full, not connected, or discarded when a connection closed. */
  readonly framesDropped: number;
  /** Bytes waiting to be written (our queue plus the socket's buffer). */
  readonly queueBytes: number;
  readonly queueFrames: number;
  /** Connections established after the first one. */
  readonly reconnects: number;
}

interface PendingRequest {
  readonly resolve: (payload: Uint8Array) => void;
  readonly reject: (error: TransportError) => void;
  readonly timer: NodeJS.Timeout;
}

interface Peer {
  readonly id: NodeId;
  address: PeerAddress | null;
  /** The authenticated connection. */
  conn: Connection | null;
  /** Our outgoing connection while its handshake is in progress. */
  dialing: Connection | null;
  dialer: boolean;
  reconnectTimer: NodeJS.Timeout | null;
  /** Failed attempts since the last established connection (drives the backoff). */
  failures: number;
  refused: boolean;
  everConnected: boolean;
  reconnects: number;
  /** Counters of closed connections plus drops while disconnected. */
  readonly totals: ConnectionCounters;
  readonly requests: Map<number, PendingRequest>;
  incomingRequests: number;
  outgoing: OutgoingSnapshot | null;
  readonly incoming: Map<number, IncomingSnapshot>;
}

export class PeerTransport {
  private readonly self: NodeId;
  private readonly limits: TransportLimits;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly peers = new Map<NodeId, Peer>();
  private readonly handshakes = new Map<Connection, NodeJS.Timeout>();
  private readonly server: Server;
  private readonly logLimiter: RateLimiter;
  private readonly unreachableLimiter: RateLimiter;
  private closed = false;
  private closing: Promise<void> | null = null;
  private nextRequestId = 1;
  private nextStreamId = 1;

  constructor(private readonly options: PeerTransportOptions) {
    this.self = options.self;
    this.limits = { ...transportLimitsDefault, ...options.limits };
    const l = this.limits;
    assert(l.snapshotChunkBytesMax + 64 <= l.frameBytesMax, 'a snapshot chunk fits in a frame');
    assert(l.snapshotWindowBytes >= l.snapshotChunkBytesMax, 'the window holds a chunk');
    assert(l.backoffMsMin <= l.backoffMsMax, 'backoffMsMin <= backoffMsMax');
    // The node id once: the caller's logger may carry it already.
    const named = 'node' in options.logger.bindings();
    this.log = options.logger.child(
      named ? { component: 'transport' } : { component: 'transport', node: options.self },
    );
    this.random = options.random ?? Math.random;
    this.logLimiter = new RateLimiter(l.logIntervalMs);
    this.unreachableLimiter = new RateLimiter(l.unreachableIntervalMs);
    this.server = createServer((socket) => this.onIncoming(socket));
    this.updatePeers(options.peers);
  }

  // ------------------------------------------------------------ lifecycle

  /** Starts listening and dialing; resolves with the bound address (useful with port 0). */
  async start(): Promise<PeerAddress> {
    assert(!this.closed && !this.server.listening, 'start() once, before close()');
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.listen.port, this.options.listen.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', (error) => this.log.error({ err: error }, 'peer listener failed'));
    for (const peer of this.peers.values()) this.maybeDial(peer);
    return this.address();
  }

  /** The bound listen address. */
  address(): PeerAddress {
    const a = this.server.address();
    assert(a !== null && typeof a === 'object', 'address() after start()');
    return { host: a.address, port: a.port };
  }

  /**
   * Graceful shutdown: stops accepting, fails pending requests and snapshot
   * streams with a 'closed' error, gives queued frames up to closeFlushMs to
   * be written, then destroys every socket and clears every timer.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    const serverClosed = new Promise<void>((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
    for (const [conn, timer] of [...this.handshakes]) {
      clearTimeout(timer);
      conn.destroy();
    }
    this.handshakes.clear();
    const conns: Connection[] = [];
    for (const peer of this.peers.values()) {
      this.clearReconnect(peer);
      peer.dialing?.destroy();
      this.failPeerWork(peer, (p) => new TransportError('closed', p, 'the transport is closed'));
      if (peer.conn !== null) conns.push(peer.conn);
    }
    await this.within(this.limits.closeFlushMs, Promise.all(conns.map((c) => c.flushed())));
    for (const conn of conns) conn.destroy();
    await serverClosed;
  }

  /** Resolves when `promise` does or after `ms`, whichever is first; leaves no timer behind. */
  private async within(ms: number, promise: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    await Promise.race([promise, timeout]);
    clearTimeout(timer);
  }

  // ------------------------------------------------------------ address book

  /**
   * Replaces the address book. New peers are dialed (if we dial them), peers
   * whose address changed are redialed, and peers no longer in the book lose
   * their connection, unless `isMember` still admits them (they may dial us).
   */
  setPeers(book: ReadonlyMap<NodeId, PeerAddress>): void {
    assert(!this.closed, 'setPeers after close()');
    this.updatePeers(book);
    if (this.server.listening) for (const peer of this.peers.values()) this.maybeDial(peer);
  }

  private updatePeers(book: ReadonlyMap<NodeId, PeerAddress>): void {
    for (const [id, address] of book) {
      if (id === this.self) continue;
      const peer = this.peerFor(id);
      const moved =
        peer.address !== null &&
        (peer.address.host !== address.host || peer.address.port !== address.port);
      peer.address = { host: address.host, port: address.port };
      if (moved && peer.dialer) this.redial(peer, 'its address changed');
    }
    for (const peer of [...this.peers.values()]) {
      if (book.has(peer.id)) continue;
      if (this.options.isMember?.(peer.id) === true) {
        peer.address = null;
        continue;
      }
      this.removePeer(peer);
    }
  }

  private peerFor(id: NodeId): Peer {
    let peer = this.peers.get(id);
    if (peer === undefined) {
      peer = {
        id,
        address: null,
        conn: null,
        dialing: null,
        dialer: false,
        reconnectTimer: null,
        failures: 0,
        refused: false,
        everConnected: false,
        reconnects: 0,
        totals: {
          bytesSent: 0,
          bytesReceived: 0,
          framesSent: 0,
          framesReceived: 0,
          framesDropped: 0,
        },
        requests: new Map(),
        incomingRequests: 0,
        outgoing: null,
        incoming: new Map(),
      };
      this.peers.set(id, peer);
    }
    return peer;
  }

  private removePeer(peer: Peer): void {
    this.log.info(`peer ${peer.id} removed from the address book; closing its connection`);
    this.peers.delete(peer.id);
    this.clearReconnect(peer);
    peer.dialing?.destroy();
    const error = (p: NodeId) => new TransportError('unreachable', p, `${p} is no longer a peer`);
    if (peer.conn !== null) this.detach(peer, peer.conn, error);
    this.unreachableLimiter.forget(peer.id);
  }

  private isMember(id: NodeId): boolean {
    return this.options.isMember?.(id) ?? this.peers.get(id)?.address != null;
  }

  // ------------------------------------------------------------ dialing

  /** We dial peers whose id sorts after ours and whose address we know. */
  private shouldDial(peer: Peer): boolean {
    return this.self < peer.id && peer.address !== null && !this.closed;
  }

  private maybeDial(peer: Peer): void {
    if (!this.shouldDial(peer)) return;
    if (peer.conn !== null || peer.dialing !== null || peer.reconnectTimer !== null) return;
    this.dial(peer);
  }

  private redial(peer: Peer, why: string): void {
    this.log.info(`reconnecting to ${peer.id}: ${why}`);
    this.clearReconnect(peer);
    peer.dialing?.destroy();
    peer.conn?.destroy(new Error(why));
  }

  private dial(peer: Peer): void {
    const address = peer.address;
    assert(address !== null, 'dial a peer with an address');
    const socket = connect({ host: address.host, port: address.port });
    const conn = new Connection(socket, handshakeFrameBytesMax, this.limits, {
      onFrame: (type, body) => this.onDialerFrame(peer, conn, type, body),
      onClose: (error) => this.onDialerClose(peer, conn, error),
    });
    peer.dialing = conn;
    this.startHandshakeTimer(conn);
    const hello: Hello = {
      version: protocolVersion,
      clusterId: this.options.clusterId,
      from: this.self,
      to: peer.id,
    };
    conn.enqueue(encodeHello(hello, handshakeFrameBytesMax), 'urgent', false);
  }

  private onDialerFrame(peer: Peer, conn: Connection, type: number, body: Uint8Array): void {
    if (peer.conn === conn) {
      this.onPeerFrame(peer, conn, type, body);
      return;
    }
    if (type === FrameType.refuse) {
      this.onRefused(peer, conn, decodeRefusal(body));
      return;
    }
    if (type !== FrameType.welcome) {
      throw new DecodeError('handshake', 0, `expected welcome or refusal, got frame type ${type}`);
    }
    const welcome = decodeWelcome(body);
    if (welcome.self !== peer.id || welcome.version !== protocolVersion) {
      this.logLimited(
        `${peer.id}:wrong-node`,
        'warn',
        `the node at ${formatAddress(peer.address)} is ${welcome.self} (protocol ${welcome.version}), ` +
          `not ${peer.id} (protocol ${protocolVersion}): check the address book`,
      );
      conn.destroy();
      return;
    }
    peer.dialing = null;
    this.establish(peer, conn, true);
  }

  private onRefused(peer: Peer, conn: Connection, refusal: Refusal): void {
    peer.refused = true;
    this.logLimited(
      `${peer.id}:refused`,
      'error',
      `${peer.id} at ${formatAddress(peer.address)} refused our connection (${refusal.code}): ` +
        `${refusal.reason}; retrying with a longer backoff`,
    );
    conn.destroy();
  }

  private onDialerClose(peer: Peer, conn: Connection, error: Error | null): void {
    this.clearHandshakeTimer(conn);
    if (peer.dialing === conn) {
      peer.dialing = null;
      if (error !== null && !this.closed) {
        this.logLimited(
          `${peer.id}:dial`,
          'warn',
          `cannot connect to ${peer.id} at ${formatAddress(peer.address)}: ${error.message}`,
        );
      }
    } else if (peer.conn === conn) {
      this.onEstablishedClose(peer, conn, error);
    }
    this.scheduleReconnect(peer);
  }

  private scheduleReconnect(peer: Peer): void {
    if (!this.shouldDial(peer) || this.peers.get(peer.id) !== peer) return;
    if (peer.conn !== null || peer.dialing !== null || peer.reconnectTimer !== null) return;
    const l = this.limits;
    const range = peer.refused
      ? { msMin: l.refusedBackoffMsMin, msMax: l.refusedBackoffMsMax }
      : { msMin: l.backoffMsMin, msMax: l.backoffMsMax };
    const delayMs = backoffMs(range, peer.failures, this.random);
    peer.failures++;
    peer.reconnectTimer = setTimeout(() => {
      peer.reconnectTimer = null;
      this.maybeDial(peer);
    }, delayMs);
  }

  private clearReconnect(peer: Peer): void {
    if (peer.reconnectTimer !== null) clearTimeout(peer.reconnectTimer);
    peer.reconnectTimer = null;
  }

  // ------------------------------------------------------------ accepting

  private onIncoming(socket: Socket): void {
    if (this.closed || this.handshakes.size >= this.limits.handshakesPendingMax) {
      socket.destroy();
      return;
    }
    let peer: Peer | null = null;
    const conn = new Connection(socket, handshakeFrameBytesMax, this.limits, {
      onFrame: (type, body) => {
        if (peer !== null) this.onPeerFrame(peer, conn, type, body);
        else peer = this.onHello(conn, type, body);
      },
      onClose: (error) => {
        this.clearHandshakeTimer(conn);
        if (peer !== null && peer.conn === conn) this.onEstablishedClose(peer, conn, error);
      },
    });
    this.startHandshakeTimer(conn);
  }

  /** Checks the hello; returns the peer if accepted, null after refusing. */
  private onHello(conn: Connection, type: number, body: Uint8Array): Peer | null {
    if (type !== FrameType.hello) {
      throw new DecodeError('handshake', 0, `expected hello, got frame type ${type}`);
    }
    const hello = decodeHello(body);
    const refusal = this.checkHello(hello);
    if (refusal !== null) {
      this.logLimited(
        `${hello.from}:${refusal.code}`,
        'error',
        `refused connection from ${hello.from} at ${formatAddress(remoteOf(conn.socket))}: ${refusal.reason}`,
      );
      this.clearHandshakeTimer(conn);
      conn.enqueue(encodeRefusal(refusal, handshakeFrameBytesMax), 'urgent', false);
      conn.endAfterFlush();
      // If the dialer never closes its side, the handshake-sized limit and this timer bound it.
      this.startHandshakeTimer(conn);
      return null;
    }
    const peer = this.peerFor(hello.from);
    if (peer.conn !== null) {
      this.log.info(`${peer.id} connected again; replacing its previous connection`);
      const old = peer.conn;
      this.detach(
        peer,
        old,
        (p) => new TransportError('disconnected', p, `connection to ${p} was replaced`),
      );
    }
    conn.enqueue(encodeWelcome(this.self, handshakeFrameBytesMax), 'urgent', false);
    this.establish(peer, conn, false);
    return peer;
  }

  private checkHello(h: Hello): Refusal | null {
    const self = this.self;
    if (h.version !== protocolVersion) {
      return {
        code: 'version',
        reason: `it speaks transport protocol ${h.version}, we speak ${protocolVersion} — upgrade one side`,
      };
    }
    if (h.clusterId !== this.options.clusterId) {
      return {
        code: 'clusterId',
        reason: `cluster id '${h.clusterId}' does not match ours '${this.options.clusterId}' — this node belongs to another cluster`,
      };
    }
    if (h.to !== self) {
      return {
        code: 'wrongReceiver',
        reason: `it meant to reach ${h.to} but this is ${self} — its address book has a wrong address for ${h.to}`,
      };
    }
    if (!this.isMember(h.from)) {
      return {
        code: 'unknownMember',
        reason: `${h.from} is not a member known to ${self} — add it to the cluster first (or it was removed)`,
      };
    }
    if (!(h.from < self)) {
      return {
        code: 'direction',
        reason: `the node with the lower id dials, so ${self} dials ${h.from}, not the other way round — check both run the same version`,
      };
    }
    return null;
  }

  private startHandshakeTimer(conn: Connection): void {
    this.clearHandshakeTimer(conn);
    const timer = setTimeout(() => {
      this.handshakes.delete(conn);
      conn.destroy(
        new Error(`handshake not completed within ${this.limits.handshakeTimeoutMs} ms`),
      );
    }, this.limits.handshakeTimeoutMs);
    this.handshakes.set(conn, timer);
  }

  private clearHandshakeTimer(conn: Connection): void {
    const timer = this.handshakes.get(conn);
    if (timer !== undefined) clearTimeout(timer);
    this.handshakes.delete(conn);
  }

  // ------------------------------------------------------------ established connections

  private establish(peer: Peer, conn: Connection, dialer: boolean): void {
    this.clearHandshakeTimer(conn);
    conn.setFrameBytesMax(this.limits.frameBytesMax);
    peer.conn = conn;
    peer.dialer = dialer;
    peer.failures = 0;
    peer.refused = false;
    if (peer.everConnected) peer.reconnects++;
    peer.everConnected = true;
    this.logLimiter.forget(`${peer.id}:dial`);
    this.log.info(
      `${dialer ? 'connected to' : 'accepted connection from'} ${peer.id} at ${formatAddress(remoteOf(conn.socket))}`,
    );
  }

  private onEstablishedClose(peer: Peer, conn: Connection, error: Error | null): void {
    if (!this.closed) {
      const why = error === null ? 'closed' : error.message;
      this.logLimited(`${peer.id}:lost`, 'warn', `connection to ${peer.id} lost: ${why}`);
    }
    this.detach(
      peer,
      conn,
      (p) => new TransportError('disconnected', p, `connection to ${p} lost`),
    );
  }

  /** Forgets `conn` as the peer's connection, fails the work that depended on it, closes it. */
  private detach(peer: Peer, conn: Connection, error: (peer: NodeId) => TransportError): void {
    if (peer.conn !== conn) return;
    peer.conn = null;
    addCounters(peer.totals, conn.counters);
    // Counted from here on in the totals only.
    conn.counters.framesDropped = 0;
    conn.counters.bytesSent = conn.counters.bytesReceived = 0;
    conn.counters.framesSent = conn.counters.framesReceived = 0;
    this.failPeerWork(peer, error);
    conn.destroy();
  }

  private failPeerWork(peer: Peer, error: (peer: NodeId) => TransportError): void {
    for (const pending of peer.requests.values()) {
      clearTimeout(pending.timer);
      pending.reject(error(peer.id));
    }
    peer.requests.clear();
    peer.outgoing?.fail(error(peer.id));
    for (const stream of peer.incoming.values()) stream.fail(error(peer.id));
    peer.incoming.clear();
  }

  private onPeerFrame(peer: Peer, conn: Connection, type: number, body: Uint8Array): void {
    switch (type) {
      case FrameType.raft:
        this.onRaftFrame(peer, body);
        return;
      case FrameType.snapBegin:
        this.onSnapBegin(peer, conn, body);
        return;
      case FrameType.snapChunk:
        this.onSnapChunk(peer, body);
        return;
      case FrameType.snapEnd:
        peer.incoming.get(decodeStreamNumber(body).streamId)?.end();
        return;
      case FrameType.snapAbort:
        this.onSnapAbort(peer, body);
        return;
      case FrameType.snapAck:
        this.onSnapAck(peer, body);
        return;
      case FrameType.snapDone:
        this.onSnapDone(peer, body);
        return;
      case FrameType.request:
        this.onRequestFrame(peer, conn, body);
        return;
      case FrameType.response:
        this.onResponseFrame(peer, body);
        return;
      default:
        throw new DecodeError('frame.type', 0, `unexpected frame type ${type} after the handshake`);
    }
  }

  // ------------------------------------------------------------ raft messages

  /**
   * Queues Raft messages for their peers; everything sent in one event-loop
   * turn leaves in one write per peer. A message to a peer that is not
   * connected, or whose queue is full, is dropped (Raft retransmits) and
   * reported through `onUnreachable`. Snapshot messages must go through
   * `sendSnapshot`; passing one here, or a message not from this node, is a bug.
   */
  send(messages: readonly Message[]): void {
    for (const m of messages) {
      assert(m.from === this.self, `send() of a message from ${m.from}, not from ${this.self}`);
      assert(m.type !== 'snapshot', 'snapshot messages go through sendSnapshot()');
      if (this.closed) return;
      const peer = this.peers.get(m.to);
      const conn = peer?.conn ?? null;
      if (peer === undefined || conn === null) {
        if (peer !== undefined) peer.totals.framesDropped++;
        this.reportUnreachable(m.to);
        continue;
      }
      const w = startFrame(FrameType.raft, messageBytesEstimate(m));
      writeMessage(w, m);
      if (!conn.enqueue(finishFrame(w, this.limits.frameBytesMax), 'urgent', true)) {
        this.reportUnreachable(m.to);
      }
    }
  }

  private reportUnreachable(id: NodeId): void {
    const callback = this.options.onUnreachable;
    if (callback === undefined) return;
    if (this.unreachableLimiter.allow(id, Date.now()) === null) return;
    queueMicrotask(() => {
      if (!this.closed) callback(id);
    });
  }

  private onRaftFrame(peer: Peer, body: Uint8Array): void {
    const m = decodeMessage(body);
    if (m.from !== peer.id || m.to !== this.self) {
      this.logLimited(
        `${peer.id}:misaddressed`,
        'warn',
        `dropped a ${m.type} message from ${m.from} to ${m.to} that arrived on the connection of ${peer.id}`,
      );
      return;
    }
    if (m.type === 'snapshot') {
      this.logLimited(
        `${peer.id}:bare-snapshot`,
        'warn',
        `dropped a snapshot message from ${peer.id} sent without its data`,
      );
      return;
    }
    this.options.onMessage(m);
  }

  // ------------------------------------------------------------ snapshots

  /**
   * Streams a snapshot to `to`: the message first, then `chunks` (split to
   * at most snapshotChunkBytesMax each) under flow control, so at most
   * snapshotWindowBytes are unconsumed at the receiver at any time. Resolves
   * once the receiver's `onSnapshot` resolved (installed). Rejects with a
   * TransportError: 'unreachable' (not connected), 'busy' (a snapshot to
   * `to` is already streaming), 'disconnected', 'aborted' (`signal`),
   * 'remote' (the receiver failed), 'closed'; or with the error thrown by
   * `chunks`. The receiver is told when the sender gives up.
   */
  async sendSnapshot(
    to: NodeId,
    message: SnapshotMessage,
    chunks: AsyncIterable<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<void> {
    assert(message.from === this.self && message.to === to, 'a snapshot message from us to `to`');
    if (this.closed) throw new TransportError('closed', to, 'the transport is closed');
    const peer = this.peers.get(to);
    const conn = peer?.conn ?? null;
    if (peer === undefined || conn === null) {
      throw new TransportError('unreachable', to, `cannot send a snapshot to ${to}: not connected`);
    }
    if (peer.outgoing !== null) {
      throw new TransportError('busy', to, `a snapshot to ${to} is already streaming; wait for it`);
    }
    signal?.throwIfAborted();
    const stream = new OutgoingSnapshot(this.nextStreamId++, this.limits.snapshotWindowBytes);
    peer.outgoing = stream;
    const onAbort = () =>
      stream.fail(new TransportError('aborted', to, `snapshot to ${to} aborted by the caller`));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.streamSnapshot(conn, stream, message, chunks);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (peer.conn === conn) {
        conn.enqueue(
          encodeStreamResult(
            FrameType.snapAbort,
            stream.streamId,
            reason,
            this.limits.frameBytesMax,
          ),
          'urgent',
          false,
        );
      }
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (peer.outgoing === stream) peer.outgoing = null;
    }
  }

  private async streamSnapshot(
    conn: Connection,
    stream: OutgoingSnapshot,
    message: SnapshotMessage,
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    const frameBytesMax = this.limits.frameBytesMax;
    const to = message.to;
    const lost = () => new TransportError('disconnected', to, `connection to ${to} lost`);
    if (!conn.enqueue(encodeSnapBegin(stream.streamId, message, frameBytesMax), 'bulk', false)) {
      throw lost();
    }
    for await (const chunk of chunks) {
      let offset = 0;
      while (offset < chunk.byteLength) {
        const wantBytes = Math.min(chunk.byteLength - offset, this.limits.snapshotChunkBytesMax);
        const n = await stream.waitForCredit(wantBytes);
        // The receiver finished early (it needed no more bytes): stop reading the source.
        if (n === 0) return await stream.done;
        const frame = encodeSnapChunk(
          stream.streamId,
          chunk.subarray(offset, offset + n),
          frameBytesMax,
        );
        if (!conn.enqueue(frame, 'bulk', false)) throw stream.failed ?? lost();
        stream.sent(n);
        offset += n;
      }
    }
    if (stream.failed !== null) throw stream.failed;
    const end = encodeStreamNumber(FrameType.snapEnd, stream.streamId, 0, frameBytesMax);
    if (!conn.enqueue(end, 'bulk', false)) throw stream.failed ?? lost();
    await stream.done;
  }

  private onSnapBegin(peer: Peer, conn: Connection, body: Uint8Array): void {
    const { streamId, message } = decodeSnapBegin(body);
    const refuse = (why: string) =>
      conn.enqueue(
        encodeStreamResult(FrameType.snapDone, streamId, why, this.limits.frameBytesMax),
        'urgent',
        false,
      );
    const onSnapshot = this.options.onSnapshot;
    if (message.from !== peer.id || message.to !== this.self) {
      refuse(
        `snapshot message from ${message.from} to ${message.to} on the connection of ${peer.id} to ${this.self}`,
      );
      return;
    }
    if (onSnapshot === undefined) {
      refuse(`${this.self} does not accept snapshots`);
      return;
    }
    if (peer.incoming.size > 0) {
      refuse(`${this.self} is already receiving a snapshot from ${peer.id}`);
      return;
    }
    const window = this.limits.snapshotWindowBytes;
    const ack = (bytes: number) => {
      if (peer.conn !== conn) return;
      conn.enqueue(
        encodeStreamNumber(FrameType.snapAck, streamId, bytes, this.limits.frameBytesMax),
        'urgent',
        false,
      );
    };
    const stream = new IncomingSnapshot(streamId, window, ack);
    peer.incoming.set(streamId, stream);
    ack(window);
    const finish = (error: string | null) => {
      if (peer.incoming.get(streamId) !== stream) return;
      peer.incoming.delete(streamId);
      if (peer.conn !== conn) return;
      conn.enqueue(
        encodeStreamResult(FrameType.snapDone, streamId, error, this.limits.frameBytesMax),
        'urgent',
        false,
      );
    };
    Promise.resolve()
      .then(() => onSnapshot(peer.id, message, stream))
      .then(
        () => finish(null),
        (error: unknown) => finish(error instanceof Error ? error.message : String(error)),
      );
  }

  private onSnapChunk(peer: Peer, body: Uint8Array): void {
    const { streamId, data } = decodeSnapChunk(body);
    // Chunks of a stream that already finished or was aborted are discarded.
    const stream = peer.incoming.get(streamId);
    if (stream !== undefined && !stream.push(data)) {
      throw new DecodeError(
        'snapChunk',
        0,
        `${peer.id} sent more snapshot bytes than the window it was granted`,
      );
    }
  }

  private onSnapAbort(peer: Peer, body: Uint8Array): void {
    const { streamId, error } = decodeStreamResult(body);
    const stream = peer.incoming.get(streamId);
    if (stream === undefined) return;
    peer.incoming.delete(streamId);
    stream.fail(
      new TransportError(
        'aborted',
        peer.id,
        `${peer.id} aborted the snapshot stream: ${error ?? 'no reason'}`,
      ),
    );
  }

  private onSnapAck(peer: Peer, body: Uint8Array): void {
    const { streamId, value } = decodeStreamNumber(body);
    if (peer.outgoing?.streamId === streamId) peer.outgoing.grant(value);
  }

  private onSnapDone(peer: Peer, body: Uint8Array): void {
    const { streamId, error } = decodeStreamResult(body);
    const stream = peer.outgoing;
    if (stream?.streamId !== streamId) return;
    const failure =
      error === null
        ? null
        : new TransportError(
            'remote',
            peer.id,
            `${peer.id} failed to install the snapshot: ${error}`,
          );
    stream.complete(failure);
  }

  // ------------------------------------------------------------ requests

  /**
   * Sends `payload` to `to`'s `onRequest` handler and resolves with its
   * answer. Rejects with a TransportError: 'unreachable', 'busy' (more than
   * requestsInFlightMax in flight to `to`), 'tooLarge', 'timeout' (after
   * `timeoutMs`), 'disconnected', 'remote' (the handler failed), 'closed'.
   */
  request(to: NodeId, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed)
      return Promise.reject(new TransportError('closed', to, 'the transport is closed'));
    const peer = this.peers.get(to);
    const conn = peer?.conn ?? null;
    if (peer === undefined || conn === null) {
      return Promise.reject(
        new TransportError('unreachable', to, `cannot send a request to ${to}: not connected`),
      );
    }
    if (peer.requests.size >= this.limits.requestsInFlightMax) {
      return Promise.reject(
        new TransportError(
          'busy',
          to,
          `${this.limits.requestsInFlightMax} requests to ${to} are already in flight; retry later`,
        ),
      );
    }
    if (payload.byteLength + frameHeaderBytes + 16 > this.limits.frameBytesMax) {
      return Promise.reject(
        new TransportError(
          'tooLarge',
          to,
          `request of ${payload.byteLength} bytes exceeds frameBytesMax ${this.limits.frameBytesMax}`,
        ),
      );
    }
    const id = this.nextRequestId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        peer.requests.delete(id);
        reject(
          new TransportError(
            'timeout',
            to,
            `request to ${to} got no response within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      peer.requests.set(id, { resolve, reject, timer });
      conn.enqueue(encodeRequest(id, payload, this.limits.frameBytesMax), 'urgent', false);
    });
  }

  private onRequestFrame(peer: Peer, conn: Connection, body: Uint8Array): void {
    const { id, payload } = decodeRequest(body);
    const respond = (result: { ok: true; payload: Uint8Array } | { ok: false; error: string }) => {
      if (peer.conn !== conn) return;
      let frame: Uint8Array;
      if (
        result.ok &&
        result.payload.byteLength + frameHeaderBytes + 16 > this.limits.frameBytesMax
      ) {
        frame = encodeResponse(
          {
            id,
            ok: false,
            error: `response of ${result.payload.byteLength} bytes exceeds frameBytesMax`,
          },
          this.limits.frameBytesMax,
        );
      } else {
        frame = encodeResponse({ id, ...result }, this.limits.frameBytesMax);
      }
      conn.enqueue(frame, 'urgent', false);
    };
    const handler = this.options.onRequest;
    if (handler === undefined) {
      respond({ ok: false, error: `${this.self} has no request handler` });
      return;
    }
    if (peer.incomingRequests >= this.limits.incomingRequestsMax) {
      respond({
        ok: false,
        error: `${this.self} is busy with ${peer.incomingRequests} requests from ${peer.id}; retry later`,
      });
      return;
    }
    peer.incomingRequests++;
    Promise.resolve()
      .then(() => handler(peer.id, payload))
      .then(
        (answer) => respond({ ok: true, payload: answer }),
        (error: unknown) =>
          respond({ ok: false, error: error instanceof Error ? error.message : String(error) }),
      )
      .finally(() => {
        peer.incomingRequests--;
      });
  }

  private onResponseFrame(peer: Peer, body: Uint8Array): void {
    const response = decodeResponse(body);
    const pending = peer.requests.get(response.id);
    // A response after its timeout finds nothing: dropped.
    if (pending === undefined) return;
    peer.requests.delete(response.id);
    clearTimeout(pending.timer);
    if (response.ok) pending.resolve(response.payload);
    else
      pending.reject(
        new TransportError('remote', peer.id, `${peer.id} failed the request: ${response.error}`),
      );
  }

  /**
   * Drops the current connection to `peer` (fault injection, or to force a
   * fresh handshake). Work in flight on it fails with 'disconnected'; the
   * dialing side reconnects with backoff as after any other loss.
   */
  disconnect(peer: NodeId): void {
    const p = this.peers.get(peer);
    if (p?.conn != null) p.conn.destroy(new Error('disconnected on request'));
  }

  // ------------------------------------------------------------ metrics

  /** Whether an authenticated connection to `peer` is up. */
  isConnected(peer: NodeId): boolean {
    return this.peers.get(peer)?.conn != null;
  }

  /** A plain object per peer, for metrics and tests. */
  stats(): Record<string, PeerStats> {
    const out: Record<string, PeerStats> = {};
    for (const peer of this.peers.values()) out[peer.id] = this.peerStats(peer);
    return out;
  }

  private peerStats(peer: Peer): PeerStats {
    const conn = peer.conn;
    const c = conn?.counters;
    return {
      connected: conn !== null,
      dialer: conn !== null && peer.dialer,
      localPort: conn?.socket.localPort ?? null,
      remotePort: conn?.socket.remotePort ?? null,
      bytesSent: peer.totals.bytesSent + (c?.bytesSent ?? 0),
      bytesReceived: peer.totals.bytesReceived + (c?.bytesReceived ?? 0),
      framesSent: peer.totals.framesSent + (c?.framesSent ?? 0),
      framesReceived: peer.totals.framesReceived + (c?.framesReceived ?? 0),
      framesDropped: peer.totals.framesDropped + (c?.framesDropped ?? 0),
      queueBytes: conn?.queuedBytes ?? 0,
      queueFrames: conn?.queuedFrames ?? 0,
      reconnects: peer.reconnects,
    };
  }

  // ------------------------------------------------------------ logging

  private logLimited(key: string, level: 'warn' | 'error', line: string): void {
    const suppressed = this.logLimiter.allow(key, Date.now());
    if (suppressed === null) return;
    const suffix = suppressed > 0 ? ` (${suppressed} similar since the last report)` : '';
    this.log[level](`${line}${suffix}`);
  }
}

function addCounters(into: ConnectionCounters, from: ConnectionCounters): void {
  into.bytesSent += from.bytesSent;
  into.bytesReceived += from.bytesReceived;
  into.framesSent += from.framesSent;
  into.framesReceived += from.framesReceived;
  into.framesDropped += from.framesDropped;
}

function remoteOf(socket: Socket): PeerAddress | null {
  const { remoteAddress, remotePort } = socket;
  return remoteAddress === undefined || remotePort === undefined
    ? null
    : { host: remoteAddress, port: remotePort };
}

function formatAddress(address: PeerAddress | null): string {
  return address === null ? 'an unknown address' : `${address.host}:${address.port}`;
}
