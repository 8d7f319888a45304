import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Message } from '../raft/messages.js';
import type { ConfChange, Entry, NodeId } from '../raft/types.js';
import { logIndex, nodeId, term } from '../raft/types.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { decodeMessage, encodeMessage, messageFormat } from './codec.js';
import { DecodeError } from './errors.js';

const idArb: fc.Arbitrary<NodeId> = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 20 })
  .map((s) => nodeId(s));
const smallInt = fc.integer({ min: 0, max: 1_000_000 });
const anyInt = fc.oneof(
  smallInt,
  fc.maxSafeInteger().map((n) => Math.abs(n)),
);
const dataArb = fc.uint8Array({ maxLength: 300 });

const changeArb: fc.Arbitrary<ConfChange> = fc.record({
  type: fc.constantFrom('addLearner', 'addVoter', 'removeNode'),
  node: idArb,
});

/** Entries that follow prevIndex with non-decreasing terms in [prevTerm, leaderTerm]. */
function entriesArb(
  prevIndex: number,
  prevTerm: number,
  leaderTerm: number,
): fc.Arbitrary<Entry[]> {
  return fc
    .array(
      fc.record({
        bump: fc.boolean(),
        normal: fc.boolean(),
        data: dataArb,
        change: changeArb,
      }),
      { maxLength: 20 },
    )
    .map((specs) => {
      let t = prevTerm;
      return specs.map((s, i): Entry => {
        if (s.bump && t < leaderTerm) t++;
        const base = { term: term(t), index: logIndex(prevIndex + 1 + i) };
        return s.normal
          ? { kind: 'normal', ...base, data: s.data }
          : { kind: 'conf', ...base, change: s.change };
      });
    });
}

const envelopeArb = fc
  .tuple(idArb, idArb, anyInt)
  .filter(([from, to]) => from !== to)
  .map(([from, to, t]) => ({ from, to, term: term(t) }));

const membershipArb = fc.uniqueArray(idArb, { maxLength: 12 }).chain((ids) =>
  fc.integer({ min: 0, max: ids.length }).map((split) => ({
    voters: ids.slice(0, split),
    learners: ids.slice(split),
  })),
);

const messageArb: fc.Arbitrary<Message> = envelopeArb.chain((env) => {
  const idx = anyInt.map(logIndex);
  const t = anyInt.map(term);
  const append = fc
    .tuple(smallInt, fc.integer({ min: 0, max: Math.min(env.term, 1_000_000) }), smallInt)
    .chain(([prevIndex, prevTerm, commit]) =>
      entriesArb(prevIndex, prevTerm, env.term).map(
        (entries): Message => ({
          ...env,
          type: 'append',
          prevIndex: logIndex(prevIndex),
          prevTerm: term(prevTerm),
          commit: logIndex(commit),
          entries,
        }),
      ),
    );
  return fc.oneof(
    append,
    idx.map((matchIndex): Message => ({ ...env, type: 'appendAccept', matchIndex })),
    fc.tuple(idx, idx, t).map(
      ([rejectedIndex, hintIndex, hintTerm]): Message => ({
        ...env,
        type: 'appendReject',
        rejectedIndex,
        hintIndex,
        hintTerm,
      }),
    ),
    fc
      .tuple(idx, anyInt)
      .map(([commit, seq]): Message => ({ ...env, type: 'heartbeat', commit, seq })),
    anyInt.map((seq): Message => ({ ...env, type: 'heartbeatResponse', seq })),
    fc.tuple(fc.constantFrom('vote', 'preVote' as const), idx, t, fc.boolean()).map(
      ([type, lastIndex, lastTerm, transfer]): Message => ({
        ...env,
        type,
        lastIndex,
        lastTerm,
        transfer,
      }),
    ),
    fc
      .tuple(fc.constantFrom('voteResponse', 'preVoteResponse' as const), fc.boolean())
      .map(([type, granted]): Message => ({ ...env, type, granted })),
    fc.tuple(idx, t, membershipArb).map(
      ([index, snapTerm, membership]): Message => ({
        ...env,
        type: 'snapshot',
        snapshot: { index, term: snapTerm, membership },
      }),
    ),
    fc.constant<Message>({ ...env, type: 'timeoutNow' }),
    fc
      .string({ unit: 'binary', maxLength: 40 })
      .map((context): Message => ({ ...env, type: 'readIndex', context })),
    fc
      .tuple(fc.string({ unit: 'binary', maxLength: 40 }), idx)
      .map(([context, index]): Message => ({ ...env, type: 'readIndexResponse', context, index })),
  );
});

/** Decodes, and fails the property for any exception other than DecodeError. */
function decodeOrTypedError(bytes: Uint8Array): Message | DecodeError {
  try {
    return decodeMessage(bytes);
  } catch (error) {
    if (error instanceof DecodeError) return error;
    throw error;
  }
}

