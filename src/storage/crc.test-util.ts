/**
 * Bit-at-a-time reference for a reflected 32-bit CRC (initial value and
 * final xor all ones), obviously correct and slow: what the table-driven
 * and native implementations are held to.
 */
export function crcBitwise(data: Uint8Array, polynomialReflected: number): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ polynomialReflected : c >>> 1;
  }
  return ~c >>> 0;
}
