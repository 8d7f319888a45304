/**
 * Small non-cryptographic hashes (FNV-1a, 32-bit) for digests the simulator
 * compares: entries, replica state, the event stream. Fast and deterministic;
 * collisions only weaken a check, they never produce a false violation.
 */

export const hashSeed = 0x811c9dc5;

/** FNV-1a over bytes, continuing from `h`. */
export function hashBytes(bytes: Uint8Array, h: number = hashSeed): number {
  let x = h >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    x = Math.imul(x ^ (bytes[i] ?? 0), 0x01000193);
  }
  return x >>> 0;
}

/** FNV-1a over the UTF-16 code units of a string, continuing from `h`. */
export function hashString(s: string, h: number = hashSeed): number {
  let x = h >>> 0;
  for (let i = 0; i < s.length; i++) {
    x = Math.imul(x ^ s.charCodeAt(i), 0x01000193);
  }
  return x >>> 0;
}

/** Mixes a number (integer or not, up to 2^53) into `h`. */
export function hashNumber(n: number, h: number): number {
  const low = n | 0;
  const high = Number.isInteger(n) ? Math.floor(n / 4294967296) | 0 : Math.round(n * 1024) | 0;
  let x = Math.imul((h ^ low) >>> 0, 0x01000193);
  x = Math.imul(x ^ high, 0x01000193);
  return x >>> 0;
}

/** A 53-bit digest of bytes from two independent 32-bit hashes. */
export function digestBytes(bytes: Uint8Array): number {
  const a = hashBytes(bytes, hashSeed);
  const b = hashBytes(bytes, 0x9747b28c);
  return (a & 0x1fffff) * 4294967296 + b;
}
