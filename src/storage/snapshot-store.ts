/**
 * Snapshot files (issue 3): written to a temporary file, fdatasynced, renamed
 * into place and the directory fsynced; checksummed; older ones retired;
 * readable as a stream of bounded chunks (to send to followers) and writable
 * from one (to install a snapshot received from the leader).
 *
 * A snapshot file is `<index 16 hex>-<term 16 hex>.snap`, holding the
 * application data followed by a trailer:
 *
 *   data (dataBytes)
 *   meta (metaBytes): index u64, term u64, voter count u32, voters,
 *                     learner count u32, learners (each: u16 length, UTF-8)
 *   metaBytes u32 | dataBytes u64 | data checksum u32 | format version u32
 *   | magic u32 | trailer CRC32C u32 (over meta and the fields before it)
 *
 * All integers are big-endian. The trailer sits at the end so the data can be
 * streamed in without knowing its size first. The data checksum is a CRC-32
 * (IEEE; crc32.ts, native) in format version 2, which this store writes,
 * and a CRC32C in version 1, which it still reads: opening a version 1 file
 * checks its CRC32C and computes its CRC-32 in one pass, so that readers,
 * and the streams to followers, see one kind of checksum.
 *
 * Since a `.snap` name only ever appears through the rename of a fully
 * synced temporary file, a `.snap` whose trailer does not verify is damage,
 * not a crash: it is reported, never used. Leftover `.tmp` files are ignored
 * and removed by `retire`.
 *
 * Resuming a received snapshot (issue 5): when a stream from the leader
 * breaks, `SnapshotWriter.keepPartial` keeps the bytes written so far (all
 * of them landed, in order: writes are chained and each had resolved) as
 * `<name>.snap.partial`, with the sender's size and data checksum in memory.
 * At most one partial is kept per store: keeping another, beginning to
 * receive a different snapshot, or finishing a snapshot at or past its index
 * removes it. Partials are not fsynced and do not survive a restart: `open`
 * deletes them (simple, and the bytes on disk after a crash are not known to
 * be whole). `beginReceive` of the same snapshot, same size and checksum,
 * continues it: the kept bytes are read back so that the data checksum the
 * writer computes covers the whole file, and `finish` refuses (and deletes)
 * a result whose size or checksum differs from the sender's.
 */

import { posix } from 'node:path';
import type { LogIndex, Membership, NodeId, SnapshotMeta, Term } from '../raft/types.js';
import { crc32 } from './crc32.js';
import { crc32c } from './crc32c.js';
import { type FileSystem, FsError, type FsFile } from './fs.js';

export const snapshotFormatVersion = 2;
/** The oldest format this store reads: its data checksum is a CRC32C. */
const legacyFormatVersion = 1;
/** "TSNP". */
const magic = 0x54534e50;
/** metaBytes, dataBytes (8), data crc, version, magic, trailer crc. */
const fixedTrailerBytes = 4 + 8 + 4 + 4 + 4 + 4;
const maxMetaBytes = 16 * 1024 * 1024;
const namePattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const tempSuffix = '.tmp';
const partialSuffix = '.partial';

/** Default size of the chunks `openRead` yields: 1 MiB. */
export const defaultReadChunkBytes = 1024 * 1024;

/**
 * A snapshot file that is damaged (bad trailer, bad data checksum, wrong
 * size). Never used; the operator must act.
 */
export class SnapshotCorruptionError extends Error {
  override readonly name = 'SnapshotCorruptionError';
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(
      `snapshot file ${file} is damaged: ${reason}. It will not be used. ` +
        'Stop this node; if a newer valid snapshot or the full log is still present you may move ' +
        'this file out of the data directory and restart, otherwise move the data directory aside ' +
        'and let this node rejoin the cluster as a new member (or restore from a backup).',
    );
  }
}

/**
 * A snapshot file whose verified trailer names a format this Tandem does not
 * read: written by a newer Tandem (a downgrade), not damaged. Moving it
 * aside, as the advice for damage says, would lose data that a newer
 * version reads; so this error says to run one instead.
 */
export class SnapshotFormatError extends Error {
  override readonly name = 'SnapshotFormatError';
  constructor(
    readonly file: string,
    readonly version: number,
  ) {
    super(
      `snapshot file ${file} is in format ${version}, which this Tandem does not read (it reads ` +
        `formats ${legacyFormatVersion} and ${snapshotFormatVersion}): a newer Tandem wrote it. ` +
        'The file is not damaged; do not move it away. Run this data directory with that newer ' +
        'version (or a later one).',
    );
  }
}

