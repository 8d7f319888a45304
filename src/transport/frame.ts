/**
 * Length-prefixed frames on a byte stream.
 *
 * | bytes | field                                                |
 * |-------|------------------------------------------------------|
 * | 4     | length, big-endian: bytes that follow (type + body)  |
 * | 1     | frame type (`FrameType`)                             |
 * | n     | body                                                 |
 *
 * The reader enforces a maximum length before buffering a frame, so a peer
 * cannot make us allocate more than `frameBytesMax` by announcing a length.
 */

import { assert, fail } from '../raft/assert.js';
import { ByteWriter } from './bytes.js';
import { FrameError } from './errors.js';

export const frameHeaderBytes = 5;
/** Default limit on a frame's length field: 64 MiB of payload plus room for headers. */
export const frameBytesMaxDefault = 64 * 1024 * 1024 + 64 * 1024;

export const FrameType = {
  /** Dialer → acceptor: magic, version, cluster id, sender id, intended receiver id. */
  hello: 1,
  /** Acceptor → dialer: handshake accepted. */
  welcome: 2,
  /** Either side: handshake refused, with a reason code and text; the sender then closes. */
  refuse: 3,
  /** One encoded Raft message. */
  raft: 4,
  /**
   * Snapshot stream start: stream id + the snapshot message + the sender's
   * data size and checksum when it knows them (protocol 3).
   */
  snapBegin: 5,
  /** Snapshot bytes: stream id + data. */
  snapChunk: 6,
  /** Sender has sent every chunk: stream id. */
  snapEnd: 7,
  /** Receiver consumed bytes (window credit): stream id + bytes. */
  snapAck: 8,
  /** Receiver finished installing (ok or error text): stream id + result. */
  snapDone: 9,
  /** Sender gave up (aborted or failed reading its chunks): stream id + reason. */
  snapAbort: 10,
  /** Generic request: id + payload. */
  request: 11,
  /** Response to a request: id + ok flag + payload or error text. */
  response: 12,
  /**
   * Receiver → sender, once per stream before any snapAck (protocol 3): stream
   * id + the byte offset to send from (what it already holds of an
   * interrupted transfer, else 0) + the initial credit.
   */
  snapStart: 13,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const frameTypeMax = 13;

export function isFrameType(code: number): code is FrameType {
  return code >= 1 && code <= frameTypeMax;
}

/**
 * A frame to send: its bytes, or its parts to be written back to back (a
 * frame whose large blobs were attached rather than copied; see ByteWriter).
 */
export type OutgoingFrame = Uint8Array | readonly Uint8Array[];

/** Bytes of an outgoing frame. */
export function outgoingBytes(frame: OutgoingFrame): number {
  if (frame instanceof Uint8Array) return frame.byteLength;
  let bytes = 0;
  for (const part of frame) bytes += part.byteLength;
  return bytes;
}

/**
 * Starts a frame in a writer: the length is patched in by `finishFrame`.
 * Blobs of `attachBytesMin` bytes or more are attached, not copied; the
 * frame is then written from its parts (`finishFrameParts`).
 */
export function startFrame(
  type: FrameType,
  bodyBytesEstimate: number,
  attachBytesMin = Number.POSITIVE_INFINITY,
): ByteWriter {
  const w = new ByteWriter(frameHeaderBytes + bodyBytesEstimate, attachBytesMin);
  w.u32(0);
  w.u8(type);
  return w;
}

/** Patches the length and returns the frame; asserts it is within `frameBytesMax`. */
export function finishFrame(w: ByteWriter, frameBytesMax: number): Uint8Array {
  patchFrameLength(w, frameBytesMax);
  return w.finish();
}

/** `finishFrame` for a writer that may have attached blobs. */
export function finishFrameParts(w: ByteWriter, frameBytesMax: number): OutgoingFrame {
  patchFrameLength(w, frameBytesMax);
  return w.finishParts();
}

function patchFrameLength(w: ByteWriter, frameBytesMax: number): void {
  const lengthBytes = w.outputBytes - 4;
  assert(lengthBytes >= 1, 'a frame holds at least its type');
  // A frame over the peer's limit would make it close the connection and we
  // would retry forever; the Raft config's byte limits must sit below it.
  if (lengthBytes > frameBytesMax) {
    fail(
      `frame of ${lengthBytes} bytes exceeds frameBytesMax ${frameBytesMax}; lower the Raft byte limits`,
    );
  }
  w.patchU32(0, lengthBytes);
}

export function encodeFrame(type: FrameType, body: Uint8Array, frameBytesMax: number): Uint8Array {
  const w = startFrame(type, body.byteLength);
  w.bytes(body);
  return finishFrame(w, frameBytesMax);
}

export interface Frame {
  /** The raw type byte; the caller checks it with `isFrameType`. */
  readonly type: number;
  /**
   * The body. Either a view into one received chunk or a fresh buffer
   * assembled from several; never reused by the reader, so views of it
   * (decoded entry data) stay valid.
   */
  readonly body: Uint8Array;
}

/**
 * Incremental frame reader. Chunks are kept as received; a frame that lies
 * inside one chunk is returned as a view of it (no copy), a frame spanning
 * chunks is copied once into a buffer of its exact size. Either way each
 * received byte is copied at most once, so the work is linear in the input
 * however the stream is split.
 */
export class FrameReader {
  private readonly chunks: Uint8Array[] = [];
  /** Offset of the first unread byte in chunks[0]. */
  private headOffset = 0;
  /** Invariant: bufferedBytes = sum of chunk lengths - headOffset. */
  private bufferedBytes = 0;

  /** @param frameBytesMax limit on the length field; can be raised after a handshake. */
  constructor(public frameBytesMax: number) {
    assert(frameBytesMax >= 1, 'frameBytesMax >= 1');
  }

  get pendingBytes(): number {
    return this.bufferedBytes;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.byteLength;
  }

  /** The next complete frame, or null until more bytes arrive. Throws FrameError. */
  next(): Frame | null {
    if (this.bufferedBytes < frameHeaderBytes) return null;
    const header = this.peek(frameHeaderBytes);
    const lengthBytes =
      (header[0] ?? 0) * 0x1000000 +
      (header[1] ?? 0) * 0x10000 +
      (header[2] ?? 0) * 0x100 +
      (header[3] ?? 0);
    if (lengthBytes === 0 || lengthBytes > this.frameBytesMax) {
      throw new FrameError(lengthBytes, this.frameBytesMax);
    }
    const totalBytes = 4 + lengthBytes;
    if (this.bufferedBytes < totalBytes) return null;
    const frame = this.take(totalBytes);
    return { type: frame[4] ?? 0, body: frame.subarray(frameHeaderBytes) };
  }

  /** The first `bytes` buffered bytes, copied only if they span chunks (headers: 5 bytes). */
  private peek(bytes: number): Uint8Array {
    const first = this.chunks[0];
    assert(first !== undefined, 'peek with buffered bytes has a chunk');
    if (first.byteLength - this.headOffset >= bytes) {
      return first.subarray(this.headOffset, this.headOffset + bytes);
    }
    const out = new Uint8Array(bytes);
    this.copyOut(out);
    return out;
  }

  private take(bytes: number): Uint8Array {
    const first = this.chunks[0];
    assert(first !== undefined && this.bufferedBytes >= bytes, 'take within buffered bytes');
    let out: Uint8Array;
    if (first.byteLength - this.headOffset >= bytes) {
      out = first.subarray(this.headOffset, this.headOffset + bytes);
    } else {
      out = new Uint8Array(bytes);
      this.copyOut(out);
    }
    this.consume(bytes);
    return out;
  }

  /** Copies the first out.byteLength buffered bytes into `out`, without consuming them. */
  private copyOut(out: Uint8Array): void {
    let written = 0;
    let offset = this.headOffset;
    for (const chunk of this.chunks) {
      if (written === out.byteLength) break;
      const n = Math.min(chunk.byteLength - offset, out.byteLength - written);
      out.set(chunk.subarray(offset, offset + n), written);
      written += n;
      offset = 0;
    }
    assert(written === out.byteLength, 'copyOut filled the output');
  }

  private consume(bytes: number): void {
    let left = bytes;
    let dropChunks = 0;
    let offset = this.headOffset;
    for (const chunk of this.chunks) {
      const available = chunk.byteLength - offset;
      if (left < available) {
        offset += left;
        left = 0;
        break;
      }
      left -= available;
      dropChunks++;
      offset = 0;
    }
    assert(left === 0, 'consume within buffered bytes');
    // splice is O(chunks), and there are few chunks left after a frame is taken.
    this.chunks.splice(0, dropChunks);
    this.headOffset = offset;
    this.bufferedBytes -= bytes;
  }
}
