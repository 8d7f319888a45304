import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Reply } from '../kv/reply.js';
import {
  decodeForwardRequest,
  decodeReplyBinary,
  encodeForwardRequest,
  encodeReplyBinary,
  ForwardDecodeError,
  type ForwardRequest,
} from './forward-codec.js';

const bytes = fc.string({
  unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
  maxLength: 40,
});
const argv = fc.array(bytes, { minLength: 1, maxLength: 8 });
const db = fc.integer({ min: 0, max: 15 });

const request: fc.Arbitrary<ForwardRequest> = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), db, argv }),
  fc.record({
    kind: fc.constant('exec' as const),
    db,
    commands: fc.array(argv, { maxLength: 5 }),
    watched: fc.array(fc.record({ db, key: bytes, revision: fc.nat() }), { maxLength: 4 }),
  }),
  fc.constant({ kind: 'health' as const }),
);

const { reply } = fc.letrec<{ reply: Reply }>((tie) => ({
  reply: fc.oneof(
    { depthSize: 'small' },
    fc.record({ kind: fc.constant('simple' as const), value: bytes }),
    fc.record({ kind: fc.constant('error' as const), message: bytes }),
    fc.record({
      kind: fc.constant('integer' as const),
      value: fc.oneof(
        fc.maxSafeInteger(),
        fc
          .bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
          .filter(
            (b) => b > BigInt(Number.MAX_SAFE_INTEGER) || b < BigInt(Number.MIN_SAFE_INTEGER),
          ),
      ),
    }),
    fc.record({ kind: fc.constant('bulk' as const), value: bytes }),
    fc.constant({ kind: 'null' as const }),
    fc.constant({ kind: 'nullArray' as const }),
    fc.record({
      kind: fc.constant('array' as const),
      items: fc.array(tie('reply'), { maxLength: 4 }),
    }),
    fc.record({
      kind: fc.constant('set' as const),
      items: fc.array(tie('reply'), { maxLength: 4 }),
    }),
    fc.record({
      kind: fc.constant('push' as const),
      items: fc.array(tie('reply'), { maxLength: 4 }),
    }),
    fc.record({
      kind: fc.constant('map' as const),
      entries: fc.array(fc.tuple(tie('reply'), tie('reply')), { maxLength: 3 }),
    }),
    fc.record({ kind: fc.constant('double' as const), value: fc.double({ noNaN: true }) }),
    fc.record({ kind: fc.constant('boolean' as const), value: fc.boolean() }),
    fc.record({ kind: fc.constant('verbatim' as const), format: fc.constant('txt'), value: bytes }),
  ),
}));

describe('forward codec', () => {
  it('round-trips requests', () => {
    fc.assert(
      fc.property(request, (r) => {
        expect(decodeForwardRequest(encodeForwardRequest(r))).toEqual(r);
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips replies, bigints included', () => {
    fc.assert(
      fc.property(reply, (r) => {
        expect(decodeReplyBinary(encodeReplyBinary(r))).toEqual(r);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects truncated and garbage input with a typed error only', () => {
    fc.assert(
      fc.property(request, fc.nat(), (r, cut) => {
        const encoded = encodeForwardRequest(r);
        const truncated = encoded.subarray(0, cut % encoded.length);
        expect(() => decodeForwardRequest(truncated)).toThrow(ForwardDecodeError);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (garbage) => {
        for (const decode of [decodeForwardRequest, decodeReplyBinary]) {
          try {
            decode(garbage);
          } catch (e) {
            expect(e).toBeInstanceOf(ForwardDecodeError);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