describe('message codec', () => {
  it('keeps a leading U+FEFF in node ids and read contexts', () => {
    // The property below met this only about once in 300,000 strings.
    const m: Message = {
      type: 'readIndexResponse',
      from: nodeId('\uFEFFn1'),
      to: nodeId('n2'),
      term: term(1),
      context: '\uFEFF7',
      index: logIndex(3),
    };
    expect(decodeMessage(encodeMessage(m))).toEqual(m);
  });

  it('round-trips every kind of message', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        expect(decodeMessage(encodeMessage(m))).toEqual(m);
      }),
      { numRuns: 2_000 },
    );
  });

  it('covers every message type in the arbitrary', () => {
    const seen = new Set(fc.sample(messageArb, 2_000).map((m) => m.type));
    expect(seen.size).toBe(13);
  });

  it('decodes entry data as a view of the input (zero-copy)', () => {
    const data = new Uint8Array(64).fill(7);
    const m: Message = {
      type: 'append',
      from: nodeId('n1'),
      to: nodeId('n2'),
      term: term(3),
      prevIndex: logIndex(9),
      prevTerm: term(2),
      commit: logIndex(9),
      entries: [{ kind: 'normal', term: term(3), index: logIndex(10), data }],
    };
    const bytes = encodeMessage(m);
    const decoded = decodeMessage(bytes);
    expect(decoded.type === 'append' && decoded.entries[0]?.kind === 'normal').toBe(true);
    if (decoded.type === 'append' && decoded.entries[0]?.kind === 'normal') {
      expect(decoded.entries[0].data.buffer).toBe(bytes.buffer);
    }
  });

  it('throws only DecodeError on every truncation of a valid message', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const bytes = encodeMessage(m);
        for (let cut = 0; cut < bytes.byteLength; cut++) {
          expect(decodeOrTypedError(bytes.subarray(0, cut))).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('throws only DecodeError on mutated messages', () => {
    fc.assert(
      fc.property(
        messageArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (m, mutations) => {
          const bytes = encodeMessage(m).slice();
          for (const [at, value] of mutations) bytes[at % bytes.byteLength] = value;
          decodeOrTypedError(bytes);
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it('throws only DecodeError on random bytes, and never hangs', () => {
    const random = fc.uint8Array({ maxLength: 200 });
    const withHeader = random.map((tail) =>
      Uint8Array.of(messageFormat, (tail[0] ?? 0) % 14, ...tail),
    );
    fc.assert(
      fc.property(fc.oneof(random, withHeader), (bytes) => {
        decodeOrTypedError(bytes);
      }),
      { numRuns: 5_000 },
    );
  });

  it('rejects an entry count over the cap before allocating', () => {
    const w = new ByteWriter(32);
    w.u8(messageFormat);
    w.u8(1); // append
    w.string('n1', 255, 'from');
    w.string('n2', 255, 'to');
    w.varint(1);
    w.varint(0);
    w.varint(0);
    w.varint(0);
    w.varint(1_000_000_000);
    const error = decodeOrTypedError(w.finish());
    expect(error).toBeInstanceOf(DecodeError);
    expect((error as DecodeError).message).toMatch(/append.entries.count/);
  });

  it('rejects entries that do not follow prevIndex (paired check with encode)', () => {
    const m: Message = {
      type: 'append',
      from: nodeId('n1'),
      to: nodeId('n2'),
      term: term(3),
      prevIndex: logIndex(5),
      prevTerm: term(2),
      commit: logIndex(5),
      entries: [{ kind: 'normal', term: term(3), index: logIndex(7), data: new Uint8Array() }],
    };
    expect(() => encodeMessage(m)).toThrow(/invariant violated.*expected 6/);
  });

  it('rejects invalid UTF-8 in node ids and non-minimal varints', () => {
    const badUtf8 = Uint8Array.of(messageFormat, 11, 1, 0xff, 1, 0x41, 0);
    expect(decodeOrTypedError(badUtf8)).toBeInstanceOf(DecodeError);
    const r = new ByteReader(Uint8Array.of(0x80, 0x00));
    expect(() => r.varint('x')).toThrow(DecodeError);
  });

  it('reads repeated node ids from a bounded cache, exactly as decoded', () => {
    const encoded = (id: string): Uint8Array => {
      const w = new ByteWriter(32);
      w.string(id, 255, 'id');
      return w.finish();
    };
    const first = new ByteReader(encoded('n1')).internedString('id', 255);
    const again = new ByteReader(encoded('n1')).internedString('id', 255);
    expect(again).toBe('n1');
    expect(Object.is(first, again)).toBe(true);
    // Same length, other bytes; more ids than the cache holds; multi-byte UTF-8.
    const ids = Array.from({ length: 40 }, (_, i) => `n${String(i).padStart(2, '0')}é`);
    for (let round = 0; round < 3; round++) {
      for (const id of ids) expect(new ByteReader(encoded(id)).internedString('id', 255)).toBe(id);
    }
    // Bytes never decoded are checked, whatever is cached.
    const bad = Uint8Array.of(2, 0x6e, 0xff);
    expect(() => new ByteReader(bad).internedString('id', 255)).toThrow(DecodeError);
    // The length limit holds for cached strings too.
    expect(() => new ByteReader(encoded('n1')).internedString('id', 1)).toThrow(DecodeError);
  });

  it('round-trips u32 values, high bit included', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (n) => {
        const w = new ByteWriter(4);
        w.u32(n);
        expect(new ByteReader(w.finish()).u32('n')).toBe(n);
      }),
    );
  });

  it('round-trips varints up to MAX_SAFE_INTEGER and rejects larger', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        const w = new ByteWriter(8);
        w.varint(n);
        expect(new ByteReader(w.finish()).varint('n')).toBe(n);
      }),
    );
    const tooBig = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f);
    expect(() => new ByteReader(tooBig).varint('n')).toThrow(DecodeError);
  });
});
