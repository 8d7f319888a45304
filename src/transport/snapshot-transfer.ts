/**
 * Snapshot streams over a peer link: the frames of both sides (begin,
 * chunks, end, acks granting credit, done, abort) on top of the credit
 * window of snapshot-stream.ts.
 *
 * Sender: `transferSnapshot` sends begin (with the data's size and checksum
 * when the source is a SeekableSnapshotSource), waits for start, then sends
 * chunks of at most snapshotChunkBytesMax within the credit granted from the
 * offset start named, then end, and waits for done; on failure it tells the
 * receiver with abort. Receiver: `onSnapBegin` hands an IncomingSnapshot to
 * `onSnapshot`; its consumer starts it (at the offset of the bytes it kept
 * of an interrupted transfer of the same snapshot, else 0), which sends
 * start with the initial window; done answers with the outcome.
 *
 * Resume: the receiver's storage keeps what it wrote of a stream that broke,
 * and checks the whole resulting file against the size and checksum of
 * begin, so a resumed file that differs from the sender's is never
 * installed. A sender whose source cannot seek (no size) is always sent
 * from 0. Invariants: at most one stream each way per peer (`peer.outgoing`,
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
import type { LimitedLog } from './limited-log.js';
import type { Peer } from './peer.js';
import {
  decodeSnapBegin,
  decodeSnapChunk,
  decodeSnapStart,
  decodeStreamNumber,
  decodeStreamResult,
  encodeSnapBegin,
  encodeSnapChunk,
  encodeSnapStart,
  encodeStreamNumber,
  encodeStreamResult,
  type SnapshotSourceInfo,
} from './protocol.js';
import { IncomingSnapshot, OutgoingSnapshot } from './snapshot-stream.js';

export interface SnapshotLimits {
  readonly frameBytesMax: number;
  readonly snapshotChunkBytesMax: number;
  readonly snapshotWindowBytes: number;
}

/**
 * What `onSnapshot` gets: the chunks, plus the sender's size and checksum
 * (`sender`) and `startAt(offset)` to skip bytes kept of an interrupted
 * transfer of the same snapshot (see IncomingSnapshot).
 */
export interface IncomingSnapshotData extends AsyncIterable<Uint8Array> {
  readonly sender: SnapshotSourceInfo | null;
  startAt(offset: number): void;
}

export type SnapshotHandler = (
  from: NodeId,
  message: SnapshotMessage,
  chunks: IncomingSnapshotData,
) => Promise<void>;

/**
 * A snapshot source that knows its size and checksum and can be read from
 * an offset without reading what comes before (storage's SnapshotReader).
 * A plain AsyncIterable is always sent whole.
 */
export interface SeekableSnapshotSource extends AsyncIterable<Uint8Array> {
  readonly dataBytes: number;
  /** CRC-32 (IEEE) of all `dataBytes` (protocol 4; CRC32C in 3). */
  readonly dataCrc: number;
  /** The data from `offsetBytes` on; used instead of iterating the source itself. */
  readFrom(offsetBytes: number): AsyncIterable<Uint8Array>;
}

function asSeekable(chunks: AsyncIterable<Uint8Array>): SeekableSnapshotSource | null {
  const c = chunks as Partial<SeekableSnapshotSource>;
  return typeof c.readFrom === 'function' &&
    typeof c.dataBytes === 'number' &&
    typeof c.dataCrc === 'number'
    ? (chunks as SeekableSnapshotSource)
    : null;
}

function snapshotName(message: SnapshotMessage): string {
  return `${message.snapshot.index}/${message.snapshot.term}`;
}

// ------------------------------------------------------------ sender

/**
 * Streams `message` and `chunks` to `peer` on `conn` as stream `streamId`;
 * resolves once the receiver installed it. The caller checked that `conn` is
 * the peer's connection and that no other snapshot streams to it.
 */
export async function transferSnapshot(
  limits: SnapshotLimits,
  log: LimitedLog,
  peer: Peer,
  conn: Connection,
  streamId: number,
  message: SnapshotMessage,
  chunks: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const to = peer.id;
  const seekable = asSeekable(chunks);
  const stream = new OutgoingSnapshot(
    streamId,
    limits.snapshotWindowBytes,
    seekable?.dataBytes ?? null,
  );
  peer.outgoing = stream;
  const onAbort = () =>
    stream.fail(new TransportError('aborted', to, `snapshot to ${to} aborted by the caller`));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await streamSnapshot(limits, log, conn, stream, message, chunks, seekable);
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
  log: LimitedLog,
  conn: Connection,
  stream: OutgoingSnapshot,
  message: SnapshotMessage,
  chunks: AsyncIterable<Uint8Array>,
  seekable: SeekableSnapshotSource | null,
): Promise<void> {
  const frameBytesMax = limits.frameBytesMax;
  const to = message.to;
  const lost = () => new TransportError('disconnected', to, `connection to ${to} lost`);
  const source: SnapshotSourceInfo | null =
    seekable === null ? null : { dataBytes: seekable.dataBytes, dataCrc: seekable.dataCrc };
  const begin = encodeSnapBegin(stream.streamId, message, source, frameBytesMax);
  if (!conn.enqueue(begin, 'bulk', false)) throw lost();
  const offset = await stream.waitForStart();
  // The receiver finished without wanting any bytes.
  if (offset === null) return await stream.done;
  let data = chunks;
  // `start` accepts an offset above 0 only for a stream announced with its size.
  if (offset > 0 && seekable !== null) {
    log.info(
      `resuming snapshot ${snapshotName(message)} to ${to} at byte ${offset} of ${seekable.dataBytes}`,
    );
    data = seekable.readFrom(offset);
  }
  for await (const chunk of data) {
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

/** The receiver started the stream: the offset to send from and the initial credit. */
export function onSnapStart(peer: Peer, body: Uint8Array): void {
  const { streamId, offset, creditBytes } = decodeSnapStart(body);
  const stream = peer.outgoing;
  if (stream?.streamId !== streamId) return;
  const violation = stream.start(offset, creditBytes);
  if (violation !== null) throw new DecodeError('snapStart', 0, `${peer.id} ${violation}`);
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
  readonly log: LimitedLog;
  readonly onSnapshot: SnapshotHandler | undefined;
}

export function onSnapBegin(
  receiver: SnapshotReceiver,
  peer: Peer,
  conn: Connection,
  body: Uint8Array,
): void {
  const { self, limits, log } = receiver;
  const { streamId, message, source } = decodeSnapBegin(body);
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
  // The initial window goes with start, once the consumer knows where it resumes.
  const start = (offset: number) => {
    if (offset > 0) {
      log.info(
        `resuming snapshot ${snapshotName(message)} from ${peer.id} at byte ${offset} of ` +
          `${source?.dataBytes ?? 0}`,
      );
    }
    if (peer.conn !== conn) return;
    conn.enqueue(encodeSnapStart(streamId, offset, window, limits.frameBytesMax), 'urgent', false);
  };
  const stream = new IncomingSnapshot(streamId, window, source, start, ack);
  peer.incoming.set(streamId, stream);
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
