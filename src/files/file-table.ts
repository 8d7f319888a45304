/**
 * The replicated file metadata (issue 6): every visible file's manifest,
 * by path. Applying a manifest entry makes a file visible (or replaces it)
 * in one step, so a reader sees the old file or the new one, never a mix;
 * chunks are applied before their manifest, into the blob store.
 *
 * Determinism: apply reads no clock (the leader stamps mtimeMs) and etags
 * derive from the content hash and the entry's log index, so every node
 * gives a file the same etag.
 */

import type { BlobStore } from './blob-store.js';
import {
  type ChunkRef,
  type FileEntry,
  FileEntryError,
  FileEntryReader,
  FileEntryWriter,
  type Precondition,
  readManifestBody,
  writeManifestBody,
} from './file-entry.js';

export interface FileRecord {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  readonly contentType: string;
  readonly chunks: readonly ChunkRef[];
  readonly mtimeMs: number;
  /** Strong validator, without quotes: sha256 prefix and the manifest's log index. */
  readonly etag: string;
}

export type FileApplyResult =
  | { readonly ok: true; readonly etag: string }
  | { readonly ok: false; readonly code: 'precondition' | 'notFound'; readonly message: string };

/** Most files listed per page. */
export const listLimitMax = 1000;
/** Most files the table holds (a limit on everything; ~100 bytes + 36 per chunk each). */
export const filesMax = 10_000_000;

export class FileTable {
  private readonly files = new Map<string, FileRecord>();
  /** The keys of `files`, sorted; Invariant: same set as files.keys(). */
  private readonly sorted: string[] = [];

  constructor(readonly blobs: BlobStore) {}

  get size(): number {
    return this.files.size;
  }

  get(path: string): FileRecord | undefined {
    return this.files.get(path);
  }

  /** Up to `limit` files whose path starts with `prefix`, after `after`, in path order. */
  list(prefix: string, after: string, limit: number): FileRecord[] {
    const from = after > prefix ? after : prefix;
    let i = lowerBound(this.sorted, from);
    if (this.sorted[i] === after) i++;
    const out: FileRecord[] = [];
    const n = Math.min(limit, listLimitMax);
    for (; i < this.sorted.length && out.length < n; i++) {
      const path = this.sorted[i] as string;
      if (!path.startsWith(prefix)) break;
      const record = this.files.get(path);
      if (record !== undefined) out.push(record);
    }
    return out;
  }

  /** Every chunk hash some file refers to. */
  referenced(): Set<string> {
    const hashes = new Set<string>();
    for (const f of this.files.values()) for (const c of f.chunks) hashes.add(c.hash);
    return hashes;
  }

  /** Every file in path order (so snapshots of equal tables are byte-identical). */
  *all(): IterableIterator<FileRecord> {
    for (const path of this.sorted) {
      const record = this.files.get(path);
      if (record !== undefined) yield record;
    }
  }

  /** Applies one committed file entry. */
  apply(index: number, entry: FileEntry): FileApplyResult {
    switch (entry.kind) {
      case 'chunk':
        this.blobs.putSync(entry.hash, entry.bytes);
        return { ok: true, etag: '' };
      case 'manifest': {
        const refused = check(entry.path, this.files.get(entry.path), entry.precondition);
        if (refused !== null) return refused;
        const etag = `${entry.sha256.slice(0, 16)}-${index}`;
        this.set({
          path: entry.path,
          size: entry.size,
          sha256: entry.sha256,
          contentType: entry.contentType,
          chunks: entry.chunks,
          mtimeMs: entry.mtimeMs,
          etag,
        });
        return { ok: true, etag };
      }
      case 'delete': {
        const current = this.files.get(entry.path);
        if (current === undefined && entry.precondition.kind !== 'absent') {
          return { ok: false, code: 'notFound', message: `no file ${entry.path}` };
        }
        const refused = check(entry.path, current, entry.precondition);
        if (refused !== null) return refused;
        this.remove(entry.path);
        return { ok: true, etag: current?.etag ?? '' };
      }
    }
  }

