/**
 * The write-ahead log's record codec.
 *
 * Layout (little-endian), a 32-byte header then the payload:
 *
 * | offset | bytes | field                                             |
 * |--------|-------|---------------------------------------------------|
 * | 0      | 4     | header CRC32C over bytes 4..32                    |
 * | 4      | 4     | payload CRC32C                                    |
 * | 8      | 1     | magic, which is also the format version           |
 * | 9      | 1     | record type                                       |
 * | 10     | 2     | reserved, zero                                    |
 * | 12     | 4     | payload length in bytes                           |
 * | 16     | 8     | index (entry index; commit for a hard state; first index for a segment header) |
 * | 24     | 8     | term                                              |
 *
 * Why two checksums instead of one over everything: the header checksum is
 * verified before the length is trusted. With a single checksum, a flipped
 * bit that enlarges the length of a record would make it look like a record
 * running past the end of the file, that is, like a torn tail, and recovery
 * would truncate entries that may be committed. Since the header checksum
 * covers the payload checksum, the pair still covers every byte.
 */

import { fail } from '../raft/assert.js';
import type { ConfChange, Entry, HardState, LogIndex, NodeId, Term } from '../raft/types.js';
import { crc32c } from './crc32c.js';

export const recordHeaderBytes = 32;
/** Largest record, header included; a larger length on disk is corruption. */
export const recordBytesMax = 64 * 1024 * 1024;
export const recordPayloadBytesMax = recordBytesMax - recordHeaderBytes;
/** Format version 1 of the record layout; a new layout takes a new magic. */
export const recordMagic = 0xd1;
/** Node ids are length-prefixed with one byte. */
export const nodeIdBytesMax = 255;

/** The first record of every segment file, naming what the file should hold. */
export interface SegmentHeader {
  /** Sequence number of the segment, also in its file name: a renamed or misplaced file shows. */
  readonly segmentId: number;
  /** Index of the first entry the segment holds. */
  readonly firstIndex: LogIndex;
  /**
   * The log restarts here: everything before `firstIndex` is covered by a
   * snapshot, and the entries of earlier segments are void (a follower that
   * installed a snapshot beyond or diverging from its log, Raft §7).
   */
  readonly restart: boolean;
}

export type WalRecord =
  | { readonly type: 'entry'; readonly entry: Entry }
  | { readonly type: 'hardState'; readonly hardState: HardState }
  | { readonly type: 'segmentHeader'; readonly segment: SegmentHeader };

export type CorruptReason =
  | 'magic'
  | 'headerChecksum'
  | 'type'
  | 'reserved'
  | 'length'
  | 'position'
  | 'payloadChecksum'
  | 'payload';

export type DecodeResult =
  | { readonly kind: 'ok'; readonly record: WalRecord; readonly bytes: number }
  /** The buffer ends inside a record: a torn tail if nothing valid follows on disk. */
  | { readonly kind: 'incomplete'; readonly offset: number; readonly neededBytes: number }
  | {
      readonly kind: 'corrupt';
      readonly offset: number;
      readonly reason: CorruptReason;
      readonly message: string;
    };

// Type codes on disk. Zero is never used, so zero-filled space is not a record.
const typeEntryNormal = 1;
const typeEntryConf = 2;
const typeHardState = 3;
const typeSegmentHeader = 4;

const confCodes: Readonly<Record<ConfChange['type'], number>> = {
  addLearner: 1,
  addVoter: 2,
  removeNode: 3,
};
const confTypes: readonly (ConfChange['type'] | undefined)[] = [
  undefined,
  'addLearner',
  'addVoter',
  'removeNode',
];

const twoTo32 = 0x1_0000_0000;
/** The high word of a u64 that still fits a safe integer. */
const safeHighMax = Math.floor(Number.MAX_SAFE_INTEGER / twoTo32);

// --- Encoding ---------------------------------------------------------------

/** Encoded size of `record`, header included. */
export function recordBytes(record: WalRecord): number {
  return recordHeaderBytes + payloadBytes(record);
}

