/**
 * WAL recovery: scan the segment files in order, verify them, rebuild the
 * effective log, and cut a torn tail off the last segment.
 *
 * The WAL's semantics: a later entry record at index i replaces i and
 * everything after it (a follower overwriting a conflicting suffix, Raft §5.3).
 * So the effective log is rebuilt while scanning, not read off the records.
 *
 * Torn tail versus corruption (DESIGN.md §2): only the end of the last segment
 * can hold a write that was never acknowledged. There, an incomplete record,
 * or a damaged one followed by nothing that decodes, is the torn remains of
 * an unsynced write and is cut. A damaged record anywhere else may hold a
 * committed entry, and recovery refuses to start rather than drop it.
 *
 * A segment whose header has `restart` set voids the log before it (see
 * `Wal.reset`): the segments before it are reported as superseded, for the
 * Wal to delete, and their entries are not part of the effective log. They
 * are still verified: damage there means the disk cannot be trusted.
 *
 * The hard state lives in the newest segment that holds one. A segment's
 * header and its copy of the hard state are one write, which a crash can
 * tear between them: the new segment then holds no hard state, and the last
 * one sits in a segment that compaction or a restart may delete. Recovery
 * reports it (`hardStateInLast`) and the Wal writes it again, durably, into
 * the last segment before it deletes anything.
 *
 * Zero-filled space after the last record is not a tail at all: segments
 * the Wal preallocates (`WalOptions.preallocate`) are zeros up to their
 * size, and appends overwrite them. A segment ends at its first position
 * that does not hold a record when every byte from there on is zero; no
 * record is all zeros (its magic byte is not), and a gap this hides at the
 * end of a segment that is not the last would show as the next segment's
 * header not following on (checked below).
 *
 * Over zero-filled space a crash can also tear a write in the middle: a
 * disk that had persisted only some sectors of the last batch leaves its
 * first records, an unwritten sector (still zeros), then more of its
 * records, which verify. In the last segment, damage followed by verified
 * records is therefore cut as a torn tail when some sector it touches is
 * zero from the damage (or the sector's start) to the sector's end, and the
 * non-zero bytes end within one batch (`batchBytesMax`) of the damage: what
 * one write can leave. Anything else followed by a verified record is still
 * corruption. (etcd's WAL calls a record with an all-zero sector torn too.)
 * The Wal splits appends so that no write exceeds `batchBytesMax` but one
 * holding a single bigger entry; torn in its middle, that one is still
 * refused, and the operator must act.
 *
 * What recovery cannot tell apart: a bit flip in the very last record of the
 * last segment looks like a torn write (etcd's WAL has the same blind spot)
 * and is cut. It can only hit the newest batch; RaftStorage then refuses to
 * start if the hard state's commit index is beyond what is left.
 */

import { basename, dirname, join } from 'node:path';
import { fail } from '../raft/assert.js';
import type { Entry, HardState, LogIndex } from '../raft/types.js';
import type { FileSystem } from './fs.js';
import { type DecodeResult, decodeRecord, type WalRecord } from './record.js';
import { parseSegmentName } from './segment-name.js';
import { WalCorruptionError } from './wal-errors.js';

/** What recovery learned about one segment file that stays. */
export interface RecoveredSegment {
  readonly segmentId: number;
  readonly firstIndex: LogIndex;
  readonly path: string;
  /** Bytes of verified records: where the next append goes. */
  readonly sizeBytes: number;
  /** The file's size after recovery: `sizeBytes`, or more when zero-filled space follows. */
  readonly fileBytes: number;
  /** Highest index of any entry record in the file; 0 if none. */
  readonly maxEntryIndex: number;
  /** The file holds at least one hard state record. */
  readonly holdsHardState: boolean;
}

/** A torn write cut off the end of the last segment. */
export interface TornTail {
  readonly file: string;
  readonly offsetBytes: number;
  readonly cutBytes: number;
  /** Why the bytes were not a record: the decoder's verdict. */
  readonly reason: string;
  /** True when the whole file was the torn creation of a segment, and removed. */
  readonly removedFile: boolean;
}

