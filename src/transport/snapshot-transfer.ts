/**
 * Snapshot streams over a peer link: the frames of both sides (begin,
 * chunks, end, acks granting credit, done, abort) on top of the credit
 * window of snapshot-stream.ts.
 *
 * Sender: `transferSnapshot` sends begin, then chunks of at most
 * snapshotChunkBytesMax within the credit granted, then end, and waits for
 * done; on failure it tells the receiver with abort. Receiver: `onSnapBegin`
 * hands an IncomingSnapshot to `onSnapshot` and answers done with its
 * outcome. Invariants: at most one stream each way per peer (`peer.outgoing`,
 * `peer.incoming`); the sender never has more than snapshotWindowBytes
 * unconsumed at the receiver, and a receiver sent more than it granted
 * closes the connection (DecodeError); acks, done and abort go only on the
 * connection their stream belongs to.
 */

import type { SnapshotMessage } from '../raft/messages.js';
import type { NodeId } from '../raft/types.js';
import type { Connection } from './connection.js';
import { DecodeError, TransportError } from './errors.js';
import { FrameType } from './frame.js';
import type { Peer } from './peer.js';
import {
  decodeSnapBegin,
  decodeSnapChunk,
  decodeStreamNumber,
  decodeStreamResult,
  encodeSnapBegin,
  encodeSnapChunk,
  encodeStreamNumber,
  encodeStreamResult,
} from './protocol.js';
import { IncomingSnapshot, OutgoingSnapshot } from './snapshot-stream.js';

export interface SnapshotLimits {
  readonly frameBytesMax: number;
  readonly snapshotChunkBytesMax: number;
  readonly snapshotWindowBytes: number;
}

export type SnapshotHandler = (
  from: NodeId,
  message: SnapshotMessage,
  chunks: AsyncIterable<Uint8Array>,
) => Promise<void>;

// ------------------------------------------------------------ sender

/**
 * Streams `message` and `chunks` to `peer` on `conn` as stream `streamId`;
 * resolves once the receiver installed it. The caller checked that `conn` is
 * the peer's connection and that no other snapshot streams to it.
 */
export async function transferSnapshot(
  limits: SnapshotLimits,
  peer: Peer,
  conn: Connection,
  streamId: number,
  message: SnapshotMessage,
  chunks: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const to = peer.id;
  const stream = new OutgoingSnapshot(streamId, limits.snapshotWindowBytes);
  peer.outgoing = stream;
  const onAbort = () =>
    stream.fail(new TransportError('aborted', to, `snapshot to ${to} aborted by the caller`));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await streamSnapshot(limits, conn, stream, message, chunks);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (peer.conn === conn) {
      conn.enqueue(
        encodeStreamResult(FrameType.snapAbort, stream.streamId, reason, limits.frameBytesMax),
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

async function streamSnapshot(
  limits: SnapshotLimits,
  conn: Connection,
  stream: OutgoingSnapshot,
  message: SnapshotMessage,
  chunks: AsyncIterable<Uint8Array>,
): Promise<void> {
  const frameBytesMax = limits.frameBytesMax;
  const to = message.to;
  const lost = () => new TransportError('disconnected', to, `connection to ${to} lost`);
  if (!conn.enqueue(encodeSnapBegin(stream.streamId, message, frameBytesMax), 'bulk', false)) {
    throw lost();
  }
  for await (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const wantBytes = Math.min(chunk.byteLength - offset, limits.snapshotChunkBytesMax);
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

/** The receiver granted credit. */
export function onSnapAck(peer: Peer, body: Uint8Array): void {
  const { streamId, value } = decodeStreamNumber(body);
  if (peer.outgoing?.streamId === streamId) peer.outgoing.grant(value);
}

/** The receiver reports the install's outcome. */
export function onSnapDone(peer: Peer, body: Uint8Array): void {
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

// ------------------------------------------------------------ receiver

/** What the receiving side needs of the transport. */
export interface SnapshotReceiver {
  readonly self: NodeId;
  readonly limits: SnapshotLimits;
  readonly onSnapshot: SnapshotHandler | undefined;
}

export function onSnapBegin(
  receiver: SnapshotReceiver,
  peer: Peer,
  conn: Connection,
  body: Uint8Array,
): void {
  const { self, limits } = receiver;
  const { streamId, message } = decodeSnapBegin(body);
  const refuse = (why: string) =>
    conn.enqueue(
      encodeStreamResult(FrameType.snapDone, streamId, why, limits.frameBytesMax),
      'urgent',
      false,
    );
  const onSnapshot = receiver.onSnapshot;
  if (message.from !== peer.id || message.to !== self) {
    refuse(
      `snapshot message from ${message.from} to ${message.to} on the connection of ${peer.id} to ${self}`,
    );
    return;
  }
  if (onSnapshot === undefined) {
    refuse(`${self} does not accept snapshots`);
    return;
  }
  if (peer.incoming.size > 0) {
    refuse(`${self} is already receiving a snapshot from ${peer.id}`);
    return;
  }
  const window = limits.snapshotWindowBytes;
  const ack = (bytes: number) => {
    if (peer.conn !== conn) return;
    conn.enqueue(
      encodeStreamNumber(FrameType.snapAck, streamId, bytes, limits.frameBytesMax),
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
      encodeStreamResult(FrameType.snapDone, streamId, error, limits.frameBytesMax),
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

export function onSnapChunk(peer: Peer, body: Uint8Array): void {
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

export function onSnapEnd(peer: Peer, body: Uint8Array): void {
  peer.incoming.get(decodeStreamNumber(body).streamId)?.end();
}

export function onSnapAbort(peer: Peer, body: Uint8Array): void {
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
