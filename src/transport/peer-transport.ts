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
 * Every connection starts with a handshake (handshake.ts): hello, then
 * welcome or refusal. Until it completes only tiny frames are accepted.
 *
 * Frames on an established connection (frame.ts): Raft messages, snapshot
 * streams (begin, chunks, end, acks granting credit, done, abort) and
 * request/response pairs. Raft messages and control frames go before
 * snapshot chunks (connection.ts), so heartbeats are not starved.
 *
 * This file composes the parts: limits.ts (every bound), links.ts (the peer
 * links: dialing, accepting, reconnect backoff), handshake.ts (hello checks
 * and timers), connection.ts (one socket's bounded send lanes),
 * snapshot-transfer.ts and snapshot-stream.ts (snapshot streams and their
 * credit window), requests.ts (request/response correlation), peer.ts and
 * peer-stats.ts (per-peer state and statistics).
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

import { createServer, type Server } from 'node:net';
import type { Logger } from 'pino';
import { assert, fail } from '../raft/assert.js';
import type { Message, SnapshotMessage } from '../raft/messages.js';
import type { NodeId } from '../raft/types.js';
import { RateLimiter } from './backoff.js';
import { decodeMessage, messageBytesEstimate, writeMessage } from './codec.js';
import type { Connection } from './connection.js';
import { DecodeError, TransportError } from './errors.js';
import { FrameType, finishFrameParts, startFrame } from './frame.js';
import { LimitedLog } from './limited-log.js';
import { resolveLimits, type TransportLimits } from './limits.js';
import { PeerLinks } from './links.js';
import type { Peer, PeerAddress, PeerAddresses } from './peer.js';
import { type PeerStats, peerStats } from './peer-stats.js';
import { encodeRequest } from './protocol.js';
import { type RequestServer, requestRefusal, serveRequest } from './requests.js';
import {
  onSnapAbort,
  onSnapAck,
  onSnapBegin,
  onSnapChunk,
  onSnapDone,
  onSnapEnd,
  onSnapStart,
  type SnapshotHandler,
  type SnapshotReceiver,
  transferSnapshot,
} from './snapshot-transfer.js';

/**
 * Entry payloads of at least this many bytes go into an append's frame
 * uncopied: the frame is written as parts (its encoding, each such payload
 * as the log holds it) in one `writev`, and both followers' frames share
 * the payloads. Smaller ones are copied, which costs less than a part.
 * Measured in 6 interleaved pairs of 256 MiB file uploads: 75-91 MB/s
 * against 70-83, the leader's CPU 2.0-2.3 s against 2.2-2.7 (README).
 */
const entryAttachBytesMin = 4096;

export { type TransportLimits, transportLimitsDefault } from './limits.js';
export type { PeerAddress, PeerAddresses } from './peer.js';
export type { PeerStats } from './peer-stats.js';

export interface PeerTransportOptions {
  readonly self: NodeId;
  /** Nodes of other clusters are refused at the handshake. */
  readonly clusterId: string;
  /** Where to listen; port 0 picks a free port (see `start()`'s result). */
  readonly listen: PeerAddress;
  /** Initial address book (this node's own entry, if present, is ignored). Update with `setPeers`. */
  readonly peers: ReadonlyMap<NodeId, PeerAddresses>;
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
   * TransportError. To resume an interrupted transfer of the same snapshot,
   * call `chunks.startAt(bytesKept)` before iterating (the sender then skips
   * them; `chunks.sender` gives its size and checksum to check the result
   * against). Without this callback snapshots are refused.
   */
  readonly onSnapshot?: SnapshotHandler;
  /** Answers a peer's `request()`; a rejection is sent back as a 'remote' error. */
  readonly onRequest?: (from: NodeId, payload: Uint8Array) => Promise<Uint8Array>;
  /**
   * Whether a node that connects to us is a member. Defaults to "is in the
   * address book". Use it to admit members whose address we do not know
   * (we never dial them, they dial us).
   */
  readonly isMember?: (id: NodeId) => boolean;
  /** This node's data-directory incarnation, presented in every handshake ('' if none). */
  readonly incarnation?: string;
  /**
   * The incarnation a peer is known by ('' if unknown). A peer presenting
   * another one is refused (it lost its disk and came back under its old id).
   */
  readonly expectedIncarnation?: (id: NodeId) => string;
  readonly limits?: Partial<TransportLimits>;
  /** For tests: the jitter source. */
  readonly random?: () => number;
}

export class PeerTransport {
  private readonly self: NodeId;
  private readonly limits: TransportLimits;
  private readonly log: LimitedLog;
  private readonly links: PeerLinks;
  private readonly server: Server;
  private readonly unreachableLimiter: RateLimiter;
  private readonly snapshotReceiver: SnapshotReceiver;
  private readonly requestServer: RequestServer;
  private closing: Promise<void> | null = null;
  private nextRequestId = 1;
  private nextStreamId = 1;

  constructor(private readonly options: PeerTransportOptions) {
    this.self = options.self;
    this.limits = resolveLimits(options.limits);
    // The node id once: the caller's logger may carry it already.
    const named = 'node' in options.logger.bindings();
    const logger = options.logger.child(
      named ? { component: 'transport' } : { component: 'transport', node: options.self },
    );
    this.log = new LimitedLog(logger, this.limits.logIntervalMs);
    this.unreachableLimiter = new RateLimiter(this.limits.unreachableIntervalMs);
    this.links = new PeerLinks({
      self: options.self,
      clusterId: options.clusterId,
      limits: this.limits,
      log: this.log,
      random: options.random ?? Math.random,
      isMember: options.isMember,
      incarnation: options.incarnation ?? '',
      expectedIncarnation: options.expectedIncarnation ?? (() => ''),
      onFrame: (peer, conn, type, body) => this.onPeerFrame(peer, conn, type, body),
      onRemoved: (peer) => this.unreachableLimiter.forget(peer),
    });
    this.snapshotReceiver = {
      self: this.self,
      limits: this.limits,
      log: this.log,
      onSnapshot: options.onSnapshot,
    };
    this.requestServer = {
      self: this.self,
      frameBytesMax: this.limits.frameBytesMax,
      incomingRequestsMax: this.limits.incomingRequestsMax,
      handler: options.onRequest,
    };
    this.server = createServer((socket) => this.links.accept(socket));
    this.links.updatePeers(options.peers);
  }

  private get closed(): boolean {
    return this.links.closed;
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
    this.server.on('error', (error) =>
      this.log.logger.error({ err: error }, 'peer listener failed'),
    );
    this.links.dialAll();
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
    const serverClosed = new Promise<void>((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
    const conns = this.links.close();
    await within(this.limits.closeFlushMs, Promise.all(conns.map((c) => c.flushed())));
    for (const conn of conns) conn.destroy();
    await serverClosed;
  }

  // ------------------------------------------------------------ address book

  /**
   * Replaces the address book. New peers are dialed (if we dial them), peers
   * whose address in use is no longer among their addresses are redialed,
   * and peers no longer in the book lose their connection, unless
   * `isMember` still admits them (they may dial us). A peer with several
   * addresses is dialed at the first; each failed dial moves to the next.
   */
  setPeers(book: ReadonlyMap<NodeId, PeerAddresses>): void {
    assert(!this.closed, 'setPeers after close()');
    this.links.updatePeers(book);
    if (this.server.listening) this.links.dialAll();
  }

  // ------------------------------------------------------------ frames

  private onPeerFrame(peer: Peer, conn: Connection, type: number, body: Uint8Array): void {
    switch (type) {
      case FrameType.raft:
        this.onRaftFrame(peer, body);
        return;
      case FrameType.snapBegin:
        onSnapBegin(this.snapshotReceiver, peer, conn, body);
        return;
      case FrameType.snapChunk:
        onSnapChunk(peer, body);
        return;
      case FrameType.snapEnd:
        onSnapEnd(peer, body);
        return;
      case FrameType.snapAbort:
        onSnapAbort(peer, body);
        return;
      case FrameType.snapAck:
        onSnapAck(peer, body);
        return;
      case FrameType.snapDone:
        onSnapDone(peer, body);
        return;
      case FrameType.snapStart:
        onSnapStart(peer, body);
        return;
      case FrameType.request:
        serveRequest(this.requestServer, peer, conn, body);
        return;
      case FrameType.response:
        peer.requests.onResponse(peer.id, body);
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
      if (m.from !== this.self) fail(`send() of a message from ${m.from}, not from ${this.self}`);
      assert(m.type !== 'snapshot', 'snapshot messages go through sendSnapshot()');
      if (this.closed) return;
      const peer = this.links.get(m.to);
      const conn = peer?.conn ?? null;
      if (peer === undefined || conn === null) {
        if (peer !== undefined) peer.totals.framesDropped++;
        this.reportUnreachable(m.to);
        continue;
      }
      const w = startFrame(
        FrameType.raft,
        messageBytesEstimate(m, entryAttachBytesMin),
        entryAttachBytesMin,
      );
      writeMessage(w, m);
      if (!conn.enqueue(finishFrameParts(w, this.limits.frameBytesMax), 'urgent', true)) {
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
      this.log.limited(
        `${peer.id}:misaddressed`,
        'warn',
        `dropped a ${m.type} message from ${m.from} to ${m.to} that arrived on the connection of ${peer.id}`,
      );
      return;
    }
    if (m.type === 'snapshot') {
      this.log.limited(
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
   * `chunks`. The receiver is told when the sender gives up. If `chunks` is
   * a SeekableSnapshotSource (size, checksum, `readFrom`), the receiver may
   * resume a transfer of it that broke: only the bytes it lacks are sent.
   */
  async sendSnapshot(
    to: NodeId,
    message: SnapshotMessage,
    chunks: AsyncIterable<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<void> {
    assert(message.from === this.self && message.to === to, 'a snapshot message from us to `to`');
    if (this.closed) throw new TransportError('closed', to, 'the transport is closed');
    const peer = this.links.get(to);
    const conn = peer?.conn ?? null;
    if (peer === undefined || conn === null) {
      throw new TransportError('unreachable', to, `cannot send a snapshot to ${to}: not connected`);
    }
    if (peer.outgoing !== null) {
      throw new TransportError('busy', to, `a snapshot to ${to} is already streaming; wait for it`);
    }
    signal?.throwIfAborted();
    const streamId = this.nextStreamId++;
    await transferSnapshot(this.limits, this.log, peer, conn, streamId, message, chunks, signal);
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
    const peer = this.links.get(to);
    const conn = peer?.conn ?? null;
    if (peer === undefined || conn === null) {
      return Promise.reject(
        new TransportError('unreachable', to, `cannot send a request to ${to}: not connected`),
      );
    }
    const refusal = requestRefusal(to, peer.requests.size, payload.byteLength, this.limits);
    if (refusal !== null) return Promise.reject(refusal);
    const id = this.nextRequestId++;
    return peer.requests.add(
      id,
      timeoutMs,
      () =>
        new TransportError(
          'timeout',
          to,
          `request to ${to} got no response within ${timeoutMs} ms`,
        ),
      () => {
        conn.enqueue(encodeRequest(id, payload, this.limits.frameBytesMax), 'urgent', false);
      },
    );
  }

  /**
   * Drops the current connection to `peer` (fault injection, or to force a
   * fresh handshake). Work in flight on it fails with 'disconnected'; the
   * dialing side reconnects with backoff as after any other loss.
   */
  disconnect(peer: NodeId): void {
    this.links.disconnect(peer);
  }

  // ------------------------------------------------------------ metrics

  /** Whether an authenticated connection to `peer` is up. */
  isConnected(peer: NodeId): boolean {
    return this.links.get(peer)?.conn != null;
  }

  /** A plain object per peer, for metrics and tests. */
  stats(): Record<string, PeerStats> {
    const out: Record<string, PeerStats> = {};
    for (const peer of this.links.all()) out[peer.id] = peerStats(peer);
    return out;
  }
}

/** Resolves when `promise` does or after `ms`, whichever is first; leaves no timer behind. */
async function within(ms: number, promise: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  await Promise.race([promise, timeout]);
  clearTimeout(timer);
}
