/**
 * Log entries of the file store (issue 6). They share the log with the kv
 * and member entries and start with `fileEntryTag`, a byte neither of those
 * starts with (kv entries start with their version, 1; member entries 0xc1).
 *
 * Layout: u8 tag 0xc2, u8 version 1, u8 kind, then per kind:
 * - chunk: 32-byte sha256, u32 length, the bytes;
 * - manifest: f64 mtimeMs, path, content type, f64 size, 32-byte sha256,
 *   precondition, u32 chunk count × (32-byte sha256, u32 size);
 * - delete: f64 mtimeMs, path, precondition.
 * Strings are a u16 byte length and UTF-8. A precondition is u8 kind
 * (0 none, 1 the file exists, 2 it does not, 3 its etag is) and, for 3, the
 * etag string.
 */

import { blobBytesMax } from './blob-store.js';
import { pathBytesMax } from './file-path.js';

export const fileEntryTag = 0xc2;
const formatVersion = 1;
/** A file has at most this many chunks (5 GiB in 1 MiB chunks, with room). */
export const chunksPerFileMax = 1 << 16;
const stringBytesMax = 4096;

export class FileEntryError extends Error {
  override readonly name = 'FileEntryError';
}

export type Precondition =
  | { readonly kind: 'none' }
  | { readonly kind: 'exists' }
  | { readonly kind: 'absent' }
  | { readonly kind: 'etag'; readonly etag: string };

export interface ChunkRef {
  readonly hash: string;
  readonly size: number;
}

export type FileEntry =
  | { readonly kind: 'chunk'; readonly hash: string; readonly bytes: Uint8Array }
  | {
      readonly kind: 'manifest';
      readonly mtimeMs: number;
      readonly path: string;
      readonly contentType: string;
      readonly size: number;
      readonly sha256: string;
      readonly precondition: Precondition;
      readonly chunks: readonly ChunkRef[];
    }
  | {
      readonly kind: 'delete';
      readonly mtimeMs: number;
      readonly path: string;
      readonly precondition: Precondition;
    };

const kindCodes = { chunk: 1, manifest: 2, delete: 3 } as const;
const preconditionCodes = { none: 0, exists: 1, absent: 2, etag: 3 } as const;

export function isFileEntry(data: Uint8Array): boolean {
  return data.length > 0 && data[0] === fileEntryTag;
}