  /** Restores a record from a snapshot (in path order). */
  set(record: FileRecord): void {
    if (!this.files.has(record.path)) {
      if (this.files.size >= filesMax) throw new FileEntryError(`more than ${filesMax} files`);
      this.sorted.splice(lowerBound(this.sorted, record.path), 0, record.path);
    }
    this.files.set(record.path, record);
  }

  private remove(path: string): void {
    if (!this.files.delete(path)) return;
    const i = lowerBound(this.sorted, path);
    if (this.sorted[i] === path) this.sorted.splice(i, 1);
  }
}

function check(path: string, current: FileRecord | undefined, p: Precondition) {
  const refused = (message: string): FileApplyResult => ({
    ok: false,
    code: 'precondition',
    message,
  });
  switch (p.kind) {
    case 'none':
      return null;
    case 'exists':
      return current === undefined ? refused(`${path} does not exist (If-Match: *)`) : null;
    case 'absent':
      return current !== undefined ? refused(`${path} exists (If-None-Match: *)`) : null;
    case 'etag':
      if (current === undefined) return refused(`${path} does not exist (If-Match)`);
      return current.etag === p.etag
        ? null
        : refused(`${path} has etag "${current.etag}", not "${p.etag}" (If-Match)`);
  }
}

function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- snapshot section ------------------------------------------------------

const sectionMagic = Buffer.from('TNDMFIL1', 'latin1');
const recordBytesMax = 64 + 4096 * 2 + 36 * (1 << 16) + 4096;

/** The files section of a snapshot: magic, u32 count, count × (u32 length, record). */
export async function* encodeFilesSection(records: readonly FileRecord[]): AsyncIterable<Buffer> {
  const head = Buffer.allocUnsafe(sectionMagic.length + 4);
  sectionMagic.copy(head);
  head.writeUInt32LE(records.length, sectionMagic.length);
  yield head;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  for (const r of records) {
    const w = new FileEntryWriter();
    writeManifestBody(w, { ...r, precondition: { kind: 'none' } });
    w.str(r.etag);
    const body = w.finish();
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(body.length);
    batch.push(len, body);
    batchBytes += 4 + body.length;
    if (batchBytes >= 256 * 1024) {
      yield Buffer.concat(batch);
      batch = [];
      batchBytes = 0;
    }
  }
  if (batch.length > 0) yield Buffer.concat(batch);
}

/**
 * Reads the files section at the start of `chunks` into `table` (absent in
 * snapshots written before files existed); returns what follows it.
 */
export async function readFilesSection(
  chunks: AsyncIterable<Uint8Array>,
  table: FileTable,
): Promise<AsyncIterable<Uint8Array>> {
  const iterator = chunks[Symbol.asyncIterator]();
  let buffered: Buffer = Buffer.alloc(0);
  let done = false;
  const fill = async (n: number): Promise<boolean> => {
    while (buffered.length < n && !done) {
      const next = await iterator.next();
      if (next.done === true) done = true;
      else buffered = Buffer.concat([buffered, next.value]);
    }
    return buffered.length >= n;
  };
  const take = (n: number): Buffer => {
    const out = buffered.subarray(0, n);
    buffered = buffered.subarray(n);
    return out;
  };
  await fill(sectionMagic.length);
  if (buffered.subarray(0, sectionMagic.length).equals(sectionMagic)) {
    take(sectionMagic.length);
    if (!(await fill(4))) throw new FileEntryError('files snapshot section: truncated');
    const count = take(4).readUInt32LE(0);
    for (let i = 0; i < count; i++) {
      if (!(await fill(4))) throw new FileEntryError('files snapshot section: truncated');
      const len = take(4).readUInt32LE(0);
      if (len > recordBytesMax) throw new FileEntryError('files snapshot section: record too big');
      if (!(await fill(len))) throw new FileEntryError('files snapshot section: truncated');
      const r = new FileEntryReader(Buffer.from(take(len)));
      const body = readManifestBody(r);
      const etag = r.str();
      r.end();
      table.set({
        path: body.path,
        size: body.size,
        sha256: body.sha256,
        contentType: body.contentType,
        chunks: body.chunks,
        mtimeMs: body.mtimeMs,
        etag,
      });
    }
  }
  const head = buffered;
  return (async function* () {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  })();
}
