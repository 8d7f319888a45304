/**
 * Binary codec for Raft messages on the wire.
 *
 * Layout: a format byte (`messageFormat`, bumped on any layout change), a
 * type byte, then the envelope (from, to, term) and the kind's own fields in
 * the order of `encodeBody`. Integers are LEB128 varints (bytes.ts); node ids
 * and read contexts are varint-length-prefixed UTF-8; booleans are one byte.
 *
 * Entries: kind byte (1 normal, 2 conf), term, index, then for normal the
 * varint length and the data bytes, for conf the change type byte and node id.
 * Snapshot meta: index, term, voter count + ids, learner count + ids.
 *
 * Zero-copy: decoded entry data is a subarray of the input, not a copy. The
 * frame reader hands out frames in buffers it never reuses (frame.ts), so the
 * data stays valid for as long as the entry is referenced. A caller that
 * decodes from a reused buffer must copy first.
 *
 * Paired checks: `encodeMessage` asserts the message is well-formed (it came
 * from our own core, so a bad one is a bug); `decodeMessage` validates the
 * same rules and throws DecodeError (the bytes came from the network).
 */

import { fail } from '../raft/assert.js';
import type { Message, MessageType } from '../raft/messages.js';
import type { ConfChange, Entry, LogIndex, Membership, NodeId, Term } from '../raft/types.js';
import { ByteReader, ByteWriter } from './bytes.js';

/** Version of the message layout; a decoder rejects any other. */
export const messageFormat = 1;
/** Node ids are short names ("n1"); the cap bounds what a peer can make us allocate. */
export const nodeIdBytesMax = 255;
/** Raft's appendEntriesMax defaults to 4,096; a wire cap well above it. */
export const entriesPerMessageMax = 65_536;
/** Members in a snapshot's membership, voters and learners each. */
export const membersMax = 1_024;
/** A read context is a short opaque token chosen by the runtime. */
export const contextBytesMax = 64 * 1024;

const typeCodes: Readonly<Record<MessageType, number>> = {
  append: 1,
  appendAccept: 2,
  appendReject: 3,
  heartbeat: 4,
  heartbeatResponse: 5,
  vote: 6,
  preVote: 7,
  voteResponse: 8,
  preVoteResponse: 9,
  snapshot: 10,
  timeoutNow: 11,
  readIndex: 12,
  readIndexResponse: 13,
};
const typesByCode: readonly (MessageType | undefined)[] = (() => {
  const out: (MessageType | undefined)[] = [];
  for (const [type, code] of Object.entries(typeCodes)) out[code] = type as MessageType;
  return out;
})();

const entryNormal = 1;
const entryConf = 2;
const confCodes: Readonly<Record<ConfChange['type'], number>> = {
  addLearner: 1,
  addVoter: 2,
  removeNode: 3,
};
const confTypesByCode: readonly (ConfChange['type'] | undefined)[] = [
  undefined,
  'addLearner',
  'addVoter',
  'removeNode',
];

// ---------------------------------------------------------------- encode

/**
 * Bytes to reserve for a message, so large entries are written without
 * regrowing; entries of `attachBytesMin` bytes or more are not written into
 * the buffer (see ByteWriter), so they reserve nothing.
 */
function estimateBytes(m: Message, attachBytesMin = Number.POSITIVE_INFINITY): number {
  if (m.type !== 'append') return 128;
  let bytes = 64;
  for (const e of m.entries) {
    const dataBytes = e.kind === 'normal' ? e.data.byteLength : 0;
    bytes += 32 + (dataBytes < attachBytesMin ? dataBytes : 0);
  }
  return bytes;
}

/**
 * Appends the encoded message to `w` (used to build a frame in place).
 * Asserts the message is well-formed: a bad one is a bug of the sender.
 */
export function writeMessage(w: ByteWriter, m: Message): void {
  const problem = messageProblem(m);
  if (problem !== null) fail(`encoding a malformed ${m.type} message: ${problem}`);
  w.u8(messageFormat);
  w.u8(typeCodes[m.type]);
  writeNodeId(w, m.from, 'from');
  writeNodeId(w, m.to, 'to');
  w.varint(m.term);
  writeBody(w, m);
}

/**
 * Bytes to reserve for `m`'s encoding into a writer that attaches blobs of
 * `attachBytesMin` bytes or more; exact enough that the entries it copies
 * are copied once.
 */
export function messageBytesEstimate(m: Message, attachBytesMin?: number): number {
  return estimateBytes(m, attachBytesMin);
}

/** Encodes one message into a fresh buffer. */
export function encodeMessage(m: Message): Uint8Array {
  const w = new ByteWriter(estimateBytes(m));
  writeMessage(w, m);
  return w.finish();
}