function payloadBytes(record: WalRecord): number {
  switch (record.type) {
    case 'entry':
      return record.entry.kind === 'normal'
        ? record.entry.data.byteLength
        : 2 + Buffer.byteLength(record.entry.change.node, 'utf8');
    case 'hardState':
      return 1 + Buffer.byteLength(record.hardState.vote, 'utf8');
    case 'segmentHeader':
      return 9;
  }
}

/**
 * Encodes `record` into `target` at `offset` and returns the bytes written
 * (`recordBytes(record)`). Writing into a caller's buffer lets a batch of
 * records be framed into one write with no per-record allocation.
 *
 * A record that decoding would reject (a length over `recordBytesMax`, a node
 * id over 255 bytes, an index of 0 or beyond 2^53) is a bug in the caller:
 * this asserts, so nothing undecodable ever reaches the disk.
 *
 * @example
 * const buffer = Buffer.alloc(recordBytes(record));
 * encodeRecord(record, buffer, 0);
 */
export function encodeRecord(record: WalRecord, target: Buffer, offset: number): number {
  const lengthBytes = payloadBytes(record);
  const totalBytes = recordHeaderBytes + lengthBytes;
  if (lengthBytes > recordPayloadBytesMax) {
    fail(`record of ${totalBytes} bytes exceeds recordBytesMax ${recordBytesMax}`);
  }
  if (!(offset >= 0 && offset + totalBytes <= target.length)) {
    fail(`record of ${totalBytes} bytes does not fit at ${offset} in ${target.length}`);
  }
  const payloadAt = offset + recordHeaderBytes;
  const { code, index, term } = encodePayload(record, target, payloadAt);
  checkPosition(code, index, term);
  target.writeUInt32LE(crc32c(target, 0, payloadAt, payloadAt + lengthBytes), offset + 4);
  target[offset + 8] = recordMagic;
  target[offset + 9] = code;
  target.writeUInt16LE(0, offset + 10);
  target.writeUInt32LE(lengthBytes, offset + 12);
  writeU64(target, offset + 16, index);
  writeU64(target, offset + 24, term);
  target.writeUInt32LE(crc32c(target, 0, offset + 4, payloadAt), offset);
  return totalBytes;
}

/** Encodes records back to back into one new buffer. */
export function encodeRecords(records: readonly WalRecord[]): Buffer {
  let totalBytes = 0;
  for (const record of records) totalBytes += recordBytes(record);
  const buffer = Buffer.allocUnsafe(totalBytes);
  let offset = 0;
  for (const record of records) offset += encodeRecord(record, buffer, offset);
  if (offset !== totalBytes) fail(`encoded ${offset} bytes, expected ${totalBytes}`);
  return buffer;
}

interface HeaderFields {
  readonly code: number;
  readonly index: number;
  readonly term: number;
}

function encodePayload(record: WalRecord, target: Buffer, at: number): HeaderFields {
  switch (record.type) {
    case 'entry': {
      const { entry } = record;
      if (entry.kind === 'normal') {
        target.set(entry.data, at);
        return { code: typeEntryNormal, index: entry.index, term: entry.term };
      }
      if (entry.change.node.length === 0) fail('conf change without a node id');
      target[at] = confCodes[entry.change.type];
      writeNodeId(target, at + 1, entry.change.node);
      return { code: typeEntryConf, index: entry.index, term: entry.term };
    }
    case 'hardState': {
      const { hardState } = record;
      writeNodeId(target, at, hardState.vote);
      return { code: typeHardState, index: hardState.commit, term: hardState.term };
    }
    case 'segmentHeader': {
      const { segment } = record;
      checkU64(segment.segmentId, 'segment id');
      writeU64(target, at, segment.segmentId);
      target[at + 8] = segment.restart ? 1 : 0;
      return { code: typeSegmentHeader, index: segment.firstIndex, term: 0 };
    }
  }
}