export interface Recovery {
  /** The last hard state record in the log, or null if none was ever written. */
  readonly hardState: HardState | null;
  /** The last kept segment holds a hard state record (false if there is no hard state). */
  readonly hardStateInLast: boolean;
  /** The effective log: index-ordered and contiguous. Payloads are copies. */
  readonly entries: Entry[];
  /** Index of the last entry; `firstIndex - 1` of the first segment if none. */
  readonly lastIndex: LogIndex;
  /**
   * No entry may be written below this: 1, or the first index after the last
   * restart. (Without a restart, a segment may hold overwrites below its own
   * first index, of entries written to the segment before it.)
   */
  readonly floorIndex: LogIndex;
  /** Segments from the last restart on, in order; empty for a directory with no WAL yet. */
  readonly segments: RecoveredSegment[];
  /** Segments before the last restart: void, to be deleted oldest first. */
  readonly superseded: RecoveredSegment[];
  readonly tornTails: TornTail[];
}

/**
 * The smallest unit a disk writes whole: a crash may keep any subset of the
 * sectors of a write in progress (the simulated disk tears by it too).
 */
export const sectorBytes = 512;

/**
 * Scans and verifies every segment of `dir`; cuts a torn tail. Throws
 * `WalCorruptionError`. `batchBytesMax` is the Wal's (the most one write
 * puts down), which bounds what a torn write can leave behind.
 */
export async function recoverWal(
  fs: FileSystem,
  dir: string,
  batchBytesMax: number,
): Promise<Recovery> {
  const names = await segmentNames(fs, dir);
  const log = new EffectiveLog();
  let hardState: HardState | null = null;
  let segments: RecoveredSegment[] = [];
  const superseded: RecoveredSegment[] = [];
  const tornTails: TornTail[] = [];
  for (const [position, name] of names.entries()) {
    const isLast = position === names.length - 1;
    const context = { isLast, isFirst: position === 0, batchBytesMax };
    const scan = await scanSegment(fs, join(dir, name), context, log);
    if (scan.hardState !== null) hardState = scan.hardState;
    if (scan.tornTail !== null) tornTails.push(scan.tornTail);
    if (scan.segment === null) continue;
    if (scan.restart) {
      superseded.push(...segments);
      segments = [];
    }
    segments.push(scan.segment);
  }
  return {
    hardState,
    hardStateInLast: segments[segments.length - 1]?.holdsHardState ?? false,
    entries: log.entries,
    lastIndex: log.lastIndex as LogIndex,
    floorIndex: log.floorIndex as LogIndex,
    segments,
    superseded,
    tornTails,
  };
}

/** Segment file names in order; a missing segment in the middle is corruption. */
async function segmentNames(fs: FileSystem, dir: string): Promise<string[]> {
  const names = (await fs.readdir(dir)).filter((name) => parseSegmentName(name) !== null);
  for (let i = 1; i < names.length; i++) {
    const previous = parseSegmentName(names[i - 1] ?? '');
    const current = parseSegmentName(names[i] ?? '');
    if (previous === null || current === null) fail('segment names were filtered');
    if (current.segmentId !== previous.segmentId + 1) {
      throw new WalCorruptionError(
        join(dir, names[i] ?? ''),
        0,
        `segment ${previous.segmentId + 1} is missing (the one before is ${names[i - 1]})`,
      );
    }
  }
  return names;
}

interface SegmentScan {
  readonly segment: RecoveredSegment | null;
  /** The segment's header restarts the log. */
  readonly restart: boolean;
  readonly hardState: HardState | null;
  readonly tornTail: TornTail | null;
}

interface ScanContext {
  readonly isLast: boolean;
  readonly isFirst: boolean;
  /** The largest batch one write puts down (see `WalOptions.batchBytesMax`). */
  readonly batchBytesMax: number;
}

