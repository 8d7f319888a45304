import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { array, bulk, error, integer, nullArray, nullReply, ok, type Reply } from '../kv/reply.js';
import { formatDouble } from './double.js';
import { encodeCommand, encodeReply, type Protocol, ReplyWriter } from './encoder.js';
import { decodeReplies } from './reply-decoder.test-util.js';

function wire(reply: Reply, protocol: Protocol): string {
  return encodeReply(reply, protocol).toString('latin1');
}

const binary = (bytes: number[]): string => Buffer.from(bytes).toString('latin1');

describe('encoder: exact bytes per reply kind', () => {
  const cases: readonly (readonly [string, Reply, string, string])[] = [
    ['ok', ok, '+OK\r\n', '+OK\r\n'],
    ['simple', { kind: 'simple', value: 'PONG' }, '+PONG\r\n', '+PONG\r\n'],
    ['error', error('ERR syntax error'), '-ERR syntax error\r\n', '-ERR syntax error\r\n'],
    ['error with newlines', error('ERR a\r\nb\nc'), '-ERR a  b c\r\n', '-ERR a  b c\r\n'],
    ['integer 0', integer(0), ':0\r\n', ':0\r\n'],
    ['integer 255', integer(255), ':255\r\n', ':255\r\n'],
    ['integer negative', integer(-42), ':-42\r\n', ':-42\r\n'],
    ['integer 2^31', integer(2 ** 31), ':2147483648\r\n', ':2147483648\r\n'],
    ['integer max safe', integer(2 ** 53 - 1), ':9007199254740991\r\n', ':9007199254740991\r\n'],
    [
      'integer bigint',
      integer(-(2n ** 63n)),
      ':-9223372036854775808\r\n',
      ':-9223372036854775808\r\n',
    ],
    ['bulk', bulk('hello'), '$5\r\nhello\r\n', '$5\r\nhello\r\n'],
    ['bulk empty', bulk(''), '$0\r\n\r\n', '$0\r\n\r\n'],
    ['bulk binary', bulk(binary([0, 13, 10, 255])), '$4\r\n\0\r\n\xff\r\n', '$4\r\n\0\r\n\xff\r\n'],
    ['null', nullReply, '$-1\r\n', '_\r\n'],
    ['nullArray', nullArray, '*-1\r\n', '_\r\n'],
    ['array empty', array([]), '*0\r\n', '*0\r\n'],
    ['array', array([integer(1), bulk('a')]), '*2\r\n:1\r\n$1\r\na\r\n', '*2\r\n:1\r\n$1\r\na\r\n'],
    [
      'map',
      { kind: 'map', entries: [[bulk('k'), integer(1)]] },
      '*2\r\n$1\r\nk\r\n:1\r\n',
      '%1\r\n$1\r\nk\r\n:1\r\n',
    ],
    ['set', { kind: 'set', items: [bulk('x')] }, '*1\r\n$1\r\nx\r\n', '~1\r\n$1\r\nx\r\n'],
    ['double', { kind: 'double', value: 1.5 }, '$3\r\n1.5\r\n', ',1.5\r\n'],
    ['double 1e20', { kind: 'double', value: 1e20 }, '$5\r\n1e+20\r\n', ',1e+20\r\n'],
    [
      'double inf',
      { kind: 'double', value: Number.POSITIVE_INFINITY },
      '$3\r\ninf\r\n',
      ',inf\r\n',
    ],
    [
      'double -inf',
      { kind: 'double', value: Number.NEGATIVE_INFINITY },
      '$4\r\n-inf\r\n',
      ',-inf\r\n',
    ],
    ['double nan', { kind: 'double', value: Number.NaN }, '$3\r\nnan\r\n', ',nan\r\n'],
    ['boolean true', { kind: 'boolean', value: true }, ':1\r\n', '#t\r\n'],
    ['boolean false', { kind: 'boolean', value: false }, ':0\r\n', '#f\r\n'],
    [
      'verbatim',
      { kind: 'verbatim', format: 'txt', value: 'Some string' },
      '$11\r\nSome string\r\n',
      '=15\r\ntxt:Some string\r\n',
    ],
    [
      'push',
      { kind: 'push', items: [bulk('message')] },
      '*1\r\n$7\r\nmessage\r\n',
      '>1\r\n$7\r\nmessage\r\n',
    ],
  ];

  for (const [name, reply, resp2, resp3] of cases) {
    it(`${name} in RESP2 and RESP3`, () => {
      expect(wire(reply, 2)).toBe(resp2);
      expect(wire(reply, 3)).toBe(resp3);
    });
  }

  it('nested aggregates', () => {
    const reply: Reply = {
      kind: 'map',
      entries: [
        [bulk('a'), { kind: 'set', items: [integer(1), { kind: 'double', value: 0.5 }] }],
        [bulk('b'), array([nullReply, { kind: 'boolean', value: true }, array([])])],
      ],
    };
    expect(wire(reply, 3)).toBe(
      '%2\r\n$1\r\na\r\n~2\r\n:1\r\n,0.5\r\n$1\r\nb\r\n*3\r\n_\r\n#t\r\n*0\r\n',
    );
    expect(wire(reply, 2)).toBe(
      '*4\r\n$1\r\na\r\n*2\r\n:1\r\n$3\r\n0.5\r\n$1\r\nb\r\n*3\r\n$-1\r\n:1\r\n*0\r\n',
    );
  });

  it('long bulk strings go through the latin1 fast path intact', () => {
    const value = binary(Array.from({ length: 1000 }, (_, i) => i % 256));
    expect(wire(bulk(value), 2)).toBe(`$1000\r\n${value}\r\n`);
  });

  it('rejects a simple string with CR or LF: that would break the protocol', () => {
    expect(() => wire({ kind: 'simple', value: 'a\r\nb' }, 2)).toThrow(/invariant/);
  });
});

