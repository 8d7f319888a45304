import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptDataError } from '../kv/index.js';
import { collect } from '../storage/chunks.test-util.js';
import {
  decodeMemberEntry,
  encodeMemberEntry,
  encodeSnapshotHeader,
  isMemberEntry,
  type MemberRecord,
  MemberRegistry,
  readSnapshotHeader,
} from './member-registry.js';

const record = (id: string, port = 9379): MemberRecord => ({
  id,
  peer: `127.0.0.1:${port}`,
  resp: '127.0.0.1:7379',
  http: '127.0.0.1:8379',
  incarnation: `inc-${id}`,
});

const recordArb = fc.record({
  id: fc.string({ minLength: 1, maxLength: 20 }),
  peer: fc.string({ minLength: 1, maxLength: 40 }),
  resp: fc.string({ maxLength: 40 }),
  http: fc.string({ maxLength: 40 }),
  incarnation: fc.string({ maxLength: 40 }),
});

async function* chunked(data: Uint8Array, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (const size of sizes) {
    if (at >= data.length) return;
    yield data.subarray(at, at + size);
    at += size;
  }
  if (at < data.length) yield data.subarray(at);
}

describe('member entries', () => {
  it('round-trip any record or removal, and never look like a kv entry', () => {
    fc.assert(
      fc.property(recordArb, (r) => {
        const set = encodeMemberEntry({ kind: 'set', record: r });
        expect(isMemberEntry(set)).toBe(true);
        expect(set[0]).not.toBe(1); // the kv entry format version
        expect(decodeMemberEntry(set)).toEqual({ kind: 'set', record: r });
        const removal = encodeMemberEntry({ kind: 'delete', id: r.id });
        expect(decodeMemberEntry(removal)).toEqual({ kind: 'delete', id: r.id });
      }),
    );
  });

  it('rejects malformed entries with CorruptDataError', () => {
    const bad = [
      Buffer.from([0xc1]),
      Buffer.from([0xc1, ...Buffer.from('{"kind":"set","record":{"id":"a"}}')]),
      Buffer.from([0xc1, ...Buffer.from('{"kind":"nope"}')]),
      Buffer.from([0x01, ...Buffer.from('{}')]),
    ];
    for (const data of bad) expect(() => decodeMemberEntry(data)).toThrow(CorruptDataError);
  });

  it('refuses a record over the size bound', () => {
    const huge = { ...record('a'), http: 'x'.repeat(5000) };
    expect(() => encodeMemberEntry({ kind: 'set', record: huge })).toThrow(/limited to/);
  });
});

describe('snapshot header', () => {
  it('round-trips the registry and leaves the kv image intact, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(recordArb, { selector: (r) => r.id, maxLength: 5 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 20 }),
        async (records, image, sizes) => {
          const registry = new MemberRegistry();
          for (const r of records) registry.set(r);
          const whole = Buffer.concat([encodeSnapshotHeader(registry), image]);
          const read = await readSnapshotHeader(chunked(whole, sizes));
          expect(read.registry.all()).toEqual(registry.all());
          expect(await collect(read.rest)).toEqual(Buffer.from(image));
        },
      ),
    );
  });

  it('reads a bare kv image (no header) as an empty registry and the whole image', async () => {
    const image = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    const read = await readSnapshotHeader(chunked(image, [3, 3]));
    expect(read.registry.size).toBe(0);
    expect(await collect(read.rest)).toEqual(image);
    const empty = await readSnapshotHeader(chunked(Buffer.alloc(0), []));
    expect(await collect(empty.rest)).toEqual(Buffer.alloc(0));
  });

  it('reports a truncated header', async () => {
    const registry = new MemberRegistry();
    registry.set(record('n1'));
    const header = encodeSnapshotHeader(registry);
    const cut = header.subarray(0, header.length - 3);
    await expect(readSnapshotHeader(chunked(cut, [5]))).rejects.toThrow(/truncated/);
  });

  it('keeps records in id order, so equal registries encode equal bytes', () => {
    const a = new MemberRegistry();
    const b = new MemberRegistry();
    for (const id of ['n3', 'n1', 'n2']) a.set(record(id));
    for (const id of ['n2', 'n3', 'n1']) b.set(record(id));
    expect(Buffer.from(encodeSnapshotHeader(a))).toEqual(Buffer.from(encodeSnapshotHeader(b)));
  });
});