function writeBody(w: ByteWriter, m: Message): void {
  switch (m.type) {
    case 'append':
      w.varint(m.prevIndex);
      w.varint(m.prevTerm);
      w.varint(m.commit);
      writeEntries(w, m.entries);
      return;
    case 'appendAccept':
      w.varint(m.matchIndex);
      return;
    case 'appendReject':
      w.varint(m.rejectedIndex);
      w.varint(m.hintIndex);
      w.varint(m.hintTerm);
      return;
    case 'heartbeat':
      w.varint(m.commit);
      w.varint(m.seq);
      return;
    case 'heartbeatResponse':
      w.varint(m.seq);
      return;
    case 'vote':
    case 'preVote':
      w.varint(m.lastIndex);
      w.varint(m.lastTerm);
      w.u8(m.transfer ? 1 : 0);
      return;
    case 'voteResponse':
    case 'preVoteResponse':
      w.u8(m.granted ? 1 : 0);
      return;
    case 'snapshot':
      w.varint(m.snapshot.index);
      w.varint(m.snapshot.term);
      writeMembership(w, m.snapshot.membership);
      return;
    case 'timeoutNow':
      return;
    case 'readIndex':
      w.string(m.context, contextBytesMax, 'readIndex.context');
      return;
    case 'readIndexResponse':
      w.string(m.context, contextBytesMax, 'readIndexResponse.context');
      w.varint(m.index);
      return;
  }
}

function writeEntries(w: ByteWriter, entries: readonly Entry[]): void {
  if (entries.length > entriesPerMessageMax) {
    fail(
      `append carries ${entries.length} entries, over the wire limit of ${entriesPerMessageMax}`,
    );
  }
  w.varint(entries.length);
  for (const e of entries) {
    w.u8(e.kind === 'normal' ? entryNormal : entryConf);
    w.varint(e.term);
    w.varint(e.index);
    if (e.kind === 'normal') {
      w.blob(e.data);
    } else {
      w.u8(confCodes[e.change.type]);
      writeNodeId(w, e.change.node, 'conf change node');
    }
  }
}

function writeMembership(w: ByteWriter, membership: Membership): void {
  for (const ids of [membership.voters, membership.learners]) {
    if (ids.length > membersMax) fail(`membership of ${ids.length} over the limit ${membersMax}`);
    w.varint(ids.length);
    for (const id of ids) writeNodeId(w, id, 'member');
  }
}

/** Lone surrogates would not survive UTF-8, and the id would arrive changed. */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Node ids as written (length prefix and UTF-8), for the few ids every
 * message repeats: checking and encoding them took most of a heartbeat's
 * encode. Bounded: cleared when full.
 */
const encodedIds = new Map<string, Uint8Array>();
const encodedIdsMax = 64;

export function writeNodeId(w: ByteWriter, id: string, what: string): void {
  const known = encodedIds.get(id);
  if (known !== undefined) {
    w.bytes(known);
    return;
  }
  if (id.length === 0) fail(`${what}: empty node id`);
  if (loneSurrogate.test(id))
    fail(`${what}: node id ${JSON.stringify(id)} is not well-formed UTF-16`);
  const start = w.length;
  w.string(id, nodeIdBytesMax, what);
  if (encodedIds.size >= encodedIdsMax) encodedIds.clear();
  encodedIds.set(id, w.copyFrom(start));
}

// ---------------------------------------------------------------- decode

/**
 * Decodes one message. Throws only DecodeError, for any input. Entry data is
 * a view into `bytes` (see the file comment).
 */
export function decodeMessage(bytes: Uint8Array): Message {
  const r = new ByteReader(bytes);
  const m = readMessage(r);
  r.end('message');
  return m;
}

/** Reads one message and validates it (the decode half of the paired check). */
export function readMessage(r: ByteReader): Message {
  const m = readFields(r);
  const problem = messageProblem(m);
  if (problem !== null) throw r.error(m.type, problem);
  return m;
}

function readFields(r: ByteReader): Message {
  const format = r.u8('format');
  if (format !== messageFormat) {
    throw r.error('format', `message format ${format}; this node speaks format ${messageFormat}`);
  }
  const code = r.u8('type');
  const type = typesByCode[code];
  if (type === undefined) throw r.error('type', `unknown message type ${code}`);
  const from = readNodeId(r, 'from');
  const to = readNodeId(r, 'to');
  const term = r.varint('term') as Term;
  return readBody(r, type, from, to, term);
}

/**
 * The fields after the envelope. Each message is one object literal with
 * every field in place: spreading a shared envelope and adding fields took
 * most of a heartbeat's 2.9 µs decode.
 */