/**
 * Received data whose size or checksum differs from what its sender
 * announced (a damaged kept partial, or a sender that changed its file). The
 * file is deleted and never installed; receiving it again starts from 0.
 */
export class SnapshotMismatchError extends Error {
  override readonly name = 'SnapshotMismatchError';
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`received snapshot ${file} does not match its sender's: ${reason}; not installed`);
  }
}

/** What a sender announced of the snapshot data it streams. */
export interface SnapshotSourceInfo {
  readonly dataBytes: number;
  /** CRC-32 of all `dataBytes`. */
  readonly dataCrc: number;
}

/** The bytes kept of a received snapshot whose stream broke. */
export interface PartialSnapshotInfo {
  readonly index: LogIndex;
  readonly term: Term;
  readonly sender: SnapshotSourceInfo;
  readonly file: string;
  /** Bytes of data held, from the start, without holes. */
  readonly bytes: number;
}

/** What the store knows of one snapshot file, from its verified trailer. */
export interface SnapshotInfo {
  readonly meta: SnapshotMeta;
  readonly file: string;
  readonly dataBytes: number;
  /** The data checksum: a CRC-32 in format 2, a CRC32C in format 1. */
  readonly dataCrc: number;
  readonly formatVersion: number;
}

export interface SnapshotStoreOptions {
  /** Size of the chunks `openRead` yields; default 1 MiB. */
  readonly readChunkBytes?: number;
}

function toHex(value: number): string {
  return value.toString(16).padStart(16, '0');
}

/** The file name of the snapshot with this index and term. */
export function formatSnapshotName(index: LogIndex, snapshotTerm: Term): string {
  if (!(Number.isSafeInteger(index) && index >= 0)) throw new RangeError(`snapshot index ${index}`);
  if (!(Number.isSafeInteger(snapshotTerm) && snapshotTerm >= 0)) {
    throw new RangeError(`snapshot term ${snapshotTerm}`);
  }
  return `${toHex(index)}-${toHex(snapshotTerm)}.snap`;
}

/** The index and term in a snapshot file name, or null for any other name. */
export function parseSnapshotName(name: string): { index: LogIndex; term: Term } | null {
  const match = namePattern.exec(name);
  if (match === null) return null;
  const index = Number.parseInt(match[1] ?? '', 16);
  const snapshotTerm = Number.parseInt(match[2] ?? '', 16);
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(snapshotTerm))) return null;
  return { index: index as LogIndex, term: snapshotTerm as Term };
}

// --- Trailer encoding ---------------------------------------------------------

function encodeU64(out: Buffer, value: number, at: number): void {
  out.writeUInt32BE(Math.floor(value / 0x1_0000_0000), at);
  out.writeUInt32BE(value % 0x1_0000_0000, at + 4);
}

function decodeU64(from: Buffer, at: number): number {
  return from.readUInt32BE(at) * 0x1_0000_0000 + from.readUInt32BE(at + 4);
}

/** Encodes a snapshot's meta compactly (exported for tests). */
export function encodeMeta(meta: SnapshotMeta): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(16);
  encodeU64(head, meta.index, 0);
  encodeU64(head, meta.term, 8);
  parts.push(head);
  for (const list of [meta.membership.voters, meta.membership.learners]) {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(list.length, 0);
    parts.push(count);
    for (const id of list) {
      const bytes = Buffer.from(id, 'utf8');
      if (bytes.length > 0xffff) throw new RangeError(`node id of ${bytes.length} bytes`);
      const length = Buffer.alloc(2);
      length.writeUInt16BE(bytes.length, 0);
      parts.push(length, bytes);
    }
  }
  return Buffer.concat(parts);
}