class Writer {
  readonly parts: Buffer[] = [];
  u8(v: number): void {
    this.parts.push(Buffer.from([v]));
  }
  u16(v: number): void {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16LE(v);
    this.parts.push(b);
  }
  u32(v: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
  }
  f64(v: number): void {
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleLE(v);
    this.parts.push(b);
  }
  hash(hex: string): void {
    const b = Buffer.from(hex, 'hex');
    if (b.length !== 32) throw new RangeError(`not a sha256: ${hex}`);
    this.parts.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    if (b.length > stringBytesMax) throw new RangeError(`string of ${b.length} bytes too long`);
    this.u16(b.length);
    this.parts.push(b);
  }
  raw(b: Uint8Array): void {
    this.parts.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }
  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

class Reader {
  private pos = 0;
  private readonly buf: Buffer;
  constructor(data: Uint8Array) {
    this.buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new FileEntryError('file entry: truncated');
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  hash(): string {
    this.need(32);
    const v = this.buf.toString('hex', this.pos, this.pos + 32);
    this.pos += 32;
    return v;
  }
  str(): string {
    const n = this.u16();
    if (n > stringBytesMax) throw new FileEntryError('file entry: string too long');
    this.need(n);
    const v = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new FileEntryError('file entry: trailing bytes');
  }
}

function writePrecondition(w: Writer, p: Precondition): void {
  w.u8(preconditionCodes[p.kind]);
  if (p.kind === 'etag') w.str(p.etag);
}

function readPrecondition(r: Reader): Precondition {
  const code = r.u8();
  if (code === 0) return { kind: 'none' };
  if (code === 1) return { kind: 'exists' };
  if (code === 2) return { kind: 'absent' };
  if (code === 3) return { kind: 'etag', etag: r.str() };
  throw new FileEntryError(`file entry: unknown precondition ${code}`);
}

/** The manifest's fields after the tag bytes; shared with the snapshot section. */
export function writeManifestBody(w: Writer, m: Omit<FileEntry & { kind: 'manifest' }, 'kind'>) {
  if (!Number.isSafeInteger(m.size) || m.size < 0) throw new RangeError(`bad size ${m.size}`);
  if (m.chunks.length > chunksPerFileMax) throw new RangeError('too many chunks');
  w.f64(m.mtimeMs);
  w.str(m.path);
  w.str(m.contentType);
  w.f64(m.size);
  w.hash(m.sha256);
  writePrecondition(w, m.precondition);
  w.u32(m.chunks.length);
  let total = 0;
  for (const c of m.chunks) {
    w.hash(c.hash);
    w.u32(c.size);
    total += c.size;
  }
  // Paired check: the chunks add up to the size (checked again on decode).
  if (total !== m.size) throw new RangeError(`chunks hold ${total} bytes, size says ${m.size}`);
}

function readManifestBody(r: Reader): Omit<FileEntry & { kind: 'manifest' }, 'kind'> {
  const mtimeMs = r.f64();
  const path = r.str();
  const contentType = r.str();
  const size = r.f64();
  const sha256 = r.hash();
  const precondition = readPrecondition(r);
  const n = r.u32();
  if (n > chunksPerFileMax) throw new FileEntryError(`file entry: ${n} chunks`);
  const chunks: ChunkRef[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const hash = r.hash();
    const chunkSize = r.u32();
    if (chunkSize > blobBytesMax) throw new FileEntryError('file entry: chunk too big');
    chunks.push({ hash, size: chunkSize });
    total += chunkSize;
  }
  if (!Number.isSafeInteger(size) || total !== size || Buffer.byteLength(path) > pathBytesMax) {
    throw new FileEntryError(`file entry: manifest of ${path} is inconsistent`);
  }
  return { mtimeMs, path, contentType, size, sha256, precondition, chunks };
}

export function encodeFileEntry(entry: FileEntry): Uint8Array {
  const w = new Writer();
  w.u8(fileEntryTag);
  w.u8(formatVersion);
  w.u8(kindCodes[entry.kind]);
  switch (entry.kind) {
    case 'chunk':
      if (entry.bytes.length > blobBytesMax) throw new RangeError('chunk too big');
      w.hash(entry.hash);
      w.u32(entry.bytes.length);
      w.raw(entry.bytes);
      break;
    case 'manifest':
      writeManifestBody(w, entry);
      break;
    case 'delete':
      w.f64(entry.mtimeMs);
      w.str(entry.path);
      writePrecondition(w, entry.precondition);
      break;
  }
  return w.finish();
}

/** Decodes a file entry; throws FileEntryError for anything malformed (a bug or corruption). */
export function decodeFileEntry(data: Uint8Array): FileEntry {
  const r = new Reader(data);
  if (r.u8() !== fileEntryTag) throw new FileEntryError('not a file entry');
  const version = r.u8();
  if (version !== formatVersion) throw new FileEntryError(`file entry: version ${version}`);
  const kind = r.u8();
  let entry: FileEntry;
  if (kind === kindCodes.chunk) {
    const hash = r.hash();
    const n = r.u32();
    if (n > blobBytesMax) throw new FileEntryError('file entry: chunk too big');
    entry = { kind: 'chunk', hash, bytes: r.bytes(n) };
  } else if (kind === kindCodes.manifest) {
    entry = { kind: 'manifest', ...readManifestBody(r) };
  } else if (kind === kindCodes.delete) {
    const mtimeMs = r.f64();
    const path = r.str();
    entry = { kind: 'delete', mtimeMs, path, precondition: readPrecondition(r) };
  } else {
    throw new FileEntryError(`file entry: unknown kind ${kind}`);
  }
  r.end();
  return entry;
}

export { Reader as FileEntryReader, readManifestBody, Writer as FileEntryWriter };
