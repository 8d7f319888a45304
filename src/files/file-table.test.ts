import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BlobStore, sha256Hex } from './blob-store.js';
import { decodeFileEntry, encodeFileEntry, type FileEntry, isFileEntry } from './file-entry.js';
import { encodeFilesSection, FileTable, readFilesSection } from './file-table.js';

const dirs: string[] = [];
function table(): FileTable {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-files-'));
  dirs.push(dir);
  return new FileTable(BlobStore.openSync(join(dir, 'blobs')));
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function manifest(path: string, content: string, extra: Partial<FileEntry> = {}): FileEntry {
  const bytes = Buffer.from(content);
  return {
    kind: 'manifest',
    mtimeMs: 1_700_000_000_000,
    path,
    contentType: 'text/plain',
    size: bytes.length,
    sha256: sha256Hex(bytes),
    precondition: { kind: 'none' },
    chunks: [{ hash: sha256Hex(bytes), size: bytes.length }],
    ...extra,
  } as FileEntry;
}

function roundTrip(entry: FileEntry): FileEntry {
  const data = encodeFileEntry(entry);
  expect(isFileEntry(data)).toBe(true);
  return decodeFileEntry(data);
}

describe('file entries', () => {
  it('round-trip every kind', () => {
    const bytes = Buffer.from('chunk bytes');
    const chunk: FileEntry = { kind: 'chunk', hash: sha256Hex(bytes), bytes };
    const decoded = roundTrip(chunk);
    expect(decoded.kind === 'chunk' && Buffer.from(decoded.bytes).equals(bytes)).toBe(true);
    const m = manifest('dir/é.txt', 'abc', { precondition: { kind: 'etag', etag: 'x-1' } });
    expect(roundTrip(m)).toEqual(m);
    const d: FileEntry = {
      kind: 'delete',
      mtimeMs: 5,
      path: 'a',
      precondition: { kind: 'exists' },
    };
    expect(roundTrip(d)).toEqual(d);
  });

  it('refuse truncated or inconsistent data', () => {
    const data = encodeFileEntry(manifest('a', 'abc'));
    expect(() => decodeFileEntry(data.subarray(0, data.length - 1))).toThrow(/truncated/);
    expect(() => encodeFileEntry(manifest('a', 'abc', { size: 4 }))).toThrow(/chunks hold/);
  });
});

describe('FileTable', () => {
  it('writes chunks to the blob store and makes a file visible with its manifest', () => {
    const t = table();
    const bytes = Buffer.from('abc');
    expect(t.apply(1, { kind: 'chunk', hash: sha256Hex(bytes), bytes })).toEqual({
      ok: true,
      etag: '',
    });
    expect(t.blobs.has(sha256Hex(bytes))).toBe(true);
    expect(t.get('a')).toBeUndefined();
    const result = t.apply(2, manifest('a', 'abc'));
    expect(result).toEqual({ ok: true, etag: `${sha256Hex(bytes).slice(0, 16)}-2` });
    expect(t.get('a')?.size).toBe(3);
  });

  it('checks If-Match and If-None-Match at apply', () => {
    const t = table();
    t.apply(1, manifest('a', 'v1'));
    const etag = t.get('a')?.etag ?? '';
    const stale = t.apply(2, manifest('a', 'v2', { precondition: { kind: 'etag', etag: 'no' } }));
    expect(stale.ok).toBe(false);
    expect(t.apply(3, manifest('a', 'v2', { precondition: { kind: 'etag', etag } })).ok).toBe(true);
    expect(t.apply(4, manifest('a', 'v3', { precondition: { kind: 'absent' } })).ok).toBe(false);
    expect(t.apply(5, manifest('b', 'v3', { precondition: { kind: 'exists' } })).ok).toBe(false);
    expect(t.get('a')?.sha256).toBe(sha256Hex(Buffer.from('v2')));
    const del: FileEntry = {
      kind: 'delete',
      mtimeMs: 1,
      path: 'a',
      precondition: { kind: 'none' },
    };
    expect(t.apply(6, del).ok).toBe(true);
    expect(t.apply(7, del)).toMatchObject({ ok: false, code: 'notFound' });
  });

  it('lists by prefix in pages', () => {
    const t = table();
    for (const p of ['b/2', 'a/1', 'b/1', 'b/3', 'c']) t.apply(1, manifest(p, p));
    expect(t.list('b/', '', 2).map((r) => r.path)).toEqual(['b/1', 'b/2']);
    expect(t.list('b/', 'b/2', 2).map((r) => r.path)).toEqual(['b/3']);
    expect(t.list('', '', 100).map((r) => r.path)).toEqual(['a/1', 'b/1', 'b/2', 'b/3', 'c']);
  });

  it('carries its records through a snapshot section, followed by the rest', async () => {
    const t = table();
    for (let i = 0; i < 50; i++) t.apply(i + 1, manifest(`f${i}`, `content ${i}`));
    const chunks: Uint8Array[] = [];
    for await (const c of encodeFilesSection([...t.all()])) chunks.push(c);
    chunks.push(Buffer.from('REST'));
    const restored = table();
    const rest = await readFilesSection(
      (async function* () {
        // Re-split into 7-byte pieces: the reader must not depend on chunk boundaries.
        const all = Buffer.concat(chunks);
        for (let i = 0; i < all.length; i += 7) yield all.subarray(i, i + 7);
      })(),
      restored,
    );
    const after: Buffer[] = [];
    for await (const c of rest) after.push(Buffer.from(c));
    expect(Buffer.concat(after).toString()).toBe('REST');
    expect([...restored.all()]).toEqual([...t.all()].sort((a, b) => (a.path < b.path ? -1 : 1)));
  });

  it('reads a snapshot without a files section as no files', async () => {
    const t = table();
    const rest = await readFilesSection(
      (async function* () {
        yield Buffer.from('TDKVSNAP...');
      })(),
      t,
    );
    const after: Buffer[] = [];
    for await (const c of rest) after.push(Buffer.from(c));
    expect(Buffer.concat(after).toString()).toBe('TDKVSNAP...');
    expect(t.size).toBe(0);
  });
});