function writeNodeId(target: Buffer, at: number, id: NodeId): void {
  const idBytes = Buffer.byteLength(id, 'utf8');
  if (idBytes > nodeIdBytesMax) fail(`node id of ${idBytes} bytes exceeds ${nodeIdBytesMax}`);
  target[at] = idBytes;
  const written = target.write(id, at + 1, idBytes, 'utf8');
  if (written !== idBytes) fail(`node id wrote ${written} bytes, expected ${idBytes}`);
}

/** The rules `positionError` enforces on decode, asserted on encode. */
function checkPosition(code: number, index: number, term: number): void {
  checkU64(index, 'index');
  checkU64(term, 'term');
  const problem = positionError(code, index, term);
  if (problem !== null) fail(problem);
}

function checkU64(value: number, what: string): void {
  if (!(Number.isSafeInteger(value) && value >= 0)) {
    fail(`${what} ${value} is not a non-negative safe integer`);
  }
}

function writeU64(target: Buffer, at: number, value: number): void {
  target.writeUInt32LE(value % twoTo32, at);
  target.writeUInt32LE(Math.floor(value / twoTo32), at + 4);
}

// --- Decoding ---------------------------------------------------------------

/**
 * Decodes the record at `offset`. Entry data in the result is a view into
 * `buffer` (no copy): copy it if the buffer will be reused.
 *
 * - `ok`: a verified record and its size in bytes.
 * - `incomplete`: `buffer` ends inside the record; `neededBytes` (from
 *   `offset`) is what it takes to know more. At the end of the last segment
 *   this is a torn write; anywhere else it is corruption.
 * - `corrupt`: a checksum mismatch, a wrong magic, an impossible length or
 *   field. Never a torn tail to drop silently.
 *
 * @example
 * const result = decodeRecord(buffer, 0);
 * if (result.kind === 'ok') offset += result.bytes;
 */
export function decodeRecord(buffer: Buffer, offset: number): DecodeResult {
  if (!(Number.isSafeInteger(offset) && offset >= 0 && offset <= buffer.length)) {
    fail(`decode offset ${offset} outside 0..${buffer.length}`);
  }
  const availableBytes = buffer.length - offset;
  if (availableBytes < recordHeaderBytes) {
    return { kind: 'incomplete', offset, neededBytes: recordHeaderBytes };
  }
  const header = decodeHeader(buffer, offset);
  if ('reason' in header) return header;
  const totalBytes = recordHeaderBytes + header.lengthBytes;
  if (availableBytes < totalBytes) return { kind: 'incomplete', offset, neededBytes: totalBytes };
  const payloadAt = offset + recordHeaderBytes;
  const payloadEnd = payloadAt + header.lengthBytes;
  if (crc32c(buffer, 0, payloadAt, payloadEnd) !== buffer.readUInt32LE(offset + 4)) {
    return corrupt(offset, 'payloadChecksum', 'payload checksum mismatch');
  }
  const record = decodePayload(buffer, payloadAt, payloadEnd, header);
  if (record === null)
    return corrupt(offset, 'payload', `malformed payload of type ${header.code}`);
  return { kind: 'ok', record, bytes: totalBytes };
}

interface Header extends HeaderFields {
  readonly lengthBytes: number;
}

type Corrupt = Extract<DecodeResult, { kind: 'corrupt' }>;

function corrupt(offset: number, reason: CorruptReason, message: string): Corrupt {
  return { kind: 'corrupt', offset, reason, message };
}