function readBody(r: ByteReader, type: MessageType, from: NodeId, to: NodeId, term: Term): Message {
  // Field names are literals: building them per field would cost on the hot path.
  switch (type) {
    case 'append': {
      const prevIndex = r.varint('append.prevIndex') as LogIndex;
      const prevTerm = r.varint('append.prevTerm') as Term;
      const commit = r.varint('append.commit') as LogIndex;
      return { type, from, to, term, prevIndex, prevTerm, entries: readEntries(r), commit };
    }
    case 'appendAccept':
      return { type, from, to, term, matchIndex: r.varint('appendAccept.matchIndex') as LogIndex };
    case 'appendReject': {
      const rejectedIndex = r.varint('appendReject.rejectedIndex') as LogIndex;
      const hintIndex = r.varint('appendReject.hintIndex') as LogIndex;
      const hintTerm = r.varint('appendReject.hintTerm') as Term;
      return { type, from, to, term, rejectedIndex, hintIndex, hintTerm };
    }
    case 'heartbeat': {
      const commit = r.varint('heartbeat.commit') as LogIndex;
      return { type, from, to, term, commit, seq: r.varint('heartbeat.seq') };
    }
    case 'heartbeatResponse':
      return { type, from, to, term, seq: r.varint('heartbeatResponse.seq') };
    case 'vote':
    case 'preVote': {
      const lastIndex = r.varint('vote.lastIndex') as LogIndex;
      const lastTerm = r.varint('vote.lastTerm') as Term;
      return { type, from, to, term, lastIndex, lastTerm, transfer: r.bool('vote.transfer') };
    }
    case 'voteResponse':
    case 'preVoteResponse':
      return { type, from, to, term, granted: r.bool('voteResponse.granted') };
    case 'snapshot': {
      const index = r.varint('snapshot.index') as LogIndex;
      const snapshotTerm = r.varint('snapshot.term') as Term;
      const membership = readMembership(r);
      return { type, from, to, term, snapshot: { index, term: snapshotTerm, membership } };
    }
    case 'timeoutNow':
      return { type, from, to, term };
    case 'readIndex':
      return { type, from, to, term, context: r.string('readIndex.context', contextBytesMax) };
    case 'readIndexResponse': {
      const context = r.string('readIndexResponse.context', contextBytesMax);
      const index = r.varint('readIndexResponse.index') as LogIndex;
      return { type, from, to, term, context, index };
    }
  }
}

function readEntries(r: ByteReader): Entry[] {
  const count = r.varint('append.entries.count', entriesPerMessageMax);
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) entries.push(readEntry(r));
  return entries;
}

function readEntry(r: ByteReader): Entry {
  const kind = r.u8('entry.kind');
  const term = r.varint('entry.term') as Term;
  const index = r.varint('entry.index') as LogIndex;
  if (kind === entryNormal) {
    // The frame limit already bounds the length: bytes() checks it against the input.
    return { kind: 'normal', term, index, data: r.blob('entry.data', Number.MAX_SAFE_INTEGER) };
  }
  if (kind !== entryConf) throw r.error('entry.kind', `unknown entry kind ${kind}`);
  const code = r.u8('entry.change.type');
  const changeType = confTypesByCode[code];
  if (changeType === undefined) throw r.error('entry.change.type', `unknown change ${code}`);
  const node = readNodeId(r, 'entry.change.node');
  return { kind: 'conf', term, index, change: { type: changeType, node } };
}

function readMembership(r: ByteReader): Membership {
  const voters = readIds(r, 'snapshot.membership.voters');
  const learners = readIds(r, 'snapshot.membership.learners');
  return { voters, learners };
}

function readIds(r: ByteReader, field: string): NodeId[] {
  const count = r.varint(`${field}.count`, membersMax);
  const ids: NodeId[] = [];
  for (let i = 0; i < count; i++) ids.push(readNodeId(r, `${field}[${i}]`));
  return ids;
}

export function readNodeId(r: ByteReader, field: string): NodeId {
  const id = r.internedString(field, nodeIdBytesMax);
  if (id.length === 0) throw r.error(field, 'empty node id');
  return id as NodeId;
}

// ---------------------------------------------------------------- validation

/**
 * Rules every message obeys beyond its shape, checked on both sides: the
 * entries of an append are consecutive from prevIndex + 1 with non-decreasing
 * terms no newer than the leader's (§5.3, Log Matching), and a membership
 * has no duplicates and disjoint voters and learners.
 */
export function messageProblem(m: Message): string | null {
  if (m.from === m.to) return `sender and receiver are both ${m.from}`;
  if (m.type === 'append') return entriesProblem(m.prevIndex, m.prevTerm, m.term, m.entries);
  if (m.type === 'snapshot') return membershipProblem(m.snapshot.membership);
  return null;
}

function entriesProblem(
  prevIndex: number,
  prevTerm: number,
  leaderTerm: number,
  entries: readonly Entry[],
): string | null {
  let lastTerm = prevTerm;
  // Indexed: an entries() iterator allocated a pair per entry on every append
  // encoded and decoded (3% of the leader's allocations under pipelined SETs).
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Entry;
    if (e.index !== prevIndex + 1 + i) {
      return `entry ${i} has index ${e.index}, expected ${prevIndex + 1 + i} (entries must follow prevIndex)`;
    }
    if (e.term < lastTerm || e.term > leaderTerm) {
      return `entry ${e.index} has term ${e.term}, outside [${lastTerm}, ${leaderTerm}]`;
    }
    lastTerm = e.term;
  }
  return null;
}

function membershipProblem(membership: Membership): string | null {
  const seen = new Set<string>();
  for (const id of [...membership.voters, ...membership.learners]) {
    if (seen.has(id)) return `member ${id} appears twice in the membership`;
    seen.add(id);
  }
  return null;
}
