/**
 * A small, strict RESP2/RESP3 reply decoder for tests: it checks the encoder
 * from the other side. Not for production use (no streaming, no limits).
 */

import type { Reply } from '../kv/reply.js';

/** Decodes every reply in `bytes`; throws on anything malformed or left over. */
export function decodeReplies(bytes: Buffer, protocol: 2 | 3): Reply[] {
  const decoder = new Decoder(bytes.toString('latin1'), protocol);
  const replies: Reply[] = [];
  while (!decoder.done()) replies.push(decoder.reply());
  return replies;
}

class Decoder {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly protocol: 2 | 3,
  ) {}

  done(): boolean {
    return this.pos >= this.text.length;
  }

  reply(): Reply {
    const type = this.text[this.pos];
    this.pos++;
    const line = this.line();
    switch (type) {
      case '+':
        return { kind: 'simple', value: line };
      case '-':
        return { kind: 'error', message: line };
      case ':':
        return { kind: 'integer', value: integerValue(line) };
      case '$':
        return line === '-1' ? { kind: 'null' } : { kind: 'bulk', value: this.blob(line) };
      case '*':
        return line === '-1' ? { kind: 'nullArray' } : { kind: 'array', items: this.items(line) };
      default:
        if (this.protocol === 3) return this.resp3(type, line);
        throw new Error(`RESP2 has no type '${type}'`);
    }
  }

  private resp3(type: string | undefined, line: string): Reply {
    switch (type) {
      case '_':
        expect(line === '', 'null has no payload');
        return { kind: 'null' };
      case '#':
        expect(line === 't' || line === 'f', `boolean is t or f, got ${line}`);
        return { kind: 'boolean', value: line === 't' };
      case ',':
        return { kind: 'double', value: doubleValue(line) };
      case '=': {
        const blob = this.blob(line);
        expect(blob[3] === ':', 'verbatim has a three-char format and a colon');
        return { kind: 'verbatim', format: blob.slice(0, 3), value: blob.slice(4) };
      }
      case '%': {
        const entries: (readonly [Reply, Reply])[] = [];
        for (let i = 0; i < count(line); i++) entries.push([this.reply(), this.reply()]);
        return { kind: 'map', entries };
      }
      case '~':
        return { kind: 'set', items: this.items(line) };
      case '>':
        return { kind: 'push', items: this.items(line) };
      default:
        throw new Error(`unknown type '${type}'`);
    }
  }

  private items(line: string): Reply[] {
    const items: Reply[] = [];
    for (let i = 0; i < count(line); i++) items.push(this.reply());
    return items;
  }

  private line(): string {
    const end = this.text.indexOf('\r\n', this.pos);
    expect(end >= 0, 'line ends with CRLF');
    const line = this.text.slice(this.pos, end);
    this.pos = end + 2;
    return line;
  }

  private blob(lengthLine: string): string {
    const length = count(lengthLine);
    const value = this.text.slice(this.pos, this.pos + length);
    expect(value.length === length, 'blob is complete');
    expect(
      this.text.slice(this.pos + length, this.pos + length + 2) === '\r\n',
      'blob ends with CRLF',
    );
    this.pos += length + 2;
    return value;
  }
}

function expect(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`malformed reply: ${message}`);
}

function count(line: string): number {
  expect(/^(0|[1-9][0-9]*)$/.test(line), `count, got '${line}'`);
  return Number(line);
}

function integerValue(line: string): number | bigint {
  expect(/^(0|-?[1-9][0-9]*)$/.test(line), `integer, got '${line}'`);
  const value = BigInt(line);
  const asNumber = Number(value);
  return Number.isSafeInteger(asNumber) ? asNumber : value;
}

function doubleValue(line: string): number {
  if (line === 'inf') return Number.POSITIVE_INFINITY;
  if (line === '-inf') return Number.NEGATIVE_INFINITY;
  if (line === 'nan') return Number.NaN;
  expect(/^-?[0-9]+(\.[0-9]+)?(e[-+][0-9]+)?$/.test(line), `double, got '${line}'`);
  return Number(line);
}