function decodeHeader(buffer: Buffer, offset: number): Header | Corrupt {
  const magic = buffer[offset + 8];
  if (magic !== recordMagic) {
    return corrupt(
      offset,
      'magic',
      `magic 0x${magic?.toString(16)} is not 0x${recordMagic.toString(16)}`,
    );
  }
  if (crc32c(buffer, 0, offset + 4, offset + recordHeaderBytes) !== buffer.readUInt32LE(offset)) {
    return corrupt(offset, 'headerChecksum', 'header checksum mismatch');
  }
  // From here on the header is what the writer wrote, so a bad field means a
  // writer bug or a checksum collision, still never something to act on.
  const code = buffer[offset + 9] ?? 0;
  if (code < typeEntryNormal || code > typeSegmentHeader) {
    return corrupt(offset, 'type', `unknown record type ${code}`);
  }
  if (buffer.readUInt16LE(offset + 10) !== 0) {
    return corrupt(offset, 'reserved', 'reserved header bytes are not zero');
  }
  const lengthBytes = buffer.readUInt32LE(offset + 12);
  if (lengthBytes > recordPayloadBytesMax) {
    return corrupt(
      offset,
      'length',
      `payload length ${lengthBytes} exceeds ${recordPayloadBytesMax}`,
    );
  }
  const index = readU64(buffer, offset + 16);
  const term = readU64(buffer, offset + 24);
  if (index === null || term === null) {
    return corrupt(offset, 'position', 'index or term beyond 2^53');
  }
  const problem = positionError(code, index, term);
  if (problem !== null) return corrupt(offset, 'position', problem);
  return { code, lengthBytes, index, term };
}

/** Rules on the header's index and term, checked by both encode and decode. */
function positionError(code: number, index: number, term: number): string | null {
  if ((code === typeEntryNormal || code === typeEntryConf) && index < 1) {
    return `entry index ${index} (the first entry has index 1)`;
  }
  if (code === typeSegmentHeader && (index < 1 || term !== 0)) {
    return `segment header with first index ${index} and term ${term}`;
  }
  return null;
}

function decodePayload(buffer: Buffer, at: number, end: number, header: Header): WalRecord | null {
  const index = header.index as LogIndex;
  const term = header.term as Term;
  switch (header.code) {
    case typeEntryNormal:
      return {
        type: 'entry',
        entry: { kind: 'normal', index, term, data: buffer.subarray(at, end) },
      };
    case typeEntryConf: {
      const changeType = confTypes[buffer[at] ?? 0];
      const node = readNodeId(buffer, at + 1, end);
      if (changeType === undefined || node === null || node.length === 0) return null;
      const change: ConfChange = { type: changeType, node };
      return { type: 'entry', entry: { kind: 'conf', index, term, change } };
    }
    case typeHardState: {
      const vote = readNodeId(buffer, at, end);
      if (vote === null) return null;
      return { type: 'hardState', hardState: { term, vote, commit: index } };
    }
    case typeSegmentHeader: {
      const segmentId = end - at === 9 ? readU64(buffer, at) : null;
      const flags = buffer[at + 8];
      if (segmentId === null || (flags !== 0 && flags !== 1)) return null;
      const segment = { segmentId, firstIndex: index, restart: flags === 1 };
      return { type: 'segmentHeader', segment };
    }
    default:
      return null;
  }
}

/** A length-prefixed id that must end exactly at `end`, or null. */
function readNodeId(buffer: Buffer, at: number, end: number): NodeId | null {
  if (at >= end) return null;
  const idBytes = buffer[at] ?? 0;
  if (at + 1 + idBytes !== end) return null;
  return buffer.toString('utf8', at + 1, end) as NodeId;
}

function readU64(buffer: Buffer, at: number): number | null {
  const high = buffer.readUInt32LE(at + 4);
  if (high > safeHighMax) return null;
  return high * twoTo32 + buffer.readUInt32LE(at);
}

// --- Scanning ---------------------------------------------------------------

export interface ScanResult {
  readonly records: WalRecord[];
  /** Bytes from the start of the buffer covered by the decoded records. */
  readonly validBytes: number;
  /** Why the scan stopped: the buffer's end, or the first record not `ok`. */
  readonly stop: { readonly kind: 'end' } | Exclude<DecodeResult, { kind: 'ok' }>;
}

/** Decodes records back to back from the start of `buffer` until the first that is not `ok`. */
export function decodeRecords(buffer: Buffer): ScanResult {
  const records: WalRecord[] = [];
  let offset = 0;
  // Each ok record consumes at least a header, which bounds the loop.
  while (offset < buffer.length) {
    const result = decodeRecord(buffer, offset);
    if (result.kind !== 'ok') return { records, validBytes: offset, stop: result };
    records.push(result.record);
    offset += result.bytes;
  }
  return { records, validBytes: offset, stop: { kind: 'end' } };
}
