/**
 * The file store's runtime (issue 6): uploads split into chunks that go
 * through the log, reads from the local blob store with a fetch from a
 * peer when a chunk is missing or corrupt here, and garbage collection of
 * chunks no file refers to.
 *
 * Uploads run on the leader (the HTTP layer forwards them there). Chunks
 * are proposed with a bounded window (`windowChunks` waiting to apply), so
 * an upload holds a few MiB of memory whatever its size; the manifest is
 * proposed only after every chunk applied, and makes the file visible in
 * one entry. An upload that fails half-way leaves chunks no manifest refers
 * to: invisible, and collected once older than the grace period.
 *
 * Snapshots carry the manifests, not the blobs. A node that installed a
 * snapshot (or applied a manifest whose chunks it lacks) fetches the
 * missing chunks from its peers over their admin HTTP API, verifying each
 * one's sha256; chunks it already has are never transferred again.
 */

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import {
  type BlobStore,
  CorruptBlobError,
  MissingBlobError,
  sha256Hex,
} from '../files/blob-store.js';
import { type ChunkRef, encodeFileEntry, type Precondition } from '../files/file-entry.js';
import type { FileRecord, FileTable } from '../files/file-table.js';
import type { Reply } from '../kv/reply.js';

export const chunkBytesDefault = 1024 * 1024;
export const uploadBytesMaxDefault = 5 * 1024 * 1024 * 1024;
const windowChunksDefault = 16;
const fetchTimeoutMs = 30_000;
export const gcGraceMsDefault = 60 * 60 * 1000;
export const gcIntervalMsDefault = 5 * 60 * 1000;
/** Repair rounds before giving up until the next trigger, and the pause between them. */
const repairRoundsMax = 30;
const repairRetryMs = 1_000;
/** Most chunks one garbage collection run looks at (the next run continues). */
const gcBatchMax = 100_000;

/** An expected condition of the file API; `status` is the HTTP status to answer. */
export class FileError extends Error {
  override readonly name = 'FileError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface FileHost {
  /** The current file table (a snapshot install replaces it: do not keep it). */
  table(): FileTable;
  isLeader(): boolean;
  /** Proposes an entry (leader only); the applied reply, or an error reply. */
  propose(data: Uint8Array): Promise<Reply>;
  /** Waits for a linearizable read barrier; the error reply if none could be had. */
  barrier(): Promise<Reply | null>;
  /** Admin HTTP addresses (host:port) of the other members, the leader first. */
  peerHttp(): string[];
  /** Applied bytes no saved snapshot covers yet (the log's memory); uploads wait while high. */
  backlogBytes(): number;
  /**
   * How high: above the applied bytes that start the next snapshot, and the
   * chunks in flight (see tandem-node.ts), or the upload would wait for a
   * snapshot only more writes start. It follows the snapshot trigger, which
   * grows with the state.
   */
  backlogBytesMax(): number;
  readonly log: Logger;
}

export interface UploadOptions {
  readonly contentType: string;
  readonly precondition: Precondition;
  /** The client's sha256 (hex) of the whole content, if it sent one. */
  readonly expectedSha256: string | null;
  readonly bytesMax: number;
  readonly nowMs: number;
}

export interface UploadResult {
  readonly etag: string;
  readonly size: number;
  readonly sha256: string;
  readonly chunks: number;
}

export interface FileServiceOptions {
  readonly chunkBytes?: number;
  readonly windowChunks?: number;
  readonly gcGraceMs?: number;
  /** How long an upload waits for that backlog to shrink before failing. */
  readonly backlogWaitMsMax?: number;
  /** Uploads this node (as leader) runs at once; more get a 503 (each holds up to a window of chunks). */
  readonly uploadsMax?: number;
}

const uploadsMaxDefault = 8;

const backlogWaitMsMaxDefault = 60_000;

export class FileService {
  private repairing = false;
  private repairAgain = false;
  private stopped = false;
  private collecting = false;
  readonly chunkBytes: number;
  private readonly windowChunks: number;
  readonly gcGraceMs: number;
  private readonly backlogWaitMsMax: number;
  private readonly uploadsMax: number;
  private uploads = 0;
  /** Counters for tests and metrics. */
  readonly stats = { fetched: 0, corruptFound: 0, collected: 0 };

