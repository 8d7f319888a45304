import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { sha256Hex } from './blob-store.js';
import { decodeFileEntry, encodeFileEntry, type FileEntry, FileEntryError } from './file-entry.js';

const hash = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => Buffer.from(b).toString('hex'));
const text = fc.string({ maxLength: 40 });
const precondition = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.constant({ kind: 'exists' as const }),
  fc.constant({ kind: 'absent' as const }),
  fc.record({ kind: fc.constant('etag' as const), etag: text }),
);
const chunks = fc.array(fc.record({ hash, size: fc.integer({ min: 0, max: 4 * 1024 * 1024 }) }), {
  maxLength: 8,
});

const entryArb: fc.Arbitrary<FileEntry> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => {
    const bytes = Buffer.from(b);
    return { kind: 'chunk' as const, hash: sha256Hex(bytes), bytes };
  }),
  fc
    .record({
      mtimeMs: fc.integer({ min: 0, max: 2 ** 50 }),
      path: text,
      contentType: text,
      sha256: hash,
      precondition,
      chunks,
    })
    .map((m) => ({
      kind: 'manifest' as const,
      ...m,
      size: m.chunks.reduce((sum, c) => sum + c.size, 0),
    })),
  fc.record({
    kind: fc.constant('delete' as const),
    mtimeMs: fc.integer({ min: 0, max: 2 ** 50 }),
    path: text,
    precondition,
  }),
);

function normalize(e: FileEntry): unknown {
  return e.kind === 'chunk' ? { ...e, bytes: Buffer.from(e.bytes).toString('hex') } : e;
}

describe('file entry codec (property)', () => {
  test('decode(encode(e)) equals e', () => {
    fc.assert(
      fc.property(entryArb, (e) => {
        expect(normalize(decodeFileEntry(encodeFileEntry(e)))).toEqual(normalize(e));
      }),
    );
  });

  test('every strict prefix of an encoding is refused as corrupt, never misread', () => {
    fc.assert(
      fc.property(entryArb, fc.nat(), (e, cut) => {
        const data = encodeFileEntry(e);
        const n = cut % data.length;
        expect(() => decodeFileEntry(data.subarray(0, n))).toThrow(FileEntryError);
      }),
    );
  });
});