/** Decodes `encodeMeta`'s output; throws a RangeError on malformed input. */
export function decodeMeta(bytes: Buffer): SnapshotMeta {
  let at = 0;
  const need = (n: number): void => {
    if (at + n > bytes.length) throw new RangeError('meta ends early');
  };
  need(16);
  const index = decodeU64(bytes, 0) as LogIndex;
  const snapshotTerm = decodeU64(bytes, 8) as Term;
  at = 16;
  const lists: NodeId[][] = [];
  for (let l = 0; l < 2; l++) {
    need(4);
    const count = bytes.readUInt32BE(at);
    at += 4;
    const list: NodeId[] = [];
    for (let i = 0; i < count; i++) {
      need(2);
      const length = bytes.readUInt16BE(at);
      at += 2;
      need(length);
      list.push(bytes.toString('utf8', at, at + length) as NodeId);
      at += length;
    }
    lists.push(list);
  }
  if (at !== bytes.length) throw new RangeError(`${bytes.length - at} bytes after the meta`);
  const membership: Membership = { voters: lists[0] ?? [], learners: lists[1] ?? [] };
  return { index, term: snapshotTerm, membership };
}

function encodeTrailer(meta: SnapshotMeta, dataBytes: number, dataCrc: number): Buffer {
  const metaBytes = encodeMeta(meta);
  const trailer = Buffer.alloc(metaBytes.length + fixedTrailerBytes);
  metaBytes.copy(trailer, 0);
  let at = metaBytes.length;
  trailer.writeUInt32BE(metaBytes.length, at);
  encodeU64(trailer, dataBytes, at + 4);
  trailer.writeUInt32BE(dataCrc >>> 0, at + 12);
  trailer.writeUInt32BE(snapshotFormatVersion, at + 16);
  trailer.writeUInt32BE(magic, at + 20);
  at += 24;
  trailer.writeUInt32BE(crc32c(trailer, 0, 0, at), at);
  return trailer;
}

/** Reads and verifies the trailer of an open snapshot file. */
async function readTrailer(file: FsFile, expected: { index: number; term: number } | null) {
  const corrupt = (reason: string): SnapshotCorruptionError =>
    new SnapshotCorruptionError(file.path, reason);
  const sizeBytes = await file.size();
  if (sizeBytes < fixedTrailerBytes) {
    throw corrupt(`${sizeBytes} bytes, too short for a snapshot trailer`);
  }
  const fixed = await file.read(sizeBytes - fixedTrailerBytes, fixedTrailerBytes);
  if (fixed.readUInt32BE(20) !== magic) throw corrupt('no snapshot trailer magic at its end');
  const metaLength = fixed.readUInt32BE(0);
  if (metaLength > maxMetaBytes || metaLength + fixedTrailerBytes > sizeBytes) {
    throw corrupt(`trailer gives an impossible meta length ${metaLength}`);
  }
  const trailerStart = sizeBytes - fixedTrailerBytes - metaLength;
  const trailer = await file.read(trailerStart, metaLength + fixedTrailerBytes);
  const crcAt = trailer.length - 4;
  if (crc32c(trailer, 0, 0, crcAt) !== trailer.readUInt32BE(crcAt)) {
    throw corrupt('trailer checksum mismatch');
  }
  const version = fixed.readUInt32BE(16);
  if (version !== snapshotFormatVersion && version !== legacyFormatVersion) {
    throw new SnapshotFormatError(file.path, version);
  }
  const dataBytes = decodeU64(fixed, 4);
  if (dataBytes !== trailerStart) {
    throw corrupt(`trailer records ${dataBytes} data bytes but the file holds ${trailerStart}`);
  }
  let meta: SnapshotMeta;
  try {
    meta = decodeMeta(trailer.subarray(0, metaLength));
  } catch (error) {
    throw corrupt(`malformed meta in the trailer (${(error as Error).message})`);
  }
  if (expected !== null && (meta.index !== expected.index || meta.term !== expected.term)) {
    throw corrupt(
      `trailer says index ${meta.index} term ${meta.term}, the file name ` +
        `index ${expected.index} term ${expected.term}`,
    );
  }
  return { meta, dataBytes, dataCrc: fixed.readUInt32BE(12), formatVersion: version };
}

/**
 * A format 1 file's data, read once: checks its CRC32C and returns its
 * CRC-32, the checksum a reader works with.
 */
async function legacyDataCrc(
  file: FsFile,
  info: Omit<SnapshotInfo, 'file'>,
  chunkBytes: number,
): Promise<number> {
  let legacy = 0;
  let crc = 0;
  for (let at = 0; at < info.dataBytes; ) {
    const length = Math.min(chunkBytes, info.dataBytes - at);
    const chunk = await file.read(at, length);
    if (chunk.length !== length) {
      throw new SnapshotCorruptionError(file.path, `file ends early at byte ${at}`);
    }
    legacy = crc32c(chunk, legacy);
    crc = crc32(chunk, crc);
    at += length;
  }
  if (legacy !== info.dataCrc) {
    throw new SnapshotCorruptionError(file.path, 'data checksum mismatch');
  }
  return crc;
}

