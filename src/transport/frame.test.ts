import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AppendMessage } from '../raft/messages.js';
import { type Entry, logIndex, nodeId, term } from '../raft/types.js';
import { decodeMessage, messageBytesEstimate, writeMessage } from './codec.js';
import { FrameError } from './errors.js';
import {
  encodeFrame,
  FrameReader,
  FrameType,
  finishFrame,
  finishFrameParts,
  outgoingBytes,
  startFrame,
} from './frame.js';
import { decodeSnapBegin, decodeSnapStart, encodeSnapBegin, encodeSnapStart } from './protocol.js';

const frameBytesMax = 1 << 20;

function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let start = 0;
  for (const p of points) {
    out.push(bytes.subarray(start, p));
    start = p;
  }
  out.push(bytes.subarray(start));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

describe('FrameReader', () => {
  it('reassembles frames however the stream is split', () => {
    const bodies = fc.array(fc.uint8Array({ maxLength: 2_000 }), { minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(bodies, fc.array(fc.nat(), { maxLength: 40 }), (bodyList, cuts) => {
        const stream = concat(bodyList.map((b) => encodeFrame(FrameType.raft, b, frameBytesMax)));
        const reader = new FrameReader(frameBytesMax);
        const got: Uint8Array[] = [];
        for (const chunk of splitAt(stream, cuts)) {
          reader.push(chunk);
          for (let f = reader.next(); f !== null; f = reader.next()) {
            expect(f.type).toBe(FrameType.raft);
            got.push(f.body);
          }
        }
        expect(got.map((b) => [...b])).toEqual(bodyList.map((b) => [...b]));
        expect(reader.pendingBytes).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('returns a frame inside one chunk as a view of it (no copy)', () => {
    const frame = encodeFrame(FrameType.raft, Uint8Array.of(1, 2, 3), frameBytesMax);
    const reader = new FrameReader(frameBytesMax);
    reader.push(frame);
    expect(reader.next()?.body.buffer).toBe(frame.buffer);
  });

  it('rejects a frame over the limit from its header alone', () => {
    const reader = new FrameReader(100);
    reader.push(Uint8Array.of(0, 0, 0, 101, FrameType.raft));
    expect(() => reader.next()).toThrow(FrameError);
    const zero = new FrameReader(100);
    zero.push(Uint8Array.of(0, 0, 0, 0, 0));
    expect(() => zero.next()).toThrow(/length 0/);
  });

  it('reads a large frame delivered in many small chunks in linear time', () => {
    const body = new Uint8Array(8 * 1024 * 1024).fill(9);
    const frame = encodeFrame(FrameType.snapChunk, body, 16 * 1024 * 1024);
    const reader = new FrameReader(16 * 1024 * 1024);
    const started = performance.now();
    for (let i = 0; i < frame.byteLength; i += 1_000) {
      reader.push(frame.subarray(i, i + 1_000));
      if (i + 1_000 < frame.byteLength) expect(reader.next()).toBeNull();
    }
    const got = reader.next();
    expect(got?.body.byteLength).toBe(body.byteLength);
    // 8,389 chunks; quadratic copying would take many seconds.
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('frames with attached blobs', () => {
  const attachMin = 64;

  it('are the same bytes as a copying writer makes, with each large blob a part of its own', () => {
    // Lengths drawn explicitly: fast-check's default size keeps arrays short.
    const blob = fc
      .tuple(fc.nat({ max: 300 }), fc.nat({ max: 255 }))
      .map(([length, fill]) => new Uint8Array(length).fill(fill));
    const blobs = fc.array(blob, { maxLength: 12 });
    fc.assert(
      fc.property(blobs, fc.nat({ max: 400 }), (blobList, estimate) => {
        // A small estimate makes the writer outgrow its buffer between attachments.
        const parted = startFrame(FrameType.raft, estimate, attachMin);
        const copied = startFrame(FrameType.raft, estimate);
        for (const [i, blob] of blobList.entries()) {
          for (const w of [parted, copied]) {
            w.varint(i * 1_000);
            w.blob(blob);
          }
        }
        const whole = finishFrame(copied, frameBytesMax);
        const frame = finishFrameParts(parted, frameBytesMax);
        const parts = frame instanceof Uint8Array ? [frame] : [...frame];
        expect([...concat(parts)]).toEqual([...whole]);
        expect(outgoingBytes(frame)).toBe(whole.byteLength);
        for (const blob of blobList) {
          // Attached: the caller's bytes themselves, not a copy.
          if (blob.byteLength >= attachMin) expect(parts).toContain(blob);
        }
        if (blobList.every((b) => b.byteLength < attachMin))
          expect(frame).toBeInstanceOf(Uint8Array);
      }),
      { numRuns: 300 },
    );
  });

  it('carry an append whose large entries are not copied, and decode to the same message', () => {
    const entries: Entry[] = [8, 5_000, 20, 70_000].map((bytes, i) => ({
      kind: 'normal',
      term: term(2),
      index: logIndex(11 + i),
      data: new Uint8Array(bytes).fill(i + 1),
    }));
    // A node id first written after an attached entry (ids are cached once written).
    entries.push({
      kind: 'conf',
      term: term(2),
      index: logIndex(15),
      change: { type: 'addLearner', node: nodeId('n-first-seen-after-attached-data') },
    });
    const m: AppendMessage = {
      type: 'append',
      from: nodeId('n1'),
      to: nodeId('n2'),
      term: term(2),
      prevIndex: logIndex(10),
      prevTerm: term(1),
      commit: logIndex(9),
      entries,
    };
    const w = startFrame(FrameType.raft, messageBytesEstimate(m, 4096), 4096);
    writeMessage(w, m);
    const frame = finishFrameParts(w, frameBytesMax);
    expect(frame).not.toBeInstanceOf(Uint8Array);
    const parts = [...(frame as readonly Uint8Array[])];
    expect(parts).toContain(entries[1]?.kind === 'normal' ? entries[1].data : null);
    expect(parts).toContain(entries[3]?.kind === 'normal' ? entries[3].data : null);
    // The frame's own buffer holds the small entries and the headers only.
    expect(messageBytesEstimate(m, 4096)).toBeLessThan(1_000);
    const reader = new FrameReader(frameBytesMax);
    for (const part of parts) reader.push(part);
    const got = reader.next();
    expect(got?.type).toBe(FrameType.raft);
    expect(decodeMessage(got?.body ?? new Uint8Array(0))).toEqual(m);
  });
});

describe('snapshot stream frames', () => {
  const message = {
    type: 'snapshot',
    from: nodeId('n1'),
    to: nodeId('n2'),
    term: term(2),
    snapshot: { index: logIndex(9), term: term(2), membership: { voters: [], learners: [] } },
  } as const;

  function body(frame: Uint8Array): { type: number; body: Uint8Array } {
    const reader = new FrameReader(frameBytesMax);
    reader.push(frame);
    const f = reader.next();
    if (f === null) throw new Error('no frame');
    return f;
  }

  it('round-trips snapBegin with and without the source size, and snapStart', () => {
    const source = { dataBytes: 2 ** 40 + 3, dataCrc: 0xfedcba98 };
    const sized = body(encodeSnapBegin(7, message, source, frameBytesMax));
    expect(sized.type).toBe(FrameType.snapBegin);
    expect(decodeSnapBegin(sized.body)).toEqual({ streamId: 7, message, source });
    const plain = body(encodeSnapBegin(8, message, null, frameBytesMax));
    expect(decodeSnapBegin(plain.body)).toEqual({ streamId: 8, message, source: null });
    const start = body(encodeSnapStart(7, 123_456, 8 * 1024 * 1024, frameBytesMax));
    expect(start.type).toBe(FrameType.snapStart);
    expect(decodeSnapStart(start.body)).toEqual({
      streamId: 7,
      offset: 123_456,
      creditBytes: 8 * 1024 * 1024,
    });
  });
});
