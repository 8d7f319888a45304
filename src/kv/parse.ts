/**
 * Redis-exact parsing and formatting of numbers in binary-string arguments.
 */
import { fail, msg } from './errors.js';

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;
const intPattern = /^(?:0|-?[1-9][0-9]{0,19})$/;

/** Parses like Redis's string2ll: no spaces, no '+', no leading zeros; undefined if invalid. */
export function tryParseInt64(s: string): bigint | undefined {
  if (s.length === 0 || s.length > 20 || !intPattern.test(s)) return undefined;
  const v = BigInt(s);
  return v < int64Min || v > int64Max ? undefined : v;
}

export function parseInt64(s: string, message: string = msg.notInteger): bigint {
  const v = tryParseInt64(s);
  if (v === undefined) fail(message);
  return v;
}

/**
 * An int64 argument as a number (exact up to 2^53; beyond that only used for
 * counts and indexes where the rounding cannot matter).
 */
export function parseLong(s: string, message: string = msg.notInteger): number {
  if (s.length <= 15 && intPattern.test(s)) return Number(s);
  return Number(parseInt64(s, message));
}

/** A count/offset that must be >= 0 (Redis: 'value is out of range, must be positive'). */
export function parsePositive(s: string): number {
  const v = parseLong(s, msg.mustBePositive);
  if (v < 0) fail(msg.mustBePositive);
  return v;
}

const floatPattern = /^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity)$/i;

/** Parses like strtod as Redis uses it: no spaces, NaN rejected, inf accepted. */
export function tryParseFloat(s: string): number | undefined {
  if (s.length === 0 || !floatPattern.test(s)) return undefined;
  const lower = s.toLowerCase();
  if (lower.endsWith('inf') || lower.endsWith('infinity')) {
    return s.startsWith('-') ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  const v = Number(s);
  return Number.isNaN(v) ? undefined : v;
}

export function parseFloatArg(s: string, message: string = msg.notFloat): number {
  const v = tryParseFloat(s);
  if (v === undefined) fail(message);
  return v;
}

/** An integer reply: a number when exact, else a bigint. */
export function intValue(v: bigint): number | bigint {
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
}

function fixedPoint(s: string): string {
  // Expands an exponent form such as 1.5e+21 or 1e-7 without losing digits.
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (m === null) return s;
  const sign = m[1] ?? '';
  const digits = (m[2] ?? '') + (m[3] ?? '');
  const exp = Number(m[4]);
  const point = 1 + exp;
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/**
 * Formats a float the way Redis's INCRBYFLOAT/HINCRBYFLOAT do (fixed point,
 * trailing zeros trimmed). Redis computes in long double; we approximate its
 * extra precision by preferring the 15- or 16-digit rendering when it is
 * within one ulp of the double (so 0.1 + 0.2 answers "0.3" as in Redis).
 */
export function formatFloatHuman(v: number): string {
  if (v === 0) return '0';
  let s = String(v);
  const ulp = Math.abs(v) * Number.EPSILON;
  for (const digits of [15, 16]) {
    const candidate = Number(v.toPrecision(digits));
    if (Math.abs(candidate - v) <= ulp) {
      s = String(candidate);
      break;
    }
  }
  s = fixedPoint(s);
  const dot = s.indexOf('.');
  if (dot >= 0 && s.length - dot - 1 > 17) {
    s = s.slice(0, dot + 18).replace(/0+$/, '');
    if (s.endsWith('.')) s = s.slice(0, -1);
    if (s === '-0' || s === '0' || s === '') return '0';
  }
  return s;
}

/** A glob match as Redis's stringmatchlen: * ? [abc] [^a] [a-z] and \ escapes. */
export function globMatch(pattern: string, text: string): boolean {
  return globAt(pattern, 0, text, 0, 0);
}

const globNestingMax = 1000;

function globAt(p: string, pi: number, s: string, si: number, depth: number): boolean {
  if (depth > globNestingMax) return false;
  while (pi < p.length) {
    const c = p[pi];
    if (c === '*') {
      while (p[pi + 1] === '*') pi++;
      if (pi + 1 === p.length) return true;
      for (let k = si; k <= s.length; k++) {
        if (globAt(p, pi + 1, s, k, depth + 1)) return true;
      }
      return false;
    }
    if (si >= s.length) return false;
    if (c === '?') {
      pi++;
      si++;
      continue;
    }
    if (c === '[') {
      const res = matchClass(p, pi + 1, s.charCodeAt(si));
      if (!res.matched) return false;
      pi = res.next;
      si++;
      continue;
    }
    if (c === '\\' && pi + 1 < p.length) pi++;
    if (p[pi] !== s[si]) return false;
    pi++;
    si++;
  }
  return si === s.length;
}

function matchClass(p: string, start: number, ch: number): { matched: boolean; next: number } {
  let i = start;
  const negate = p[i] === '^';
  if (negate) i++;
  let matched = false;
  for (;;) {
    if (i >= p.length) {
      i = p.length;
      break;
    }
    const c = p[i];
    if (c === ']') {
      i++;
      break;
    }
    if (c === '\\' && i + 1 < p.length) {
      i++;
      if (p.charCodeAt(i) === ch) matched = true;
    } else if (p[i + 1] === '-' && i + 2 < p.length && p[i + 2] !== ']') {
      let lo = p.charCodeAt(i);
      let hi = p.charCodeAt(i + 2);
      if (lo > hi) [lo, hi] = [hi, lo];
      if (ch >= lo && ch <= hi) matched = true;
      i += 2;
    } else if (p.charCodeAt(i) === ch) {
      matched = true;
    }
    i++;
  }
  return { matched: negate ? !matched : matched, next: i };
}