function hex32(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

async function closeQuietly(file: FsFile): Promise<void> {
  await file.close().catch(() => undefined);
}

// --- The store ----------------------------------------------------------------

export class SnapshotStore {
  /** Verified snapshots, oldest first. */
  private snapshots: SnapshotInfo[];
  /** Temporary files of writers in progress (not to be removed by `retire`). */
  private readonly activeTemps = new Set<string>();
  /** The last `retire` call; the next one runs after it. */
  private retiring: Promise<unknown> = Promise.resolve();
  private readonly readChunkBytes: number;
  /** The one partial kept (see the file comment). */
  private partial: PartialSnapshotInfo | null = null;
  /** Keeping and taking the partial run one after the other. */
  private partialOps: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly fs: FileSystem,
    readonly dir: string,
    snapshots: SnapshotInfo[],
    options: SnapshotStoreOptions,
  ) {
    this.snapshots = snapshots;
    this.readChunkBytes = options.readChunkBytes ?? defaultReadChunkBytes;
    if (!(Number.isSafeInteger(this.readChunkBytes) && this.readChunkBytes > 0)) {
      throw new RangeError(`readChunkBytes ${this.readChunkBytes}`);
    }
  }

  /**
   * Lists and verifies the trailers of the snapshots in `dir` (created if
   * missing). Throws `SnapshotCorruptionError` naming the file if a `.snap`
   * does not verify. Data checksums are checked by `verify` and `openRead`.
   */
  static async open(
    fs: FileSystem,
    dir: string,
    options: SnapshotStoreOptions = {},
  ): Promise<SnapshotStore> {
    await fs.mkdir(dir);
    const snapshots: SnapshotInfo[] = [];
    for (const name of await fs.readdir(dir)) {
      if (
        name.endsWith(partialSuffix) &&
        parseSnapshotName(name.slice(0, -partialSuffix.length)) !== null
      ) {
        // Kept bytes of a broken transfer do not survive a restart (see the file comment).
        await fs.unlink(posix.join(dir, name));
        continue;
      }
      const parsed = parseSnapshotName(name);
      if (parsed === null) continue;
      const path = posix.join(dir, name);
      const file = await fs.open(path, 'read');
      try {
        const info = await readTrailer(file, parsed);
        snapshots.push({ ...info, file: path });
      } finally {
        await closeQuietly(file);
      }
    }
    // Names are fixed-width hex, so byte order is (index, term) order.
    return new SnapshotStore(fs, dir, snapshots, options);
  }

  /** Every verified snapshot, oldest first. */
  list(): readonly SnapshotInfo[] {
    return this.snapshots;
  }

  /** The meta of the newest snapshot, or null if there is none. */
  latest(): SnapshotMeta | null {
    return this.snapshots[this.snapshots.length - 1]?.meta ?? null;
  }

  /** What the store knows of the snapshot with `meta`'s index and term. */
  info(meta: Pick<SnapshotMeta, 'index' | 'term'>): SnapshotInfo {
    const found = this.snapshots.find(
      (s) => s.meta.index === meta.index && s.meta.term === meta.term,
    );
    if (found === undefined) {
      throw new Error(`no snapshot at index ${meta.index} term ${meta.term} in ${this.dir}`);
    }
    return found;
  }

  /**
   * Starts writing a snapshot into a temporary file. Nothing is visible until
   * `finish()` resolves; a crash before leaves at most a `.tmp` file.
   */
  async beginWrite(
    meta: SnapshotMeta,
    sender: SnapshotSourceInfo | null = null,
  ): Promise<SnapshotWriter> {
    const name = formatSnapshotName(meta.index, meta.term);
    encodeMeta(meta); // validates the ids before any file is made
    const finalPath = posix.join(this.dir, name);
    const tempPath = `${finalPath}${tempSuffix}`;
    if (this.activeTemps.has(tempPath)) {
      throw new Error(
        `a snapshot at index ${meta.index} term ${meta.term} is already being written`,
      );
    }
    this.activeTemps.add(tempPath);
    try {
      // A leftover of a crashed attempt: never reused, replaced.
      if (await this.fs.exists(tempPath)) await this.fs.unlink(tempPath);
      const file = await this.fs.open(tempPath, 'create');
      return new SnapshotWriter(this, this.fs, meta, file, tempPath, finalPath, sender);
    } catch (error) {
      this.activeTemps.delete(tempPath);
      throw error;
    }
  }

  /** The partial kept of a broken transfer, or null. */
  partialInfo(): PartialSnapshotInfo | null {
    return this.partial;
  }

  /**
   * Starts writing a snapshot received from `sender` (its announced size and
   * checksum, or null if unknown). If the kept partial is of the same
   * snapshot, size and checksum, the writer continues after its bytes
   * (`writer.dataBytes`, what the sender may skip); any other partial is
   * removed. The writer's `finish` checks the result against `sender`.
   */
  beginReceive(meta: SnapshotMeta, sender: SnapshotSourceInfo | null): Promise<SnapshotWriter> {
    const run = this.partialOps.then(() => this.beginReceiveNow(meta, sender));
    this.partialOps = run.catch(() => undefined);
    return run;
  }

  private async beginReceiveNow(
    meta: SnapshotMeta,
    sender: SnapshotSourceInfo | null,
  ): Promise<SnapshotWriter> {
    const partial = this.partial;
    this.partial = null;
    const same =
      partial !== null &&
      sender !== null &&
      partial.index === meta.index &&
      partial.term === meta.term &&
      partial.sender.dataBytes === sender.dataBytes &&
      partial.sender.dataCrc === sender.dataCrc &&
      partial.bytes <= sender.dataBytes;
    if (partial !== null && !same) await this.removeQuietly(partial.file);
    if (partial === null || !same || sender === null) return this.beginWrite(meta, sender);
    const name = formatSnapshotName(meta.index, meta.term);
    const finalPath = posix.join(this.dir, name);
    const tempPath = `${finalPath}${tempSuffix}`;
    if (this.activeTemps.has(tempPath)) {
      await this.removeQuietly(partial.file);
      return this.beginWrite(meta, sender);
    }
    this.activeTemps.add(tempPath);
    let file: FsFile | null = null;
    try {
      if (await this.fs.exists(tempPath)) await this.fs.unlink(tempPath);
      await this.fs.rename(partial.file, tempPath);
      file = await this.fs.open(tempPath, 'write');
      if ((await file.size()) < partial.bytes) throw new Error('the kept partial is short');
      await file.truncate(partial.bytes);
      // The checksum covers the kept bytes as they are on disk, so a damaged
      // partial makes `finish` fail instead of installing it.
      let crc = 0;
      for (let at = 0; at < partial.bytes; ) {
        const length = Math.min(this.readChunkBytes, partial.bytes - at);
        const chunk = await file.read(at, length);
        if (chunk.length !== length) throw new Error('the kept partial is short');
        crc = crc32(chunk, crc);
        at += length;
      }
      return new SnapshotWriter(this, this.fs, meta, file, tempPath, finalPath, sender, {
        positionBytes: partial.bytes,
        crc,
      });
    } catch {
      // Unusable (removed or short): start over.
      if (file !== null) await closeQuietly(file);
      await this.removeQuietly(tempPath);
      await this.removeQuietly(partial.file);
      this.activeTemps.delete(tempPath);
      return this.beginWrite(meta, sender);
    }
  }

  /**
   * @internal Called by a writer that keeps its bytes: replaces the partial.
   * `move` renames the writer's temporary file to `file`.
   */
  keep(info: PartialSnapshotInfo, move: () => Promise<void>): Promise<void> {
    const run = this.partialOps.then(async () => {
      const old = this.partial;
      this.partial = null;
      if (old !== null) await this.removeQuietly(old.file);
      await move();
      this.partial = info;
    });
    this.partialOps = run.catch(() => undefined);
    return run;
  }

  /** @internal The partial's file name for the snapshot written to `tempPath`. */
  partialPath(finalPath: string): string {
    return `${finalPath}${partialSuffix}`;
  }

  /** Removes the partial if it is of a snapshot at or below `index` (one was installed). */
  private dropPartialThrough(index: LogIndex): Promise<void> {
    const run = this.partialOps.then(async () => {
      const partial = this.partial;
      if (partial === null || partial.index > index) return;
      this.partial = null;
      await this.removeQuietly(partial.file);
    });
    this.partialOps = run.catch(() => undefined);
    return run;
  }

  private async removeQuietly(path: string): Promise<void> {
    await this.fs.unlink(path).catch(() => undefined);
  }

  /**
   * Opens the snapshot for streaming. The trailer is checked again now; the
   * data checksum when the last chunk has been read.
   */
  async openRead(meta: Pick<SnapshotMeta, 'index' | 'term'>): Promise<SnapshotReader> {
    const { file: path } = this.info(meta);
    const file = await this.fs.open(path, 'read');
    try {
      const info = await readTrailer(file, { index: meta.index, term: meta.term });
      const dataCrc =
        info.formatVersion === legacyFormatVersion
          ? await legacyDataCrc(file, info, this.readChunkBytes)
          : info.dataCrc;
      return new SnapshotReader({ ...info, file: path }, dataCrc, file, this.readChunkBytes);
    } catch (error) {
      await closeQuietly(file);
      throw error;
    }
  }

  /** Reads the whole snapshot; throws `SnapshotCorruptionError` if it is damaged. */
  async verify(meta: Pick<SnapshotMeta, 'index' | 'term'>): Promise<void> {
    const reader = await this.openRead(meta);
    for await (const _chunk of reader) {
      // Reading is the check.
    }
  }

  /**
   * Deletes all but the newest `keep` snapshots, and every `.tmp` file not
   * being written, then syncs the directory. Returns the names removed.
   * Calls may overlap; they run one after the other.
   */
  retire(keep = 2): Promise<string[]> {
    if (!(Number.isSafeInteger(keep) && keep >= 1)) {
      return Promise.reject(new RangeError(`retire keep ${keep}`));
    }
    // One at a time: overlapping calls would pick the same files to delete.
    const run = this.retiring.then(() => this.retireNow(keep));
    this.retiring = run.catch(() => undefined);
    return run;
  }

  private async retireNow(keep: number): Promise<string[]> {
    const removed: string[] = [];
    const old = this.snapshots.slice(0, Math.max(0, this.snapshots.length - keep));
    for (const snapshot of old) {
      await this.fs.unlink(snapshot.file);
      this.snapshots = this.snapshots.filter((s) => s !== snapshot);
      removed.push(posix.basename(snapshot.file));
    }
    for (const name of await this.fs.readdir(this.dir)) {
      const path = posix.join(this.dir, name);
      if (!name.endsWith(tempSuffix) || this.activeTemps.has(path)) continue;
      if (parseSnapshotName(name.slice(0, -tempSuffix.length)) === null) continue;
      try {
        await this.fs.unlink(path);
      } catch (error) {
        // The listing may be stale: a writer that was active when it was
        // taken has since renamed its file into place.
        if (error instanceof FsError && error.code === 'ENOENT') continue;
        throw error;
      }
      removed.push(name);
    }
    if (removed.length > 0) await this.fs.syncDir(this.dir);
    return removed;
  }

  /** @internal Called by a writer once its snapshot is durable in place. */
  async added(info: SnapshotInfo): Promise<void> {
    const rest = this.snapshots.filter(
      (s) => !(s.meta.index === info.meta.index && s.meta.term === info.meta.term),
    );
    rest.push(info);
    rest.sort((a, b) => a.meta.index - b.meta.index || a.meta.term - b.meta.term);
    this.snapshots = rest;
    // A partial of an older snapshot (or of this one) is of no use any more.
    await this.dropPartialThrough(info.meta.index);
  }

  /** @internal Called by a writer when it no longer owns its temporary file. */
  released(tempPath: string): void {
    this.activeTemps.delete(tempPath);
  }
}

