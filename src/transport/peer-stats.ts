/**
 * Statistics of one peer, for metrics and tests.
 *
 * Invariant: counters never go back. A peer's counters are its current
 * connection's plus `totals` (the connections it had before, and drops while
 * disconnected); `retireCounters` moves a closing connection's counters into
 * the totals and zeroes them, so nothing is counted twice.
 */

import type { ConnectionCounters } from './connection.js';
import type { Peer } from './peer.js';

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

export function peerStats(peer: Peer): PeerStats {
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

/**
 * Adds a closing connection's counters to the peer's totals and zeroes
 * them: anything the connection still counts (frames it discards while
 * closing) is counted from here on in the totals only.
 */
export function retireCounters(totals: ConnectionCounters, counters: ConnectionCounters): void {
  addCounters(totals, counters);
  counters.framesDropped = 0;
  counters.bytesSent = counters.bytesReceived = 0;
  counters.framesSent = counters.framesReceived = 0;
}

function addCounters(into: ConnectionCounters, from: ConnectionCounters): void {
  into.bytesSent += from.bytesSent;
  into.bytesReceived += from.bytesReceived;
  into.framesSent += from.framesSent;
  into.framesReceived += from.framesReceived;
  into.framesDropped += from.framesDropped;
}
