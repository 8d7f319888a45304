/**
 * The member registry (issue 5): each member's addresses, replicated
 * through the log so that every node, a new one included, learns where its
 * peers are without any other coordinator.
 *
 * The Raft core knows members only by id (voters, learners). The addresses
 * travel as the node's own log entries, next to the kv entries: a member
 * entry starts with `memberEntryTag`, a byte no kv entry starts with (kv
 * entries start with their format version, 1). A leader registers a new
 * member's addresses before it proposes the membership change that adds it,
 * so a node that applies the change already knows where the member is.
 *
 * Each record also carries the member's incarnation: a random id its data
 * directory gets when it is created. A node that lost its disk and comes
 * back under its old id has a new incarnation, and its peers can tell.
 *
 * Snapshots carry the registry in a header before the kv image (see
 * `encodeSnapshotHeader`), so a node that installs a snapshot learns every
 * address in it.
 *
 * Determinism: apply never reads clocks or randomness; records are kept in
 * id order, so two nodes that applied the same entries encode the same
 * bytes.
 */

import { CorruptDataError } from '../kv/index.js';

/** First byte of a member entry; kv entries start with their format version (1). */
export const memberEntryTag = 0xc1;
/** First bytes of a snapshot that starts with the registry header. */
const snapshotMagic = Buffer.from('TNDMSNP1', 'latin1');
/** A bound on one record and on the registry (a limit on everything). */
const recordBytesMax = 4096;
const membersMax = 1024;

export interface MemberRecord {
  readonly id: string;
  /** host:port of the peer transport. */
  readonly peer: string;
  /** host:port of the RESP server ('' if unknown). */
  readonly resp: string;
  /** host:port of the admin HTTP API ('' if unknown). */
  readonly http: string;
  /** Random id of the member's data directory; '' for members of the initial cluster. */
  readonly incarnation: string;
  /** Stays a learner: never promoted automatically (absent: false). */
  readonly learner?: boolean;
}

export function sameRecord(a: MemberRecord, b: MemberRecord): boolean {
  return (
    a.id === b.id &&
    a.peer === b.peer &&
    a.resp === b.resp &&
    a.http === b.http &&
    a.incarnation === b.incarnation &&
    (a.learner ?? false) === (b.learner ?? false)
  );
}

/** A member's raised alarm (issue 5): NOSPACE while its disk is nearly full. */
export interface Alarm {
  readonly id: string;
  readonly kind: 'nospace';
  /** What the member saw, for the error clients get. */
  readonly detail: string;
}

export class MemberRegistry {
  private readonly records = new Map<string, MemberRecord>();
  private readonly alarmed = new Map<string, Alarm>();