type WriterState = 'open' | 'finishing' | 'done' | 'aborted' | 'failed' | 'kept';

/**
 * A writer fdatasyncs its file each time this many more bytes were written
 * (write-behind, as the WAL prepares its segments in durable 1 MiB writes),
 * so its `finish` flushes at most this much. A snapshot of a large state
 * otherwise left hundreds of MB dirty for one fdatasync at the end, and the
 * WAL's writes queued behind it on the disk: `npm run bench --
 * --value-bytes 16384 --duration-ms 8000` (about 22,000 keys of 16 KiB by
 * the end, 350 MB, computed), 3 interleaved pairs: p99
 * 50-56 ms against 108-111 ms, p999 65-66 against 143-178 ms, 2,564-3,004
 * SET/s against 2,290-3,027.
 */
export const snapshotSyncEveryBytes = 8 * 1024 * 1024;

/**
 * Streams one snapshot into its temporary file. `write` calls may overlap;
 * they land in call order. A chunk must not be changed until its `write`
 * resolves. If `finish` fails (EIO, ENOSPC), nothing may be assumed durable:
 * as for the WAL, the node should stop and recover at restart.
 */
export class SnapshotWriter {
  private state: WriterState = 'open';
  private positionBytes = 0;
  private crc = 0;
  /** The last write issued; writes are chained so they land in order. */
  private tail: Promise<void> = Promise.resolve();

