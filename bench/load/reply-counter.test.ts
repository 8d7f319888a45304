import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplyCounter } from './reply-counter.js';

type Reply =
  | { kind: 'simple'; text: string }
  | { kind: 'error'; text: string }
  | { kind: 'int'; n: number }
  | { kind: 'bulk'; bytes: Uint8Array | null }
  | { kind: 'array'; items: Reply[] };

function encode(r: Reply): string {
  switch (r.kind) {
    case 'simple':
      return `+${r.text}\r\n`;
    case 'error':
      return `-${r.text}\r\n`;
    case 'int':
      return `:${r.n}\r\n`;
    case 'bulk':
      return r.bytes === null
        ? '$-1\r\n'
        : `$${r.bytes.length}\r\n${Buffer.from(r.bytes).toString('latin1')}\r\n`;
    case 'array':
      return `*${r.items.length}\r\n${r.items.map(encode).join('')}`;
  }
}

const line = fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, ' '));
const { reply } = fc.letrec<{ reply: Reply }>((tie) => ({
  reply: fc.oneof(
    { depthSize: 'small' },
    line.map((text) => ({ kind: 'simple' as const, text })),
    line.map((text) => ({ kind: 'error' as const, text: `ERR ${text}` })),
    fc.integer().map((n) => ({ kind: 'int' as const, n })),
    fc
      .option(fc.uint8Array({ maxLength: 200 }), { nil: null })
      .map((bytes) => ({ kind: 'bulk' as const, bytes })),
    fc.array(tie('reply'), { maxLength: 4 }).map((items) => ({ kind: 'array' as const, items })),
  ),
}));

describe('ReplyCounter', () => {
  it('counts every top-level reply and its error, however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(reply, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (replies, cuts) => {
          const bytes = Buffer.from(replies.map(encode).join(''), 'latin1');
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort(
            (a, b) => a - b,
          );
          const counter = new ReplyCounter();
          const seen: (string | null)[] = [];
          let from = 0;
          for (const to of [...points, bytes.length]) {
            counter.feed(bytes.subarray(from, to), (error) => seen.push(error));
            from = to;
          }
          expect(seen).toEqual(replies.map((r) => (r.kind === 'error' ? r.text : null)));
        },
      ),
    );
  });

  it('rejects a stream that is not RESP with a clear error', () => {
    const counter = new ReplyCounter();
    expect(() =>
      counter.feed(Buffer.from('HTTP/1.1 400 Bad Request\r\n'), () => undefined),
    ).toThrow(/unexpected RESP reply type byte 72/);
  });
});
