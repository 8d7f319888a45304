import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../raft/assert.js';
import type { ConfChange, Entry, HardState } from '../raft/types.js';
import { logIndex, nodeId, term } from '../raft/types.js';
import { crc32c } from './crc32c.js';
import {
  decodeRecord,
  decodeRecords,
  encodeRecord,
  encodeRecords,
  recordBytes,
  recordHeaderBytes,
  recordPayloadBytesMax,
  type WalRecord,
} from './record.js';

const safeIntArb = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
// Small and huge values both: the u64 split into two words must hold at both ends.
const positionArb = fc.oneof(fc.integer({ min: 0, max: 1000 }), safeIntArb);
const indexArb = positionArb.filter((n) => n >= 1).map(logIndex);
const termArb = positionArb.map(term);
const nodeIdArb = (minLength: number) =>
  fc
    .string({ unit: 'grapheme', minLength, maxLength: 24 })
    .filter((s) => Buffer.byteLength(s, 'utf8') <= 255)
    .map(nodeId);

const changeArb: fc.Arbitrary<ConfChange> = fc.record({
  type: fc.constantFrom('addLearner', 'addVoter', 'removeNode'),
  node: nodeIdArb(1),
});

const entryArb: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({
    kind: fc.constant('normal' as const),
    term: termArb,
    index: indexArb,
    data: fc.uint8Array({ maxLength: 200 }),
  }),
  fc.record({
    kind: fc.constant('conf' as const),
    term: termArb,
    index: indexArb,
    change: changeArb,
  }),
);

const hardStateArb: fc.Arbitrary<HardState> = fc.record({
  term: termArb,
  vote: nodeIdArb(0),
  commit: positionArb.map(logIndex),
});

const recordArb: fc.Arbitrary<WalRecord> = fc.oneof(
  entryArb.map((entry) => ({ type: 'entry' as const, entry })),
  hardStateArb.map((hardState) => ({ type: 'hardState' as const, hardState })),
  fc
    .record({ segmentId: safeIntArb, firstIndex: indexArb, restart: fc.boolean() })
    .map((segment) => ({ type: 'segmentHeader' as const, segment })),
);

/** Decoded entry data is a Buffer view; compare contents, not classes. */
function plain(record: WalRecord): WalRecord {
  if (record.type !== 'entry' || record.entry.kind !== 'normal') return record;
  return { type: 'entry', entry: { ...record.entry, data: Uint8Array.from(record.entry.data) } };
}

const normal = (index: number, data: number[]): WalRecord => ({
  type: 'entry',
  entry: { kind: 'normal', index: logIndex(index), term: term(2), data: Uint8Array.from(data) },
});

describe('record codec properties', () => {
  it('decode(encode(x)) == x', () => {
    fc.assert(
      fc.property(recordArb, (record) => {
        const buffer = encodeRecords([record]);
        expect(buffer.length).toBe(recordBytes(record));
        const result = decodeRecord(buffer, 0);
        expect(result.kind).toBe('ok');
        if (result.kind !== 'ok') return;
        expect(result.bytes).toBe(buffer.length);
        expect(plain(result.record)).toEqual(plain(record));
      }),
      { numRuns: 1000 },
    );
  });

  it('detects every single flipped bit as corrupt', () => {
    fc.assert(
      fc.property(recordArb, fc.nat(), (record, seed) => {
        const buffer = encodeRecords([record]);
        const bit = seed % (buffer.length * 8);
        buffer[bit >>> 3] = (buffer[bit >>> 3] ?? 0) ^ (1 << (bit & 7));
        const result = decodeRecord(buffer, 0);
        expect(result.kind).toBe('corrupt');
        if (result.kind === 'corrupt') expect(result.offset).toBe(0);
      }),
      { numRuns: 2000 },
    );
  });

  it('detects a flip of any bit of the header, in every position', () => {
    fc.assert(
      fc.property(recordArb, (record) => {
        const clean = encodeRecords([record]);
        for (let bit = 0; bit < recordHeaderBytes * 8; bit++) {
          const buffer = Buffer.from(clean);
          buffer[bit >>> 3] = (buffer[bit >>> 3] ?? 0) ^ (1 << (bit & 7));
          expect(decodeRecord(buffer, 0).kind).toBe('corrupt');
        }
      }),
      { numRuns: 100 },
    );
  });

  it('decodes every proper prefix as incomplete', () => {
    fc.assert(
      fc.property(recordArb, (record) => {
        const buffer = encodeRecords([record]);
        for (let length = 0; length < buffer.length; length++) {
          const result = decodeRecord(buffer.subarray(0, length), 0);
          expect(result.kind).toBe('incomplete');
          if (result.kind === 'incomplete') expect(result.neededBytes).toBeGreaterThan(length);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('decodes concatenated records in order', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 20 }), (records) => {
        const buffer = encodeRecords(records);
        const scan = decodeRecords(buffer);
        expect(scan.stop).toEqual({ kind: 'end' });
        expect(scan.validBytes).toBe(buffer.length);
        expect(scan.records.map(plain)).toEqual(records.map(plain));
      }),
      { numRuns: 300 },
    );
  });

  it('stops a scan at a torn last record, keeping the ones before', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: 10 }),
        fc.nat(),
        (records, cut) => {
          const buffer = encodeRecords(records);
          const lastBytes = recordBytes(records[records.length - 1] as WalRecord);
          const keptBytes = buffer.length - lastBytes;
          const torn = buffer.subarray(0, keptBytes + 1 + (cut % (lastBytes - 1)));
          const scan = decodeRecords(torn);
          expect(scan.stop.kind).toBe('incomplete');
          expect(scan.validBytes).toBe(keptBytes);
          expect(scan.records.map(plain)).toEqual(records.slice(0, -1).map(plain));
        },
      ),
    );
  });

  it('encodes at an offset inside a larger buffer', () => {
    fc.assert(
      fc.property(recordArb, fc.nat(64), (record, offset) => {
        const buffer = Buffer.alloc(offset + recordBytes(record) + 7, 0xee);
        expect(encodeRecord(record, buffer, offset)).toBe(recordBytes(record));
        const result = decodeRecord(buffer, offset);
        expect(result.kind === 'ok' && result.bytes).toBe(recordBytes(record));
      }),
    );
  });
});

