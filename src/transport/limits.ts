/**
 * Every bound of the peer transport and their defaults, in one place.
 *
 * Invariants (asserted by `resolveLimits`): a snapshot chunk plus its frame
 * overhead fits in a frame, the snapshot window holds at least one chunk,
 * and the reconnect backoff range is ordered.
 */

import { assert } from '../raft/assert.js';
import type { ConnectionLimits } from './connection.js';
import { frameBytesMaxDefault } from './frame.js';

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

/** The defaults overridden by `overrides`, checked for consistency. */
export function resolveLimits(overrides: Partial<TransportLimits> | undefined): TransportLimits {
  const l = { ...transportLimitsDefault, ...overrides };
  assert(l.snapshotChunkBytesMax + 64 <= l.frameBytesMax, 'a snapshot chunk fits in a frame');
  assert(l.snapshotWindowBytes >= l.snapshotChunkBytesMax, 'the window holds a chunk');
  assert(l.backoffMsMin <= l.backoffMsMax, 'backoffMsMin <= backoffMsMax');
  return l;
}
