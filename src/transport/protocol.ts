/**
 * Bodies of the transport's own frames (handshake, snapshot streaming,
 * requests). Raft messages use codec.ts. Decoders throw only DecodeError.
 */

import type { SnapshotMessage } from '../raft/messages.js';
import type { NodeId } from '../raft/types.js';
import { ByteReader, type ByteWriter } from './bytes.js';
import { readMessage, readNodeId, writeMessage, writeNodeId } from './codec.js';
import { FrameType, finishFrame, startFrame } from './frame.js';

/** "TNDM": tells a Tandem peer port apart from anything else that connects. */
export const handshakeMagic = Uint8Array.of(0x54, 0x4e, 0x44, 0x4d);
/**
 * Version of the transport protocol (frames and handshake). 3: snapshot
 * streams resume (snapBegin carries the sender's data size and checksum, the
 * receiver answers with snapStart). 4: that checksum is a CRC-32 (IEEE), no
 * longer a CRC32C, and the kv image inside a snapshot (version 2) no longer
 * ends with a SHA-256, which nodes of protocol 3 would refuse. Peers of
 * another version are refused at the handshake ('version'), so a mixed
 * cluster says so instead of misreading snapshot frames or snapshots.
 */
export const protocolVersion = 4;
export const clusterIdBytesMax = 255;
/** A data directory's incarnation (32 hex digits; '' when the node has none to offer). */
export const incarnationBytesMax = 64;
/** Error and refusal texts are for logs; capped so a peer cannot send megabytes of them. */
export const reasonBytesMax = 4 * 1024;
/** Until the handshake completes, frames larger than this close the connection. */
export const handshakeFrameBytesMax = 2 * 1024;

export interface Hello {
  readonly version: number;
  readonly clusterId: string;
  readonly from: NodeId;
  readonly to: NodeId;
  /** The dialer's data-directory incarnation. */
  readonly incarnation: string;
}

export interface Welcome {
  readonly version: number;
  readonly self: NodeId;
  /** The acceptor's data-directory incarnation. */
  readonly incarnation: string;
}

export type RefusalCode =
  | 'version'
  | 'clusterId'
  | 'unknownMember'
  | 'wrongReceiver'
  | 'direction'
  | 'incarnation';
const refusalCodes: readonly RefusalCode[] = [
  'version',
  'clusterId',
  'unknownMember',
  'wrongReceiver',
  'direction',
  'incarnation',
];

export interface Refusal {
  readonly code: RefusalCode;
  readonly reason: string;
}

function truncateReason(text: string): string {
  // UTF-8 needs at most 3 bytes per UTF-16 code unit, so this bound is safe without encoding.
  return text.length * 3 <= reasonBytesMax ? text : `${text.slice(0, reasonBytesMax / 3 - 3)}...`;
}

// ---------------------------------------------------------------- handshake

export function encodeHello(h: Hello, frameBytesMax: number): Uint8Array {
  const w = startFrame(FrameType.hello, 64);
  w.bytes(handshakeMagic);
  w.u8(h.version);
  w.string(h.clusterId, clusterIdBytesMax, 'cluster id');
  writeNodeId(w, h.from, 'hello.from');
  writeNodeId(w, h.to, 'hello.to');
  w.string(h.incarnation, incarnationBytesMax, 'incarnation');
  return finishFrame(w, frameBytesMax);
}

export function decodeHello(body: Uint8Array): Hello {
  const r = new ByteReader(body);
  const magic = r.bytes(handshakeMagic.byteLength, 'hello.magic');
  if (!magic.every((b, i) => b === handshakeMagic[i])) {
    throw r.error('hello.magic', 'wrong magic bytes: the peer is not a Tandem node');
  }
  const version = r.u8('hello.version');
  const clusterId = r.string('hello.clusterId', clusterIdBytesMax);
  const from = readNodeId(r, 'hello.from');
  const to = readNodeId(r, 'hello.to');
  const incarnation = r.string('hello.incarnation', incarnationBytesMax);
  r.end('hello');
  return { version, clusterId, from, to, incarnation };
}