describe('record codec examples', () => {
  it('keeps its on-disk format (golden bytes)', () => {
    const bytes = encodeRecords([normal(7, [0xab, 0xcd])]);
    // crc(header) crc(payload) magic type reserved length index term payload
    expect(bytes.toString('hex')).toBe(
      '7f4c4d82' +
        '1f6f7fa0' +
        'd1' +
        '01' +
        '0000' +
        '02000000' +
        '0700000000000000' +
        '0200000000000000' +
        'abcd',
    );
    expect(bytes.readUInt32LE(4)).toBe(crc32c(Uint8Array.from([0xab, 0xcd])));
    expect(bytes.readUInt32LE(0)).toBe(crc32c(bytes, 0, 4, 32));
  });

  it('round-trips a conf change and a hard state with a non-ASCII vote', () => {
    const records: WalRecord[] = [
      {
        type: 'entry',
        entry: {
          kind: 'conf',
          index: logIndex(3),
          term: term(1),
          change: { type: 'addVoter', node: nodeId('n4') },
        },
      },
      {
        type: 'hardState',
        hardState: { term: term(5), vote: nodeId('nœud-é'), commit: logIndex(3) },
      },
      { type: 'hardState', hardState: { term: term(0), vote: nodeId(''), commit: logIndex(0) } },
    ];
    expect(decodeRecords(encodeRecords(records)).records).toEqual(records);
  });

  it('reports zero-filled space as corrupt (bad magic), not as a record', () => {
    const result = decodeRecord(Buffer.alloc(64), 0);
    expect(result).toMatchObject({ kind: 'corrupt', offset: 0, reason: 'magic' });
  });

  it('rejects a length over the maximum as corrupt, without allocating it', () => {
    const buffer = encodeRecords([normal(1, [1, 2, 3])]);
    buffer.writeUInt32LE(recordPayloadBytesMax + 1, 12);
    buffer.writeUInt32LE(crc32c(buffer, 0, 4, 32), 0); // a header the checksum vouches for
    expect(decodeRecord(buffer, 0)).toMatchObject({ kind: 'corrupt', reason: 'length' });
  });

  it('rejects an index beyond 2^53 and an unknown type', () => {
    const huge = encodeRecords([normal(1, [])]);
    huge.writeUInt32LE(0xffffffff, 20);
    huge.writeUInt32LE(crc32c(huge, 0, 4, 32), 0);
    expect(decodeRecord(huge, 0)).toMatchObject({ kind: 'corrupt', reason: 'position' });
    const unknown = encodeRecords([normal(1, [])]);
    unknown[9] = 9;
    unknown.writeUInt32LE(crc32c(unknown, 0, 4, 32), 0);
    expect(decodeRecord(unknown, 0)).toMatchObject({ kind: 'corrupt', reason: 'type' });
  });

  it('reports the offset of a corrupt record within a scan', () => {
    const buffer = encodeRecords([normal(1, [1]), normal(2, [2]), normal(3, [3])]);
    const second = recordHeaderBytes + 1;
    buffer[second + recordHeaderBytes] = 0x99; // the second record's payload
    const scan = decodeRecords(buffer);
    expect(scan.records).toHaveLength(1);
    expect(scan.stop).toMatchObject({ kind: 'corrupt', offset: second, reason: 'payloadChecksum' });
  });

  it('asserts on encoding what decoding would reject', () => {
    const tooLongId = nodeId('x'.repeat(256));
    const bad: WalRecord[] = [
      normal(0, []),
      { type: 'hardState', hardState: { term: term(1), vote: tooLongId, commit: logIndex(0) } },
      {
        type: 'entry',
        entry: {
          kind: 'conf',
          index: logIndex(1),
          term: term(1),
          change: { type: 'addVoter', node: nodeId('') },
        },
      },
      {
        type: 'entry',
        entry: { kind: 'normal', index: logIndex(1), term: term(-1), data: new Uint8Array() },
      },
      {
        type: 'entry',
        entry: { kind: 'normal', index: logIndex(1.5), term: term(1), data: new Uint8Array() },
      },
      { type: 'segmentHeader', segment: { segmentId: 1, firstIndex: logIndex(0), restart: false } },
    ];
    for (const record of bad) expect(() => encodeRecords([record])).toThrow(AssertionError);
  });

  it('asserts on a record over recordBytesMax before touching the buffer', () => {
    const data = new Uint8Array(recordPayloadBytesMax + 1);
    const record: WalRecord = {
      type: 'entry',
      entry: { kind: 'normal', index: logIndex(1), term: term(1), data },
    };
    expect(() => encodeRecord(record, Buffer.alloc(16), 0)).toThrow(/exceeds recordBytesMax/);
  });
});
