/**
 * The peer links: which connection each peer has, and its lifecycle.
 *
 * One connection per pair of nodes. The node whose id sorts lower dials (and
 * redials with backoff after a failure, longer after a refusal); the other
 * only accepts, checks the hello (handshake.ts) and answers welcome or
 * refusal. A newly authenticated connection from a peer replaces its old one.
 *
 * Invariants: a peer has at most one authenticated connection (`conn`) and
 * at most one dial in progress (`dialing`), and only the dialing side has a
 * reconnect timer; when a connection stops being a peer's, its counters go
 * to the peer's totals and the work in flight on it fails (`detach`); after
 * `close()` nothing is dialed or accepted and no timer is left.
 */

import { connect, type Socket } from 'node:net';
import { assert } from '../raft/assert.js';
import type { NodeId } from '../raft/types.js';
import { type BackoffRange, backoffMs } from './backoff.js';
import { Connection } from './connection.js';
import { DecodeError, TransportError } from './errors.js';
import { FrameType } from './frame.js';
import { checkHello, checkIncarnation, HandshakeTimers } from './handshake.js';
import type { LimitedLog } from './limited-log.js';
import type { TransportLimits } from './limits.js';
import {
  candidatesOf,
  failPeerWork,
  formatAddress,
  markRefused,
  newPeer,
  type Peer,
  type PeerAddress,
  type PeerAddresses,
  sameAddress,
} from './peer.js';
import { retireCounters } from './peer-stats.js';
import {
  decodeHello,
  decodeRefusal,
  decodeWelcome,
  encodeHello,
  encodeRefusal,
  encodeWelcome,
  type Hello,
  handshakeFrameBytesMax,
  protocolVersion,
  type Refusal,
} from './protocol.js';

export interface PeerLinksOptions {
  readonly self: NodeId;
  readonly clusterId: string;
  readonly limits: TransportLimits;
  readonly log: LimitedLog;
  readonly random: () => number;
  /** Whether a node that connects to us is a member; defaults to "is in the address book". */
  readonly isMember: ((id: NodeId) => boolean) | undefined;
  /** This node's data-directory incarnation, sent in the handshake. */
  readonly incarnation: string;
  /** The incarnation a peer is known by ('' if unknown: any is accepted). */
  readonly expectedIncarnation: (id: NodeId) => string;
  /** A frame on a peer's authenticated connection. May throw DecodeError to close it. */
  readonly onFrame: (peer: Peer, conn: Connection, type: number, body: Uint8Array) => void;
  /** A peer left the address book (after its connection was closed). */
  readonly onRemoved: (peer: NodeId) => void;
}

/** The reconnect delays after a failure: longer ones once the peer refused us. */
export function reconnectBackoff(limits: TransportLimits, refused: boolean): BackoffRange {
  return refused
    ? { msMin: limits.refusedBackoffMsMin, msMax: limits.refusedBackoffMsMax }
    : { msMin: limits.backoffMsMin, msMax: limits.backoffMsMax };
}

export class PeerLinks {
  private readonly self: NodeId;
  private readonly limits: TransportLimits;
  private readonly log: LimitedLog;
  private readonly peers = new Map<NodeId, Peer>();
  private readonly handshakes: HandshakeTimers;
  private closedFlag = false;