  constructor(
    private readonly host: FileHost,
    options: FileServiceOptions = {},
  ) {
    this.chunkBytes = options.chunkBytes ?? chunkBytesDefault;
    this.windowChunks = options.windowChunks ?? windowChunksDefault;
    this.gcGraceMs = options.gcGraceMs ?? gcGraceMsDefault;
    this.backlogWaitMsMax = options.backlogWaitMsMax ?? backlogWaitMsMaxDefault;
    this.uploadsMax = options.uploadsMax ?? uploadsMaxDefault;
  }

  /**
   * Waits while the log holds too much that no snapshot covers (snapshots
   * slower than the upload); fails the upload if that lasts too long.
   */
  private async throttle(): Promise<void> {
    const deadline = Date.now() + this.backlogWaitMsMax;
    while (this.host.backlogBytes() > this.host.backlogBytesMax()) {
      if (Date.now() > deadline) {
        throw new FileError(
          503,
          `the log holds ${this.host.backlogBytes()} bytes no snapshot covers yet and did not ` +
            `shrink for ${this.backlogWaitMsMax} ms (slow disk?); nothing was stored, retry later`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  private get blobs(): BlobStore {
    return this.host.table().blobs;
  }

  /** The file at `path` as applied here; after a read barrier when `linearizable`. */
  async stat(path: string, linearizable: boolean): Promise<FileRecord | undefined> {
    if (linearizable) await this.barrier();
    return this.host.table().get(path);
  }

  async list(
    prefix: string,
    after: string,
    limit: number,
    linearizable: boolean,
  ): Promise<FileRecord[]> {
    if (linearizable) await this.barrier();
    return this.host.table().list(prefix, after, limit);
  }

  private async barrier(): Promise<void> {
    const failure = await this.host.barrier();
    if (failure !== null && failure.kind === 'error') throw new FileError(503, failure.message);
  }

  /**
   * Streams `body` into chunks through the log, then commits the manifest.
   * Leader only. Throws FileError for what the client must fix or retry.
   */
  async upload(path: string, body: AsyncIterable<Uint8Array>, o: UploadOptions) {
    if (!this.host.isLeader()) throw new FileError(503, 'this node is no longer the leader; retry');
    if (this.uploads >= this.uploadsMax) {
      throw new FileError(
        503,
        `${this.uploads} uploads are in progress, the most this node runs at once; retry shortly`,
      );
    }
    this.uploads++;
    try {
      return await this.uploadNow(path, body, o);
    } finally {
      this.uploads--;
    }
  }

  private async uploadNow(path: string, body: AsyncIterable<Uint8Array>, o: UploadOptions) {
    const whole = createHash('sha256');
    const chunks: ChunkRef[] = [];
    const window: Promise<Reply>[] = [];
    let size = 0;
    let buffer = Buffer.allocUnsafe(this.chunkBytes);
    let filled = 0;
    let failed: FileError | null = null;
    const settle = async (): Promise<void> => {
      let reply: Reply | undefined;
      try {
        reply = await window.shift();
      } catch (failure) {
        reply = { kind: 'error', message: (failure as Error).message };
      }
      if (reply !== undefined && reply.kind === 'error' && failed === null) {
        failed = new FileError(503, `the upload failed and left no file: ${reply.message}`);
      }
    };
    const flush = async (): Promise<void> => {
      await this.throttle();
      const bytes = buffer.subarray(0, filled);
      const hash = sha256Hex(bytes);
      chunks.push({ hash, size: filled });
      window.push(this.host.propose(encodeFileEntry({ kind: 'chunk', hash, bytes })));
      buffer = Buffer.allocUnsafe(this.chunkBytes);
      filled = 0;
      while (window.length >= this.windowChunks) await settle();
    };
    try {
      for await (const piece of body) {
        size += piece.length;
        if (size > o.bytesMax) {
          throw new FileError(
            413,
            `the upload exceeds the limit of ${o.bytesMax} bytes; nothing was stored`,
          );
        }
        whole.update(piece);
        let at = 0;
        while (at < piece.length) {
          const n = Math.min(piece.length - at, this.chunkBytes - filled);
          buffer.set(piece.subarray(at, at + n), filled);
          filled += n;
          at += n;
          if (filled === this.chunkBytes) await flush();
          if (failed !== null) throw failed;
        }
      }
      if (filled > 0) await flush();
    } finally {
      // Never leave proposals unobserved, whatever went wrong.
      while (window.length > 0) await settle();
    }
    if (failed !== null) throw failed;
    const sha256 = whole.digest('hex');
    if (o.expectedSha256 !== null && o.expectedSha256 !== sha256) {
      throw new FileError(
        400,
        `checksum mismatch: the content received hashes to sha256 ${sha256}, the client said ` +
          `${o.expectedSha256}; nothing was stored (resend the file)`,
      );
    }
    const reply = await this.host.propose(
      encodeFileEntry({
        kind: 'manifest',
        mtimeMs: o.nowMs,
        path,
        contentType: o.contentType,
        size,
        sha256,
        precondition: o.precondition,
        chunks,
      }),
    );
    const etag = answer(reply);
    return { etag, size, sha256, chunks: chunks.length } satisfies UploadResult;
  }

  /** Deletes `path` through the log (leader only); the deleted file's etag. */
  async remove(path: string, precondition: Precondition, nowMs: number): Promise<string> {
    if (!this.host.isLeader()) throw new FileError(503, 'this node is no longer the leader; retry');
    const reply = await this.host.propose(
      encodeFileEntry({ kind: 'delete', mtimeMs: nowMs, path, precondition }),
    );
    return answer(reply);
  }

  /**
   * Makes sure every chunk of `record` in [start, end) is stored here,
   * fetching missing ones from peers; throws FileError(503) if one cannot
   * be had. Call before sending headers so a failure is a clear status. A
   * chunk found corrupt later, while streaming, is replaced from a peer too;
   * if no peer has a good copy the response is cut short (its length then
   * does not match Content-Length, which clients report as an error).
   */
  async prepareRead(record: FileRecord, start: number, end: number): Promise<void> {
    let first = true;
    for (const c of chunksIn(record, start, end)) {
      // The first chunk is also verified (a corrupt one replaced from a peer), so a file
      // whose start no node can serve gets a status, not a broken body.
      if (first) await this.chunk(c.ref.hash);
      else if (!this.blobs.has(c.ref.hash)) await this.fetch(c.ref.hash);
      first = false;
    }
  }

  /** The bytes [start, end) of `record`, chunk by chunk, each verified. */
  async *read(record: FileRecord, start: number, end: number): AsyncIterable<Buffer> {
    for (const c of chunksIn(record, start, end)) {
      const bytes = await this.chunk(c.ref.hash);
      yield bytes.subarray(c.from, c.to);
    }
  }

  /** A verified chunk: from the local store, or from a peer when missing or corrupt here. */
  async chunk(hash: string): Promise<Buffer> {
    try {
      return await this.blobs.read(hash);
    } catch (failure) {
      if (failure instanceof CorruptBlobError) {
        this.stats.corruptFound++;
        this.host.log.error({ hash }, `${failure.message}: removing it and fetching a good copy`);
        await this.blobs.remove(hash);
      } else if (!(failure instanceof MissingBlobError)) {
        throw failure;
      }
      return this.fetch(hash);
    }
  }

  /** Files visible here. */
  fileCount(): number {
    return this.host.table().size;
  }

  /** The file at `path` as applied here (no barrier). */
  tableFile(path: string): FileRecord | undefined {
    return this.host.table().get(path);
  }

  hasChunk(hash: string): boolean {
    return this.blobs.has(hash);
  }

  /** Where a chunk is stored (tests corrupt it there). */
  blobPath(hash: string): string {
    return this.blobs.pathOf(hash);
  }

  /** A chunk for a peer: local only (never fetched further), verified. */
  localChunk(hash: string): Promise<Buffer> {
    return this.blobs.read(hash);
  }

  /** Fetches `hash` from the first peer that has a good copy, and stores it. */
  private async fetch(hash: string): Promise<Buffer> {
    const reasons: string[] = [];
    for (const peer of this.host.peerHttp()) {
      try {
        const response = await fetch(`http://${peer}/v1/internal/chunks/${hash}`, {
          signal: AbortSignal.timeout(fetchTimeoutMs),
        });
        if (!response.ok) {
          reasons.push(`${peer}: HTTP ${response.status}`);
          continue;
        }
        const bytes = Buffer.from(await response.arrayBuffer());
        if (sha256Hex(bytes) !== hash) {
          reasons.push(`${peer}: sent bytes that do not match`);
          continue;
        }
        await this.blobs.put(hash, bytes);
        this.stats.fetched++;
        return bytes;
      } catch (failure) {
        reasons.push(`${peer}: ${(failure as Error).message}`);
      }
    }
    throw new FileError(
      503,
      `chunk ${hash} is missing or corrupt on this node and no peer gave a good copy ` +
        `(${reasons.join('; ') || 'no peer known'}); retry later or read from another node`,
    );
  }

  /**
   * Fetches every chunk the file table refers to that is not stored here
   * (after a snapshot install, or a manifest whose chunks this node missed).
   * One run at a time; a request during a run causes one more run.
   */
  async repair(): Promise<void> {
    if (this.repairing) {
      this.repairAgain = true;
      return;
    }
    this.repairing = true;
    try {
      for (let round = 0; round < repairRoundsMax && !this.stopped; round++) {
        this.repairAgain = false;
        const missing = [...this.host.table().referenced()].filter((h) => !this.blobs.has(h));
        let fetched = 0;
        let failed = 0;
        for (const hash of missing) {
          if (this.stopped) return;
          try {
            await this.fetch(hash);
            fetched++;
          } catch (failure) {
            failed++;
            if (failed === 1)
              this.host.log.warn({ err: failure }, 'could not fetch a missing chunk');
          }
        }
        if (fetched > 0) this.host.log.info({ fetched }, 'fetched missing chunks from peers');
        if (failed === 0 && !this.repairAgain) return;
        await new Promise((resolve) => setTimeout(resolve, repairRetryMs));
      }
      if (!this.stopped) {
        this.host.log.error(
          { rounds: repairRoundsMax },
          'chunks are still missing here and no peer gave them; reads of those files fetch ' +
            'again, and the next repair runs with the next garbage collection',
        );
      }
    } finally {
      this.repairing = false;
    }
  }

  /** Stops background work (repair) at its next step. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * Deletes chunks no file refers to that are older than the grace period
   * (an in-progress upload's chunks are younger), and stale temp files.
   */
  async collectGarbage(nowMs: number): Promise<number> {
    if (this.collecting) return 0;
    this.collecting = true;
    try {
      const blobs = this.blobs;
      const candidates: string[] = [];
      for await (const b of blobs.list()) {
        if (b.mtimeMs > nowMs - this.gcGraceMs) continue;
        if (b.hash === '')
          await blobs.unlinkPath(b.path); // a temp file left by a crash
        else candidates.push(b.hash);
        if (candidates.length >= gcBatchMax) break;
      }
      // Taken after the listing: a file applied meanwhile keeps its chunks.
      const referenced = this.host.table().referenced();
      let removed = 0;
      for (const hash of candidates) {
        if (referenced.has(hash)) continue;
        await blobs.remove(hash);
        removed++;
      }
      this.stats.collected += removed;
      if (removed > 0) this.host.log.info({ removed }, 'collected unreferenced chunks');
      return removed;
    } finally {
      this.collecting = false;
    }
  }
}

/** How proposeEntry starts an error when the entry may or may not have been applied. */
export const unknownOutcome = 'ERR the write may or may not have been applied: ';

/** The etag of an applied file entry's reply, or the FileError it stands for. */
function answer(reply: Reply): string {
  if (reply.kind === 'simple') return reply.value;
  if (reply.kind === 'error') {
    const message = reply.message;
    if (message.startsWith('precondition ')) {
      throw new FileError(412, `precondition failed: ${message.slice('precondition '.length)}`);
    }
    if (message.startsWith('notFound ')) throw new FileError(404, message.slice(9));
    if (message.startsWith('NOSPACE')) throw new FileError(507, message);
    if (message.startsWith(unknownOutcome)) {
      throw new FileError(
        503,
        `the outcome is unknown (${message.slice(unknownOutcome.length)}): check the file ` +
          'with GET or HEAD before sending it again',
      );
    }
    throw new FileError(503, `the request failed and changed nothing: ${message}`);
  }
  throw new FileError(500, `internal: unexpected reply ${reply.kind}`);
}

interface ChunkSpan {
  readonly ref: ChunkRef;
  /** The part of the chunk inside the range, in chunk offsets. */
  readonly from: number;
  readonly to: number;
}

/** The chunks of `record` overlapping [start, end), with the overlapping part of each. */
export function* chunksIn(record: FileRecord, start: number, end: number): Iterable<ChunkSpan> {
  let offset = 0;
  for (const ref of record.chunks) {
    const chunkEnd = offset + ref.size;
    if (chunkEnd > start && offset < end) {
      yield { ref, from: Math.max(0, start - offset), to: Math.min(ref.size, end - offset) };
    }
    offset = chunkEnd;
    if (offset >= end) return;
  }
}

// The layers above node/ reach the file store's types through here.
export { CorruptBlobError, isBlobHash, MissingBlobError } from '../files/blob-store.js';
export type { Precondition } from '../files/file-entry.js';
export { normalizePath } from '../files/file-path.js';
export { type FileRecord, listLimitMax } from '../files/file-table.js';