  /** Raised alarms, in member id order. */
  alarms(): Alarm[] {
    return [...this.alarmed.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Some raised alarm (the lowest member id), or undefined; O(1) when none is raised. */
  anyAlarm(): Alarm | undefined {
    return this.alarmed.size === 0 ? undefined : this.alarms()[0];
  }

  alarmOf(id: string): Alarm | undefined {
    return this.alarmed.get(id);
  }

  raise(alarm: Alarm): void {
    if (!this.alarmed.has(alarm.id) && this.alarmed.size >= membersMax) {
      throw new CorruptDataError(`member registry: more than ${membersMax} alarms`);
    }
    this.alarmed.set(alarm.id, alarm);
  }

  clear(id: string): void {
    this.alarmed.delete(id);
  }

  get(id: string): MemberRecord | undefined {
    return this.records.get(id);
  }

  /** Every record, in id order. */
  all(): MemberRecord[] {
    return [...this.records.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get size(): number {
    return this.records.size;
  }

  /** Adds or replaces a record; refuses past the registry's bound. */
  set(record: MemberRecord): void {
    if (!this.records.has(record.id) && this.records.size >= membersMax) {
      throw new CorruptDataError(`member registry: more than ${membersMax} members`);
    }
    this.records.set(record.id, record);
  }

  delete(id: string): void {
    this.records.delete(id);
  }
}

/** A registry entry: one member's record or its removal, or one member's alarm raised or cleared. */
export type MemberEntry =
  | { readonly kind: 'set'; readonly record: MemberRecord }
  | { readonly kind: 'delete'; readonly id: string }
  | { readonly kind: 'raise'; readonly alarm: Alarm }
  | { readonly kind: 'clear'; readonly id: string };

/** The member an entry is about. */
export function entryMember(entry: MemberEntry): string {
  switch (entry.kind) {
    case 'set':
      return entry.record.id;
    case 'raise':
      return entry.alarm.id;
    default:
      return entry.id;
  }
}

/** Applies `entry` to `registry`. */
export function applyMemberEntry(registry: MemberRegistry, entry: MemberEntry): void {
  switch (entry.kind) {
    case 'set':
      registry.set(entry.record);
      return;
    case 'delete':
      registry.delete(entry.id);
      registry.clear(entry.id);
      return;
    case 'raise':
      registry.raise(entry.alarm);
      return;
    case 'clear':
      registry.clear(entry.id);
      return;
  }
}

export function isMemberEntry(data: Uint8Array): boolean {
  return data.length > 0 && data[0] === memberEntryTag;
}

export function encodeMemberEntry(entry: MemberEntry): Uint8Array {
  const json = Buffer.from(JSON.stringify(entry), 'utf8');
  if (json.length > recordBytesMax) {
    throw new RangeError(`a member record is limited to ${recordBytesMax} bytes`);
  }
  const out = Buffer.alloc(1 + json.length);
  out[0] = memberEntryTag;
  json.copy(out, 1);
  return out;
}

export function decodeMemberEntry(data: Uint8Array): MemberEntry {
  if (!isMemberEntry(data)) throw new CorruptDataError('member entry: wrong tag');
  if (data.length - 1 > recordBytesMax) throw new CorruptDataError('member entry: too long');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(data.buffer, data.byteOffset + 1, data.length - 1).toString());
  } catch {
    throw new CorruptDataError('member entry: not JSON');
  }
  return checkEntry(value);
}

function checkEntry(value: unknown): MemberEntry {
  const v = value as Partial<Record<string, unknown>>;
  if ((v?.kind === 'delete' || v?.kind === 'clear') && typeof v.id === 'string' && v.id !== '') {
    return { kind: v.kind, id: v.id };
  }
  if (v?.kind === 'set') return { kind: 'set', record: checkRecord(v.record) };
  if (v?.kind === 'raise') return { kind: 'raise', alarm: checkAlarm(v.alarm) };
  throw new CorruptDataError('member entry: unknown kind');
}

function checkAlarm(value: unknown): Alarm {
  const a = value as Partial<Record<string, unknown>>;
  if (typeof a?.id !== 'string' || a.id === '' || a.kind !== 'nospace') {
    throw new CorruptDataError('alarm: bad id or kind');
  }
  if (typeof a.detail !== 'string') throw new CorruptDataError('alarm: detail is not a string');
  return { id: a.id, kind: 'nospace', detail: a.detail };
}

function checkRecord(value: unknown): MemberRecord {
  const r = value as Partial<Record<string, unknown>>;
  const fields = ['id', 'peer', 'resp', 'http', 'incarnation'] as const;
  for (const field of fields) {
    if (typeof r?.[field] !== 'string') {
      throw new CorruptDataError(`member record: ${field} is not a string`);
    }
  }
  if (r.learner !== undefined && typeof r.learner !== 'boolean') {
    throw new CorruptDataError('member record: learner is not a boolean');
  }
  const record: MemberRecord = {
    id: r.id as string,
    peer: r.peer as string,
    resp: r.resp as string,
    http: r.http as string,
    incarnation: r.incarnation as string,
    ...(r.learner === true ? { learner: true } : {}),
  };
  if (record.id === '' || record.peer === '') {
    throw new CorruptDataError('member record: empty id or peer');
  }
  return record;
}

/** The snapshot header: magic, u32 length, the records as JSON. */
export function encodeSnapshotHeader(registry: MemberRegistry): Uint8Array {
  const state = { members: registry.all(), alarms: registry.alarms() };
  const json = Buffer.from(JSON.stringify(state), 'utf8');
  const out = Buffer.alloc(snapshotMagic.length + 4 + json.length);
  snapshotMagic.copy(out, 0);
  out.writeUInt32BE(json.length, snapshotMagic.length);
  json.copy(out, snapshotMagic.length + 4);
  return out;
}

/**
 * Splits a snapshot stream into the registry and the kv image after it. A
 * snapshot without the header (written before the registry existed) is a
 * bare kv image and an empty registry.
 */
export async function readSnapshotHeader(
  chunks: AsyncIterable<Uint8Array>,
): Promise<{ registry: MemberRegistry; rest: AsyncIterable<Uint8Array> }> {
  const iterator = chunks[Symbol.asyncIterator]();
  let buffered = Buffer.alloc(0);
  const headerBytesMax = snapshotMagic.length + 4 + membersMax * recordBytesMax;
  let needed = snapshotMagic.length + 4;
  let done = false;
  while (buffered.length < needed && !done) {
    const next = await iterator.next();
    if (next.done === true) done = true;
    else buffered = Buffer.concat([buffered, next.value]);
    if (buffered.length >= snapshotMagic.length && !startsWithMagic(buffered)) break;
    if (buffered.length >= snapshotMagic.length + 4 && startsWithMagic(buffered)) {
      const jsonBytes = buffered.readUInt32BE(snapshotMagic.length);
      needed = snapshotMagic.length + 4 + jsonBytes;
      if (needed > headerBytesMax) throw new CorruptDataError('snapshot header: too long');
    }
  }
  const registry = new MemberRegistry();
  let restStart = 0;
  if (startsWithMagic(buffered)) {
    if (buffered.length < needed) throw new CorruptDataError('snapshot header: truncated');
    let state: { members?: unknown; alarms?: unknown } | null;
    try {
      state = JSON.parse(buffered.subarray(snapshotMagic.length + 4, needed).toString('utf8'));
    } catch {
      throw new CorruptDataError('snapshot header: not JSON');
    }
    if (!Array.isArray(state?.members) || !Array.isArray(state?.alarms)) {
      throw new CorruptDataError('snapshot header: no members and alarms lists');
    }
    for (const record of state.members) registry.set(checkRecord(record));
    for (const alarm of state.alarms) registry.raise(checkAlarm(alarm));
    restStart = needed;
  }
  const head = buffered.subarray(restStart);
  const rest = (async function* () {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  })();
  return { registry, rest };
}

function startsWithMagic(buffer: Buffer): boolean {
  return buffer.length >= snapshotMagic.length && buffer.subarray(0, 8).equals(snapshotMagic);
}