  /** Writes issued and not yet resolved, and whether one failed. */
  private pendingWrites = 0;
  private writeFailed = false;

  /** @internal Made by `SnapshotStore.beginWrite` and `beginReceive`. */
  constructor(
    private readonly store: SnapshotStore,
    private readonly fs: FileSystem,
    readonly meta: SnapshotMeta,
    private readonly file: FsFile,
    readonly tempPath: string,
    readonly finalPath: string,
    /** What the sender announced; `finish` checks the result against it. */
    readonly sender: SnapshotSourceInfo | null = null,
    resumed: { readonly positionBytes: number; readonly crc: number } | null = null,
  ) {
    if (resumed !== null) {
      this.positionBytes = resumed.positionBytes;
      this.crc = resumed.crc;
    }
  }

  /** Bytes of data written so far. */
  get dataBytes(): number {
    return this.positionBytes;
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'open') {
      return Promise.reject(new Error(`snapshot writer of ${this.tempPath} is ${this.state}`));
    }
    const at = this.positionBytes;
    this.positionBytes += chunk.length;
    this.crc = crc32(chunk, this.crc);
    this.pendingWrites++;
    const syncAfter =
      Math.floor(this.positionBytes / snapshotSyncEveryBytes) >
      Math.floor(at / snapshotSyncEveryBytes);
    const next = this.tail.then(async () => {
      await this.file.write(at, chunk);
      if (syncAfter) await this.file.datasync();
    });
    this.tail = next;
    next.then(
      () => {
        this.pendingWrites--;
      },
      () => {
        this.pendingWrites--;
        this.writeFailed = true;
      },
    );
    return next;
  }

  /**
   * The stream feeding this writer broke: keeps the bytes written so far as
   * the store's partial, so that receiving the same snapshot again continues
   * after them (see the file comment). Without the sender's size and
   * checksum, with nothing written, or after a failed write, it aborts
   * instead. Resolves with whether the bytes were kept.
   */
  async keepPartial(): Promise<boolean> {
    if (this.state !== 'open') return false;
    if (this.sender === null || this.positionBytes === 0) {
      await this.abort();
      return false;
    }
    this.state = 'kept';
    await this.tail.catch(() => undefined);
    if (this.writeFailed || this.pendingWrites > 0) {
      this.state = 'open';
      await this.abort();
      return false;
    }
    const file = this.store.partialPath(this.finalPath);
    const info: PartialSnapshotInfo = {
      index: this.meta.index,
      term: this.meta.term,
      sender: this.sender,
      file,
      bytes: this.positionBytes,
    };
    try {
      await this.store.keep(info, async () => {
        await this.file.close();
        await this.fs.rename(this.tempPath, file);
      });
    } catch {
      this.state = 'open';
      await this.abort();
      return false;
    } finally {
      this.store.released(this.tempPath);
    }
    return true;
  }

  /**
   * Appends the trailer, fdatasyncs, renames into place and syncs the
   * directory. Resolves once the snapshot is durable and listed.
   */
  async finish(): Promise<SnapshotInfo> {
    if (this.state !== 'open')
      throw new Error(`snapshot writer of ${this.tempPath} is ${this.state}`);
    this.state = 'finishing';
    try {
      await this.tail;
      const sender = this.sender;
      if (
        sender !== null &&
        (sender.dataBytes !== this.positionBytes || sender.dataCrc >>> 0 !== this.crc >>> 0)
      ) {
        throw new SnapshotMismatchError(
          this.tempPath,
          `${this.positionBytes} bytes with CRC-32 ${hex32(this.crc)}, the sender's ` +
            `${sender.dataBytes} bytes with ${hex32(sender.dataCrc)}`,
        );
      }
      const trailer = encodeTrailer(this.meta, this.positionBytes, this.crc);
      await this.file.write(this.positionBytes, trailer);
      await this.file.datasync();
      await this.file.close();
      await this.fs.rename(this.tempPath, this.finalPath);
      await this.fs.syncDir(posix.dirname(this.finalPath));
    } catch (error) {
      this.state = 'failed';
      await closeQuietly(this.file);
      // Data that does not match its sender's is never kept (nor reused).
      if (error instanceof SnapshotMismatchError) {
        await this.fs.unlink(this.tempPath).catch(() => undefined);
      }
      this.store.released(this.tempPath);
      throw error;
    }
    this.state = 'done';
    this.store.released(this.tempPath);
    const info: SnapshotInfo = {
      meta: this.meta,
      file: this.finalPath,
      dataBytes: this.positionBytes,
      dataCrc: this.crc,
      formatVersion: snapshotFormatVersion,
    };
    await this.store.added(info);
    return info;
  }

  /** Gives up: closes and removes the temporary file. */
  async abort(): Promise<void> {
    if (this.state === 'done' || this.state === 'aborted' || this.state === 'kept') return;
    this.state = 'aborted';
    try {
      await this.tail.catch(() => undefined);
      await closeQuietly(this.file);
      await this.fs.unlink(this.tempPath).catch((error: unknown) => {
        if (!(error instanceof FsError && error.code === 'ENOENT')) throw error;
      });
    } finally {
      this.store.released(this.tempPath);
    }
  }
}

