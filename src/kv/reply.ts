/**
 * What a command answers, independent of the wire protocol. The RESP layer
 * encodes a Reply for RESP2 or RESP3; the types that RESP2 lacks (map, set,
 * double, boolean, verbatim, push) fall back the way Redis does it.
 *
 * Byte strings are "binary strings": each UTF-16 code unit holds one byte
 * (0..255), as Node's `latin1` encoding reads and writes them. V8 stores them
 * one byte per character, and they are usable as Map keys directly.
 */

export type Reply =
  | { readonly kind: 'simple'; readonly value: string }
  /** The whole message including its code, e.g. `ERR syntax error`, `WRONGTYPE ...`. */
  | { readonly kind: 'error'; readonly message: string }
  | { readonly kind: 'integer'; readonly value: number | bigint }
  | { readonly kind: 'bulk'; readonly value: string }
  /** RESP2 `$-1`, RESP3 `_`. */
  | { readonly kind: 'null' }
  /** RESP2 `*-1` (EXEC aborted by WATCH, BLPOP timeout), RESP3 `_`. */
  | { readonly kind: 'nullArray' }
  | { readonly kind: 'array'; readonly items: readonly Reply[] }
  /** RESP2: a flat array of key, value, key, value... */
  | { readonly kind: 'map'; readonly entries: readonly (readonly [Reply, Reply])[] }
  /** RESP2: an array. */
  | { readonly kind: 'set'; readonly items: readonly Reply[] }
  /** RESP2: a bulk string of the shortest round-tripping decimal, `inf`, `-inf`. */
  | { readonly kind: 'double'; readonly value: number }
  /** RESP2: the integer 1 or 0. */
  | { readonly kind: 'boolean'; readonly value: boolean }
  /** RESP2: a bulk string of `value` alone. */
  | { readonly kind: 'verbatim'; readonly format: string; readonly value: string }
  /** Out-of-band data (pub/sub messages). RESP2: an array. */
  | { readonly kind: 'push'; readonly items: readonly Reply[] };

export const ok: Reply = { kind: 'simple', value: 'OK' };
export const nullReply: Reply = { kind: 'null' };
export const nullArray: Reply = { kind: 'nullArray' };
export const emptyArray: Reply = { kind: 'array', items: [] };

const smallIntegers: readonly Reply[] = Array.from({ length: 256 }, (_, n) => ({
  kind: 'integer',
  value: n,
}));

export function integer(value: number | bigint): Reply {
  if (typeof value === 'number' && value >= 0 && value < smallIntegers.length) {
    const cached = smallIntegers[value];
    if (cached !== undefined) return cached;
  }
  return { kind: 'integer', value };
}

export function bulk(value: string): Reply {
  return { kind: 'bulk', value };
}

export function bulkOrNull(value: string | undefined): Reply {
  return value === undefined ? nullReply : { kind: 'bulk', value };
}

export function simple(value: string): Reply {
  return { kind: 'simple', value };
}

export function error(message: string): Reply {
  return { kind: 'error', message };
}

export function array(items: readonly Reply[]): Reply {
  return { kind: 'array', items };
}