  constructor(private readonly options: PeerLinksOptions) {
    this.self = options.self;
    this.limits = options.limits;
    this.log = options.log;
    this.handshakes = new HandshakeTimers(options.limits.handshakeTimeoutMs);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  get(id: NodeId): Peer | undefined {
    return this.peers.get(id);
  }

  all(): IterableIterator<Peer> {
    return this.peers.values();
  }

  /**
   * Stops everything: no more dialing or accepting, pending handshakes and
   * dials destroyed, work in flight failed with 'closed'. Returns the
   * authenticated connections, for the caller to flush and destroy.
   */
  close(): Connection[] {
    this.closedFlag = true;
    this.handshakes.destroyAll();
    const conns: Connection[] = [];
    for (const peer of this.peers.values()) {
      this.clearReconnect(peer);
      peer.dialing?.destroy();
      failPeerWork(peer, (p) => new TransportError('closed', p, 'the transport is closed'));
      if (peer.conn !== null) conns.push(peer.conn);
    }
    return conns;
  }

  /** Drops `id`'s authenticated connection, if any. */
  disconnect(id: NodeId): void {
    const p = this.peers.get(id);
    if (p?.conn != null) p.conn.destroy(new Error('disconnected on request'));
  }

  // ------------------------------------------------------------ address book

  /** Applies a new address book; see PeerTransport.setPeers. Dials nothing: see `dialAll`. */
  updatePeers(book: ReadonlyMap<NodeId, PeerAddresses>): void {
    for (const [id, entry] of book) {
      if (id === this.self) continue;
      const peer = this.peerFor(id);
      const candidates = candidatesOf(entry);
      const current = peer.address;
      // The address in use stays while it is still a candidate: a working
      // connection is not dropped because the preference changed.
      const kept = current !== null && candidates.some((c) => sameAddress(c, current));
      peer.candidates = candidates;
      peer.address = kept ? current : (candidates[0] as PeerAddress);
      if (current !== null && !kept && peer.dialer) this.redial(peer, 'its address changed');
    }
    for (const peer of [...this.peers.values()]) {
      if (book.has(peer.id)) continue;
      if (this.options.isMember?.(peer.id) === true) {
        peer.address = null;
        peer.candidates = [];
        continue;
      }
      this.removePeer(peer);
    }
  }

  /** Dials every peer we dial and have no connection or dial or reconnect timer for. */
  dialAll(): void {
    for (const peer of this.peers.values()) this.maybeDial(peer);
  }

  private peerFor(id: NodeId): Peer {
    let peer = this.peers.get(id);
    if (peer === undefined) {
      peer = newPeer(id);
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
    this.options.onRemoved(peer.id);
  }

  private isMember(id: NodeId): boolean {
    return this.options.isMember?.(id) ?? this.peers.get(id)?.address != null;
  }

  // ------------------------------------------------------------ dialing

  /** We dial peers whose id sorts after ours and whose address we know. */
  private shouldDial(peer: Peer): boolean {
    return this.self < peer.id && peer.address !== null && !this.closedFlag;
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
    this.handshakes.start(conn);
    const hello: Hello = {
      version: protocolVersion,
      clusterId: this.options.clusterId,
      from: this.self,
      to: peer.id,
      incarnation: this.options.incarnation,
    };
    conn.enqueue(encodeHello(hello, handshakeFrameBytesMax), 'urgent', false);
  }

  private onDialerFrame(peer: Peer, conn: Connection, type: number, body: Uint8Array): void {
    if (peer.conn === conn) {
      this.options.onFrame(peer, conn, type, body);
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
      this.log.limited(
        `${peer.id}:wrong-node`,
        'warn',
        `the node at ${formatAddress(peer.address)} is ${welcome.self} (protocol ${welcome.version}), ` +
          `not ${peer.id} (protocol ${protocolVersion}): check the address book`,
      );
      conn.destroy();
      return;
    }
    const replaced = checkIncarnation(this.options, peer.id, welcome.incarnation);
    if (replaced !== null) {
      markRefused(peer); // back off as after a refusal
      this.log.limited(`${peer.id}:incarnation`, 'error', `not connecting: ${replaced}`);
      conn.destroy();
      return;
    }
    peer.dialing = null;
    this.establish(peer, conn, true);
  }

  private onRefused(peer: Peer, conn: Connection, refusal: Refusal): void {
    markRefused(peer);
    this.log.limited(
      `${peer.id}:refused`,
      'error',
      `${peer.id} at ${formatAddress(peer.address)} refused our connection (${refusal.code}): ` +
        `${refusal.reason}; retrying with a longer backoff`,
    );
    conn.destroy();
  }

  private onDialerClose(peer: Peer, conn: Connection, error: Error | null): void {
    this.handshakes.clear(conn);
    if (peer.dialing === conn) {
      peer.dialing = null;
      const failed = peer.address;
      this.tryNextCandidate(peer);
      if (error !== null && !this.closedFlag) {
        const next = peer.address === failed ? '' : `; trying ${formatAddress(peer.address)} next`;
        this.log.limited(
          `${peer.id}:dial`,
          'warn',
          `cannot connect to ${peer.id} at ${formatAddress(failed)}: ${error.message}${next}`,
        );
      }
    } else if (peer.conn === conn) {
      this.onEstablishedClose(peer, conn, error);
    }
    this.scheduleReconnect(peer);
  }

  /** After a failed dial, the next attempt goes to the peer's next address, if it has several. */
  private tryNextCandidate(peer: Peer): void {
    const { address, candidates } = peer;
    if (address === null || candidates.length < 2) return;
    const at = candidates.findIndex((c) => sameAddress(c, address));
    peer.address = candidates[(at + 1) % candidates.length] as PeerAddress;
  }

  private scheduleReconnect(peer: Peer): void {
    if (!this.shouldDial(peer) || this.peers.get(peer.id) !== peer) return;
    if (peer.conn !== null || peer.dialing !== null || peer.reconnectTimer !== null) return;
    const range = reconnectBackoff(this.limits, peer.refused);
    const delayMs = backoffMs(range, peer.failures, this.options.random);
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

  /** A connection to our listener: handshake first, then the peer's frames. */
  accept(socket: Socket): void {
    if (this.closedFlag || this.handshakes.size >= this.limits.handshakesPendingMax) {
      socket.destroy();
      return;
    }
    let peer: Peer | null = null;
    const conn = new Connection(socket, handshakeFrameBytesMax, this.limits, {
      onFrame: (type, body) => {
        if (peer !== null) this.options.onFrame(peer, conn, type, body);
        else peer = this.onHello(conn, type, body);
      },
      onClose: (error) => {
        this.handshakes.clear(conn);
        if (peer !== null && peer.conn === conn) this.onEstablishedClose(peer, conn, error);
      },
    });
    this.handshakes.start(conn);
  }

  /** Checks the hello; returns the peer if accepted, null after refusing. */
  private onHello(conn: Connection, type: number, body: Uint8Array): Peer | null {
    if (type !== FrameType.hello) {
      throw new DecodeError('handshake', 0, `expected hello, got frame type ${type}`);
    }
    const hello = decodeHello(body);
    const refusal = checkHello(
      {
        self: this.self,
        clusterId: this.options.clusterId,
        isMember: (id) => this.isMember(id),
        expectedIncarnation: this.options.expectedIncarnation,
      },
      hello,
    );
    if (refusal !== null) {
      this.log.limited(
        `${hello.from}:${refusal.code}`,
        'error',
        `refused connection from ${hello.from} at ${formatAddress(remoteOf(conn.socket))}: ${refusal.reason}`,
      );
      this.handshakes.clear(conn);
      conn.enqueue(encodeRefusal(refusal, handshakeFrameBytesMax), 'urgent', false);
      conn.endAfterFlush();
      // If the dialer never closes its side, the handshake-sized limit and this timer bound it.
      this.handshakes.start(conn);
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
    const welcome = {
      version: protocolVersion,
      self: this.self,
      incarnation: this.options.incarnation,
    };
    conn.enqueue(encodeWelcome(welcome, handshakeFrameBytesMax), 'urgent', false);
    this.establish(peer, conn, false);
    return peer;
  }

  // ------------------------------------------------------------ established connections

  private establish(peer: Peer, conn: Connection, dialer: boolean): void {
    this.handshakes.clear(conn);
    conn.setFrameBytesMax(this.limits.frameBytesMax);
    peer.conn = conn;
    peer.dialer = dialer;
    peer.failures = 0;
    peer.refused = false;
    if (peer.everConnected) peer.reconnects++;
    peer.everConnected = true;
    this.log.forget(`${peer.id}:dial`);
    this.log.info(
      `${dialer ? 'connected to' : 'accepted connection from'} ${peer.id} at ${formatAddress(remoteOf(conn.socket))}`,
    );
  }

  private onEstablishedClose(peer: Peer, conn: Connection, error: Error | null): void {
    if (!this.closedFlag) {
      const why = error === null ? 'closed' : error.message;
      this.log.limited(`${peer.id}:lost`, 'warn', `connection to ${peer.id} lost: ${why}`);
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
    retireCounters(peer.totals, conn.counters);
    failPeerWork(peer, error);
    conn.destroy();
  }
}

function remoteOf(socket: Socket): PeerAddress | null {
  const { remoteAddress, remotePort } = socket;
  return remoteAddress === undefined || remotePort === undefined
    ? null
    : { host: remoteAddress, port: remotePort };
}
