/**
 * Typed errors of the transport. A broken invariant of our own is an
 * assertion (src/raft/assert.ts) and crashes the process; everything a peer,
 * the network or the caller can cause is one of these, with a message that
 * says what happened and what to do.
 */

/** Bytes from the network that do not decode as a message of our protocol. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  constructor(
    /** What was being read when the input went wrong, e.g. "append.entries[3].data". */
    readonly field: string,
    /** Byte offset inside the decoded buffer. */
    readonly offset: number,
    readonly reason: string,
  ) {
    super(
      `cannot decode ${field} at byte ${offset}: ${reason}. ` +
        'The peer sent bytes that are not a valid Tandem message: it may run an incompatible ' +
        'version, or the connection is corrupted; the connection is closed and re-established.',
    );
  }
}

/** A frame header announced more bytes than this side accepts, or none at all. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly lengthBytes: number,
    readonly frameBytesMax: number,
  ) {
    super(
      lengthBytes === 0
        ? 'received a frame of length 0 (every frame carries at least its type byte): ' +
            'the peer does not speak this protocol; closing the connection'
        : `received a frame of ${lengthBytes} bytes, more than the limit of ${frameBytesMax} bytes: ` +
            'closing the connection. If the peer is a Tandem node, raise frameBytesMax on this ' +
            'node to at least its largest message (entries are limited by the Raft config)',
    );
  }
}

export type TransportErrorCode =
  /** No authenticated connection to the peer right now (or it is not in the address book). */
  | 'unreachable'
  /** The connection dropped while the operation was in flight. */
  | 'disconnected'
  /** A request got no response in time. */
  | 'timeout'
  /** Too many requests or snapshots in flight to this peer. */
  | 'busy'
  /** The remote handler failed or refused (message carries its reason). */
  | 'remote'
  /** The payload does not fit in one frame (frameBytesMax). */
  | 'tooLarge'
  /** The caller aborted (AbortSignal). */
  | 'aborted'
  /** The transport is closed. */
  | 'closed';

/** An expected failure of a transport operation; `code` says which. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly code: TransportErrorCode,
    readonly peer: string,
    message: string,
  ) {
    super(message);
  }
}