describe('formatDouble: Redis 7.2 d2string', () => {
  const cases: readonly (readonly [number, string])[] = [
    [0, '0'],
    [-0, '-0'],
    [1, '1'],
    [-1, '-1'],
    [1.5, '1.5'],
    [0.1, '0.1'],
    [-3.14, '-3.14'],
    [100, '100'],
    [1e8, '100000000'],
    [1e18, '1000000000000000000'],
    [2 ** 62, '4611686018427387904'],
    [-(2 ** 62), '-4611686018427387904'],
    [2 ** 63, '9223372036854776000'],
    [1e20, '1e+20'],
    [1e21, '1e+21'],
    [1.5e300, '1.5e+300'],
    [0.0001, '0.0001'],
    [1e-7, '1e-7'],
    [1.5e-7, '1.5e-7'],
    [123.456, '123.456'],
    [5e-324, '5e-324'],
    [1.7976931348623157e308, '1.7976931348623157e+308'],
    [Number.POSITIVE_INFINITY, 'inf'],
    [Number.NEGATIVE_INFINITY, '-inf'],
    [Number.NaN, 'nan'],
  ];
  for (const [value, text] of cases) {
    it(`${value} -> ${text}`, () => expect(formatDouble(value)).toBe(text));
  }

  it('round-trips every finite double', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (value) => {
        expect(Object.is(Number(formatDouble(value)), value)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('encodeCommand', () => {
  it('encodes a multibulk of bulk strings', () => {
    expect(encodeCommand(['SET', 'k', 'v']).toString('latin1')).toBe(
      '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n',
    );
    expect(encodeCommand([]).toString('latin1')).toBe('*0\r\n');
    expect(encodeCommand(['', 'a\r\nb']).toString('latin1')).toBe(
      '*2\r\n$0\r\n\r\n$4\r\na\r\nb\r\n',
    );
  });
});

describe('ReplyWriter', () => {
  it('batches replies into one buffer and keeps handed-out batches intact', () => {
    const writer = new ReplyWriter({ slabBytesInitial: 32, slabBytesMax: 64 });
    writer.write(ok, 2);
    writer.write(integer(7), 2);
    expect(writer.pendingBytes).toBe(9);
    const first = writer.take();
    expect(first.toString('latin1')).toBe('+OK\r\n:7\r\n');
    expect(writer.pendingBytes).toBe(0);
    // Fill well past the slab: the first batch must not change.
    for (let i = 0; i < 50; i++) writer.write(bulk(`value-${i}`), 2);
    const second = writer.take();
    expect(first.toString('latin1')).toBe('+OK\r\n:7\r\n');
    expect(decodeReplies(second, 2)).toEqual(
      Array.from({ length: 50 }, (_, i) => bulk(`value-${i}`)),
    );
    writer.write(ok, 3);
    expect(writer.take().toString('latin1')).toBe('+OK\r\n');
    expect(second.toString('latin1')).toContain('value-49');
  });

  it('take() with nothing written gives an empty buffer', () => {
    expect(new ReplyWriter().take().length).toBe(0);
  });

  it('writes a reply larger than any slab', () => {
    const writer = new ReplyWriter({ slabBytesInitial: 16, slabBytesMax: 32 });
    const value = 'x'.repeat(100_000);
    writer.write(bulk(value), 2);
    expect(writer.take().toString('latin1')).toBe(`$100000\r\n${value}\r\n`);
    writer.write(ok, 2);
    expect(writer.take().toString('latin1')).toBe('+OK\r\n');
  });
});

// Replies the RESP encoding of which is fully determined (no CR/LF in simple strings,
// three-char verbatim formats), so a decoder can give them back.
const binaryString = fc
  .uint8Array({ maxLength: 40 })
  .map((bytes) => Buffer.from(bytes).toString('latin1'));
const lineString = binaryString.map((s) => s.replace(/[\r\n]/g, '_'));

const replyArbitrary: fc.Arbitrary<Reply> = fc.letrec<{ reply: Reply }>((tie) => ({
  reply: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    lineString.map((value): Reply => ({ kind: 'simple', value })),
    lineString.map((message): Reply => ({ kind: 'error', message })),
    fc
      .oneof(fc.maxSafeInteger(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }))
      .map((value): Reply => ({ kind: 'integer', value })),
    binaryString.map((value): Reply => ({ kind: 'bulk', value })),
    fc.constant<Reply>(nullReply),
    fc.constant<Reply>(nullArray),
    fc.double().map((value): Reply => ({ kind: 'double', value })),
    fc.boolean().map((value): Reply => ({ kind: 'boolean', value })),
    fc
      .tuple(
        fc.string({ minLength: 3, maxLength: 3 }).map((s) => s.replace(/[^\x20-\x7e]/g, 'x')),
        binaryString,
      )
      .map(([format, value]): Reply => ({ kind: 'verbatim', format, value })),
    fc.array(tie('reply'), { maxLength: 4 }).map((items): Reply => ({ kind: 'array', items })),
    fc.array(tie('reply'), { maxLength: 4 }).map((items): Reply => ({ kind: 'set', items })),
    fc.array(tie('reply'), { maxLength: 4 }).map((items): Reply => ({ kind: 'push', items })),
    fc
      .array(fc.tuple(tie('reply'), tie('reply')), { maxLength: 3 })
      .map((entries): Reply => ({ kind: 'map', entries })),
  ),
})).reply;

/** What a RESP3 client decodes: RESP3 has one null, and integers compare as bigint. */
function asResp3(reply: Reply): Reply {
  switch (reply.kind) {
    case 'nullArray':
      return nullReply;
    case 'integer':
      return { kind: 'integer', value: BigInt(reply.value) };
    case 'array':
    case 'set':
    case 'push':
      return { kind: reply.kind, items: reply.items.map(asResp3) };
    case 'map':
      return { kind: 'map', entries: reply.entries.map(([k, v]) => [asResp3(k), asResp3(v)]) };
    default:
      return reply;
  }
}

/** What a RESP2 client decodes: the fallbacks documented in src/kv/reply.ts. */
function asResp2(reply: Reply): Reply {
  switch (reply.kind) {
    case 'integer':
      return { kind: 'integer', value: BigInt(reply.value) };
    case 'array':
    case 'set':
    case 'push':
      return { kind: 'array', items: reply.items.map(asResp2) };
    case 'map':
      return { kind: 'array', items: reply.entries.flatMap(([k, v]) => [asResp2(k), asResp2(v)]) };
    case 'double':
      return bulk(formatDouble(reply.value));
    case 'boolean':
      return { kind: 'integer', value: reply.value ? 1n : 0n };
    case 'verbatim':
      return bulk(reply.value);
    default:
      return reply;
  }
}

/** What the decoder gives, with integers as bigint to compare with the expectations. */
function integersAsBigInt(reply: Reply): Reply {
  switch (reply.kind) {
    case 'integer':
      return { kind: 'integer', value: BigInt(reply.value) };
    case 'array':
    case 'set':
    case 'push':
      return { kind: reply.kind, items: reply.items.map(integersAsBigInt) };
    case 'map':
      return {
        kind: 'map',
        entries: reply.entries.map(([k, v]) => [integersAsBigInt(k), integersAsBigInt(v)]),
      };
    default:
      return reply;
  }
}

describe('encoder round trip through a reply decoder', () => {
  it('RESP3 gives the same tree back, RESP2 its documented fallback', () => {
    fc.assert(
      fc.property(fc.array(replyArbitrary, { minLength: 1, maxLength: 5 }), (replies) => {
        for (const protocol of [2, 3] as const) {
          const writer = new ReplyWriter({ slabBytesInitial: 64, slabBytesMax: 256 });
          for (const reply of replies) writer.write(reply, protocol);
          const decoded = decodeReplies(writer.take(), protocol).map(integersAsBigInt);
          const expected = replies.map(protocol === 3 ? asResp3 : asResp2);
          expect(decoded).toEqual(expected);
        }
      }),
      { numRuns: 500 },
    );
  });
});