export function encodeWelcome(welcome: Welcome, frameBytesMax: number): Uint8Array {
  const w = startFrame(FrameType.welcome, 64);
  w.u8(welcome.version);
  writeNodeId(w, welcome.self, 'welcome.self');
  w.string(welcome.incarnation, incarnationBytesMax, 'incarnation');
  return finishFrame(w, frameBytesMax);
}

export function decodeWelcome(body: Uint8Array): Welcome {
  const r = new ByteReader(body);
  const version = r.u8('welcome.version');
  const self = readNodeId(r, 'welcome.self');
  const incarnation = r.string('welcome.incarnation', incarnationBytesMax);
  r.end('welcome');
  return { version, self, incarnation };
}

export function encodeRefusal(refusal: Refusal, frameBytesMax: number): Uint8Array {
  const w = startFrame(FrameType.refuse, 64 + refusal.reason.length);
  w.u8(refusalCodes.indexOf(refusal.code));
  w.string(truncateReason(refusal.reason), reasonBytesMax, 'refusal reason');
  return finishFrame(w, frameBytesMax);
}

export function decodeRefusal(body: Uint8Array): Refusal {
  const r = new ByteReader(body);
  const index = r.u8('refuse.code');
  const code = refusalCodes[index];
  if (code === undefined) throw r.error('refuse.code', `unknown refusal code ${index}`);
  const reason = r.string('refuse.reason', reasonBytesMax);
  r.end('refuse');
  return { code, reason };
}

// ---------------------------------------------------------------- snapshots

/**
 * What a sender tells of its snapshot data, so that the receiver can resume
 * an interrupted transfer and check the whole result against it.
 */
export interface SnapshotSourceInfo {
  readonly dataBytes: number;
  /** CRC-32 (IEEE) of all `dataBytes` (protocol 4; CRC32C in 3). */
  readonly dataCrc: number;
}

export interface SnapBegin {
  readonly streamId: number;
  readonly message: SnapshotMessage;
  /** Null when the sender does not know its size up front (no resume). */
  readonly source: SnapshotSourceInfo | null;
}

export function encodeSnapBegin(
  streamId: number,
  m: SnapshotMessage,
  source: SnapshotSourceInfo | null,
  frameBytesMax: number,
): Uint8Array {
  const w = startFrame(FrameType.snapBegin, 128);
  w.varint(streamId);
  writeMessage(w, m);
  w.u8(source === null ? 0 : 1);
  if (source !== null) {
    w.varint(source.dataBytes);
    w.u32(source.dataCrc >>> 0);
  }
  return finishFrame(w, frameBytesMax);
}

export function decodeSnapBegin(body: Uint8Array): SnapBegin {
  const r = new ByteReader(body);
  const streamId = r.varint('snapBegin.streamId');
  const message = readMessage(r);
  if (message.type !== 'snapshot') {
    throw r.error('snapBegin.message', `carries a ${message.type} message, not a snapshot`);
  }
  const source = r.bool('snapBegin.hasSource')
    ? { dataBytes: r.varint('snapBegin.dataBytes'), dataCrc: r.u32('snapBegin.dataCrc') }
    : null;
  r.end('snapBegin');
  return { streamId, message, source };
}

/** snapStart: the offset the sender continues from and the initial credit. */
export function encodeSnapStart(
  streamId: number,
  offset: number,
  creditBytes: number,
  frameBytesMax: number,
): Uint8Array {
  const w = startFrame(FrameType.snapStart, 24);
  w.varint(streamId);
  w.varint(offset);
  w.varint(creditBytes);
  return finishFrame(w, frameBytesMax);
}