async function scanSegment(
  fs: FileSystem,
  path: string,
  { isLast, isFirst, batchBytesMax }: ScanContext,
  log: EffectiveLog,
): Promise<SegmentScan> {
  const name = parseSegmentName(basename(path));
  if (name === null) fail(`not a segment name: ${path}`);
  const file = await fs.open(path, isLast ? 'write' : 'read');
  try {
    const buffer = await file.read(0, await file.size());
    let offset = 0;
    let hardState: HardState | null = null;
    let maxEntryIndex = 0;
    let restart = false;
    // Each ok record consumes at least a header, which bounds the loop.
    while (offset < buffer.length) {
      const result = decodeRecord(buffer, offset);
      if (result.kind !== 'ok') break;
      const record = result.record;
      if (offset === 0) restart = checkHeader(path, record, name, log, isFirst);
      else if (record.type === 'segmentHeader') {
        throw new WalCorruptionError(path, offset, 'a segment header in the middle of a segment');
      } else if (record.type === 'hardState') hardState = record.hardState;
      else {
        log.apply(record.entry, path, offset);
        maxEntryIndex = Math.max(maxEntryIndex, record.entry.index);
      }
      offset += result.bytes;
    }
    // Scanned only where the records stopped short of the end.
    const dataEnd = offset < buffer.length ? endOfNonZero(buffer) : offset;
    const zeroTail = offset < buffer.length && dataEnd <= offset;
    const stop = offset < buffer.length && !zeroTail ? stopAt(buffer, offset) : null;
    let tornReason = 'torn tail';
    if (stop !== null) {
      if (!isLast)
        throw new WalCorruptionError(path, offset, describe(stop, 'not the last segment'));
      const next = stop.kind === 'corrupt' ? firstRecordAfter(buffer, offset, dataEnd) : -1;
      if (next !== -1) {
        const torn = dataEnd - offset <= batchBytesMax && unwrittenSector(buffer, offset, next);
        if (!torn) {
          throw new WalCorruptionError(path, offset, describe(stop, 'a valid record follows'));
        }
        tornReason = `torn write: an unwritten sector before the record at byte ${next}`;
      }
    }
    if (offset === 0) {
      // Not even a header: the creation of the segment was torn (it is the
      // last one, or the check above threw). Nothing in it was acknowledged.
      if (!isLast) throw new WalCorruptionError(path, 0, 'an empty segment that is not the last');
      await file.close();
      await fs.unlink(path);
      await fs.syncDir(dirname(path));
      const reason =
        stop !== null
          ? describe(stop, 'no header')
          : zeroTail
            ? 'zero-filled, no header'
            : 'empty file';
      const tornTail = { file: path, offsetBytes: 0, cutBytes: buffer.length, reason };
      const removed = { ...tornTail, removedFile: true };
      return { segment: null, restart: false, hardState, tornTail: removed };
    }
    let tornTail: TornTail | null = null;
    let fileBytes = buffer.length;
    if (stop !== null) {
      fileBytes = offset;
      await file.truncate(offset);
      await file.datasync();
      const cutBytes = buffer.length - offset;
      const reason = describe(stop, tornReason);
      tornTail = { file: path, offsetBytes: offset, cutBytes, reason, removedFile: false };
    }
    const segment: RecoveredSegment = {
      segmentId: name.segmentId,
      firstIndex: name.firstIndex,
      path,
      sizeBytes: offset,
      fileBytes,
      maxEntryIndex,
      holdsHardState: hardState !== null,
    };
    await file.close();
    return { segment, restart, hardState, tornTail };
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
}

/**
 * The first record of a segment must be its header, agreeing with its name
 * and the log so far. Returns whether the segment restarts the log.
 */
function checkHeader(
  path: string,
  record: WalRecord,
  name: { segmentId: number; firstIndex: LogIndex },
  log: EffectiveLog,
  isFirst: boolean,
): boolean {
  if (record.type !== 'segmentHeader') {
    throw new WalCorruptionError(path, 0, `the first record is a ${record.type}, not a header`);
  }
  const { segmentId, firstIndex } = record.segment;
  if (segmentId !== name.segmentId || firstIndex !== name.firstIndex) {
    throw new WalCorruptionError(
      path,
      0,
      `the header says segment ${segmentId} from index ${firstIndex}, the file name disagrees ` +
        '(a renamed or misplaced file)',
    );
  }
  if (record.segment.restart) log.restart(firstIndex);
  else if (isFirst) log.start(firstIndex);
  else if (firstIndex !== log.lastIndex + 1) {
    throw new WalCorruptionError(
      path,
      0,
      `the segment starts at index ${firstIndex} but the log before it ends at ${log.lastIndex}`,
    );
  }
  return record.segment.restart;
}

/** The decoder's verdict where the scan stopped, which is never `ok`. */
function stopAt(buffer: Buffer, offset: number): Exclude<DecodeResult, { kind: 'ok' }> {
  const result = decodeRecord(buffer, offset);
  if (result.kind === 'ok') fail(`the scan stopped at a valid record at ${offset}`);
  return result;
}

const zeroChunk = Buffer.alloc(64 * 1024);

/** Whether `buffer[from, to)` is all zeros; `to - from` at most `zeroChunk`'s length. */
function allZero(buffer: Buffer, from: number, to: number): boolean {
  return buffer.subarray(from, to).equals(zeroChunk.subarray(0, to - from));
}

/** One past the last non-zero byte of `buffer` (0 if all are zero). */
function endOfNonZero(buffer: Buffer): number {
  let end = buffer.length;
  while (end > 0) {
    const from = Math.max(0, end - zeroChunk.length);
    if (!allZero(buffer, from, end)) {
      while (buffer[end - 1] === 0) end--;
      return end;
    }
    end = from;
  }
  return 0;
}

/**
 * Where the first complete, verified record after `offset` and before `end`
 * (the end of the non-zero bytes) starts, or -1: a record's magic byte is
 * not zero, so none starts in a zero-filled tail.
 */
function firstRecordAfter(buffer: Buffer, offset: number, end: number): number {
  // A record starts with its checksums, so try every byte position; decoding
  // rejects a wrong magic byte at once, which keeps this cheap on garbage.
  for (let at = offset + 1; at < end; at++) {
    if (decodeRecord(buffer, at).kind === 'ok') return at;
  }
  return -1;
}

/**
 * Whether a sector ending at or before `next` is zero from `offset` (or its
 * start, if later) to its end: one a torn write over zero-filled space did
 * not reach. A sector holding bytes before `offset` held verified records
 * before this write, and zeros after them.
 */
function unwrittenSector(buffer: Buffer, offset: number, next: number): boolean {
  const firstSector = Math.floor(offset / sectorBytes) * sectorBytes;
  for (let sector = firstSector; sector + sectorBytes <= next; sector += sectorBytes) {
    if (allZero(buffer, Math.max(offset, sector), sector + sectorBytes)) return true;
  }
  return false;
}

function describe(stop: Exclude<DecodeResult, { kind: 'ok' }>, context: string): string {
  if (stop.kind === 'incomplete') {
    return `incomplete record (needs ${stop.neededBytes} bytes from here; ${context})`;
  }
  return `${stop.message} (${stop.reason}; ${context})`;
}

/**
 * The log as the records so far define it.
 * Invariant: entries hold indexes lastIndex - entries.length + 1 .. lastIndex,
 * contiguous, with terms that never decrease.
 */
class EffectiveLog {
  entries: Entry[] = [];
  lastIndex = 0;
  floorIndex = 1;

  /** Starts the log at the first segment (earlier ones were compacted away). */
  start(firstIndex: LogIndex): void {
    if (this.entries.length !== 0) fail('the log starts once');
    this.lastIndex = firstIndex - 1;
  }

  /** Restarts the log empty before `firstIndex`, never to go below it. */
  restart(firstIndex: LogIndex): void {
    this.entries = [];
    this.floorIndex = firstIndex;
    this.lastIndex = firstIndex - 1;
  }

  apply(entry: Entry, path: string, offset: number): void {
    if (entry.index < this.floorIndex) {
      const reason = `entry ${entry.index} is before the log's restart at ${this.floorIndex}`;
      throw new WalCorruptionError(path, offset, reason);
    }
    if (entry.index > this.lastIndex + 1) {
      const reason = `entry ${entry.index} leaves a gap after ${this.lastIndex}`;
      throw new WalCorruptionError(path, offset, reason);
    }
    const firstIndex = this.lastIndex - this.entries.length + 1;
    this.entries.length = Math.max(0, Math.min(this.entries.length, entry.index - firstIndex));
    const previous = this.entries[this.entries.length - 1];
    if (previous !== undefined && previous.term > entry.term) {
      const reason = `entry ${entry.index} has term ${entry.term}, below ${previous.term} before it`;
      throw new WalCorruptionError(path, offset, reason);
    }
    // Entry data is a view into the segment's buffer: copy it so the buffer can go.
    this.entries.push(
      entry.kind === 'normal' ? { ...entry, data: new Uint8Array(entry.data) } : entry,
    );
    this.lastIndex = entry.index;
  }
}
