/**
 * OBJECT ENCODING names. Tandem has one representation per type; the name
 * is the one Redis 7.2 would report for a value of this size under its
 * default thresholds (computed from the current size: Redis never converts
 * back to the compact encoding, Tandem's answer does).
 */
import { Deque } from './deque.js';
import type { Value } from './keyspace.js';
import { tryParseInt64 } from './parse.js';

const listpackEntriesMax = 128;
const listpackValueBytesMax = 64;
const intsetEntriesMax = 512;
const listListpackBytesMax = 8192;
const embstrBytesMax = 44;

function allSmall(values: Iterable<string>): boolean {
  for (const v of values) if (v.length > listpackValueBytesMax) return false;
  return true;
}

export function encodingOf(v: Value): string {
  if (typeof v === 'string') {
    if (tryParseInt64(v) !== undefined) return 'int';
    return v.length <= embstrBytesMax ? 'embstr' : 'raw';
  }
  if (v instanceof Map) {
    if (v.size > listpackEntriesMax) return 'hashtable';
    return allSmall(v.keys()) && allSmall(v.values()) ? 'listpack' : 'hashtable';
  }
  if (v instanceof Set) {
    if (v.size <= intsetEntriesMax) {
      let ints = true;
      for (const m of v) {
        if (tryParseInt64(m) === undefined) {
          ints = false;
          break;
        }
      }
      if (ints) return 'intset';
    }
    return v.size <= listpackEntriesMax && allSmall(v) ? 'listpack' : 'hashtable';
  }
  if (v instanceof Deque) {
    if (v.size > listListpackBytesMax) return 'quicklist';
    let bytes = 0;
    for (const x of v) bytes += x.length + 2;
    return bytes <= listListpackBytesMax ? 'listpack' : 'quicklist';
  }
  if (v.size > listpackEntriesMax) return 'skiplist';
  return allSmall(v.scores.keys()) ? 'listpack' : 'skiplist';
}