/**
 * One pass over a snapshot's data, in chunks of at most `readChunkBytes`.
 * The file is closed when the iteration ends (or by `close`). Throws
 * `SnapshotCorruptionError` after the last chunk if the data checksum does
 * not match, so a consumer must not act on the data before the end.
 */
export class SnapshotReader implements AsyncIterable<Uint8Array> {
  private used = false;

  /** @internal Made by `SnapshotStore.openRead`. */
  constructor(
    readonly info: SnapshotInfo,
    /** CRC-32 of the data: the trailer's (format 2), or computed on opening (format 1). */
    readonly dataCrc: number,
    private readonly file: FsFile,
    private readonly chunkBytes: number,
  ) {}

  get meta(): SnapshotMeta {
    return this.info.meta;
  }

  get dataBytes(): number {
    return this.info.dataBytes;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.chunksFrom(0);
  }

  /**
   * The data from byte `offsetBytes` on, to resume a transfer the receiver
   * holds the start of. Read from that offset, not read and skipped; so the
   * data checksum, which needs every byte, is checked only when reading
   * from 0 (a receiver checks the whole it assembles against `dataCrc`).
   * Like iterating, at most once per reader.
   */
  readFrom(offsetBytes: number): AsyncIterable<Uint8Array> {
    if (!(Number.isSafeInteger(offsetBytes) && offsetBytes >= 0)) {
      throw new RangeError(`read offset ${offsetBytes}`);
    }
    if (offsetBytes > this.info.dataBytes) {
      throw new RangeError(
        `read offset ${offsetBytes} beyond the ${this.info.dataBytes} bytes of ${this.info.file}`,
      );
    }
    return { [Symbol.asyncIterator]: () => this.chunksFrom(offsetBytes) };
  }

  private async *chunksFrom(start: number): AsyncGenerator<Uint8Array> {
    if (this.used) throw new Error(`snapshot reader of ${this.info.file} can be iterated once`);
    this.used = true;
    const checked = start === 0;
    try {
      let crc = 0;
      for (let at = start; at < this.info.dataBytes; ) {
        const length = Math.min(this.chunkBytes, this.info.dataBytes - at);
        const chunk = await this.file.read(at, length);
        if (chunk.length !== length) {
          throw new SnapshotCorruptionError(this.info.file, `file ends early at byte ${at}`);
        }
        at += length;
        if (checked) {
          crc = crc32(chunk, crc);
          if (at === this.info.dataBytes && crc !== this.dataCrc) {
            throw new SnapshotCorruptionError(this.info.file, 'data checksum mismatch');
          }
        }
        yield chunk;
      }
      if (checked && this.info.dataBytes === 0 && this.dataCrc !== 0) {
        throw new SnapshotCorruptionError(this.info.file, 'data checksum mismatch');
      }
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    this.used = true;
    await closeQuietly(this.file);
  }
}
