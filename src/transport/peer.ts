/**
 * The state the transport keeps for one peer: its address, its connection
 * (authenticated, or being dialed), the reconnect state, and the work in
 * flight on the connection (requests and snapshot streams).
 *
 * Invariants: `conn` is authenticated, `dialing` is not; at most one
 * outgoing snapshot stream at a time; work in flight belongs to `conn` and
 * is failed (`failPeerWork`) when `conn` goes away.
 */

import { assert } from '../raft/assert.js';
import type { NodeId } from '../raft/types.js';
import type { Connection, ConnectionCounters } from './connection.js';
import type { TransportError } from './errors.js';
import { PendingRequests } from './requests.js';
import type { IncomingSnapshot, OutgoingSnapshot } from './snapshot-stream.js';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * An entry of the address book: a peer's address, or the addresses it may
 * be at, in order of preference (its registered one, then the configured
 * one). A dial that fails moves on to the next, so a stale address cannot
 * keep a peer unreachable while another one it is known by works.
 */
export type PeerAddresses = PeerAddress | readonly PeerAddress[];

/** The distinct addresses of an address-book entry, in order; at least one. */
export function candidatesOf(entry: PeerAddresses): PeerAddress[] {
  const list: readonly PeerAddress[] = 'host' in entry ? [entry] : entry;
  const distinct: PeerAddress[] = [];
  for (const address of list) {
    if (!distinct.some((known) => sameAddress(known, address))) {
      distinct.push({ host: address.host, port: address.port });
    }
  }
  assert(distinct.length > 0, 'an address-book entry has an address');
  return distinct;
}

export function sameAddress(a: PeerAddress, b: PeerAddress): boolean {
  return a.host === b.host && a.port === b.port;
}

export interface Peer {
  readonly id: NodeId;
  /** The address dialed (or connected to); one of `candidates`, or null if none is known. */
  address: PeerAddress | null;
  /** Where the peer may be, in order of preference; empty if unknown. */
  candidates: readonly PeerAddress[];
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
  readonly requests: PendingRequests;
  incomingRequests: number;
  outgoing: OutgoingSnapshot | null;
  readonly incoming: Map<number, IncomingSnapshot>;
}

/**
 * The peer refused us: from now on the backoff is the refused one, and it
 * starts from its minimum. Failures counted while the peer was down (an
 * address that did not answer yet) must not carry over, or the first retry
 * after a refusal waits the full maximum: a node started with --join
 * refuses the leader until it learns the members, then the leader waited
 * up to 30 s to connect.
 */
export function markRefused(peer: Peer): void {
  if (!peer.refused) peer.failures = 0;
  peer.refused = true;
}

export function newPeer(id: NodeId): Peer {
  return {
    id,
    address: null,
    candidates: [],
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
    requests: new PendingRequests(),
    incomingRequests: 0,
    outgoing: null,
    incoming: new Map(),
  };
}

/** Fails every request and snapshot stream in flight with the peer; each gets its own error. */
export function failPeerWork(peer: Peer, error: (peer: NodeId) => TransportError): void {
  peer.requests.failAll(() => error(peer.id));
  peer.outgoing?.fail(error(peer.id));
  for (const stream of peer.incoming.values()) stream.fail(error(peer.id));
  peer.incoming.clear();
}

export function formatAddress(address: PeerAddress | null): string {
  return address === null ? 'an unknown address' : `${address.host}:${address.port}`;
}