export function decodeSnapStart(body: Uint8Array): {
  streamId: number;
  offset: number;
  creditBytes: number;
} {
  const r = new ByteReader(body);
  const streamId = r.varint('snapStart.streamId');
  const offset = r.varint('snapStart.offset');
  const creditBytes = r.varint('snapStart.credit');
  r.end('snapStart');
  return { streamId, offset, creditBytes };
}

export function encodeSnapChunk(streamId: number, data: Uint8Array, frameBytesMax: number) {
  const w = startFrame(FrameType.snapChunk, 8 + data.byteLength);
  w.varint(streamId);
  w.bytes(data);
  return finishFrame(w, frameBytesMax);
}

/** The data is a view into `body` (no copy). */
export function decodeSnapChunk(body: Uint8Array): { streamId: number; data: Uint8Array } {
  const r = new ByteReader(body);
  const streamId = r.varint('snapChunk.streamId');
  return { streamId, data: r.rest() };
}

/** snapEnd: stream id only. snapAck: stream id + consumed bytes. */
export function encodeStreamNumber(
  type: typeof FrameType.snapEnd | typeof FrameType.snapAck,
  streamId: number,
  value: number,
  frameBytesMax: number,
): Uint8Array {
  const w = startFrame(type, 16);
  w.varint(streamId);
  w.varint(value);
  return finishFrame(w, frameBytesMax);
}

export function decodeStreamNumber(body: Uint8Array): { streamId: number; value: number } {
  const r = new ByteReader(body);
  const streamId = r.varint('stream.id');
  const value = r.varint('stream.value');
  r.end('stream frame');
  return { streamId, value };
}

/** snapDone (ok + error text) and snapAbort (ok = false + reason). */
export function encodeStreamResult(
  type: typeof FrameType.snapDone | typeof FrameType.snapAbort,
  streamId: number,
  error: string | null,
  frameBytesMax: number,
): Uint8Array {
  const w = startFrame(type, 64);
  w.varint(streamId);
  writeResult(w, error);
  return finishFrame(w, frameBytesMax);
}

export function decodeStreamResult(body: Uint8Array): { streamId: number; error: string | null } {
  const r = new ByteReader(body);
  const streamId = r.varint('stream.id');
  const error = r.bool('stream.ok') ? null : r.string('stream.error', reasonBytesMax);
  r.end('stream result');
  return { streamId, error };
}

function writeResult(w: ByteWriter, error: string | null): void {
  w.u8(error === null ? 1 : 0);
  if (error !== null) w.string(truncateReason(error), reasonBytesMax, 'error text');
}

// ---------------------------------------------------------------- requests

export function encodeRequest(id: number, payload: Uint8Array, frameBytesMax: number): Uint8Array {
  const w = startFrame(FrameType.request, 8 + payload.byteLength);
  w.varint(id);
  w.bytes(payload);
  return finishFrame(w, frameBytesMax);
}

export function decodeRequest(body: Uint8Array): { id: number; payload: Uint8Array } {
  const r = new ByteReader(body);
  const id = r.varint('request.id');
  return { id, payload: r.rest() };
}

export type ResponseBody =
  | { readonly id: number; readonly ok: true; readonly payload: Uint8Array }
  | { readonly id: number; readonly ok: false; readonly error: string };

export function encodeResponse(res: ResponseBody, frameBytesMax: number): Uint8Array {
  const w = startFrame(FrameType.response, 16 + (res.ok ? res.payload.byteLength : 256));
  w.varint(res.id);
  if (res.ok) {
    w.u8(1);
    w.bytes(res.payload);
  } else {
    writeResult(w, res.error);
  }
  return finishFrame(w, frameBytesMax);
}

export function decodeResponse(body: Uint8Array): ResponseBody {
  const r = new ByteReader(body);
  const id = r.varint('response.id');
  if (r.bool('response.ok')) return { id, ok: true, payload: r.rest() };
  const error = r.string('response.error', reasonBytesMax);
  r.end('response');
  return { id, ok: false, error };
}
