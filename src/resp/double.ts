/**
 * Doubles as Redis 7.2+ prints them (util.c d2string): `nan`, `inf`, `-inf`,
 * `0`, `-0`; integral values within ±2^62 as plain integers; everything else
 * as the shortest round-tripping digits laid out the way fpconv_dtoa does
 * (`1.5`, `0.0001`, `1e+20`, `1.5e-7`).
 *
 * Redis takes its digits from Grisu2, which in rare cases is one digit longer
 * than the shortest; we take V8's shortest digits, so such values can differ
 * from Redis in the last digit while still parsing back to the same double.
 */

/** (double)(LLONG_MAX / 2): d2string prints integral values up to this as integers. */
const integralMax = 2 ** 62;
/** Beyond this, String(n) rounds to the shortest digits, not the exact integer. */
const exactIntegerMax = 2 ** 53;

export function formatDouble(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (value === Number.POSITIVE_INFINITY) return 'inf';
  if (value === Number.NEGATIVE_INFINITY) return '-inf';
  if (value === 0) return Object.is(value, -0) ? '-0' : '0';
  if (Number.isInteger(value) && Math.abs(value) <= integralMax) {
    return Math.abs(value) < exactIntegerMax ? String(value) : BigInt(value).toString();
  }
  return value < 0 ? `-${layoutDigits(-value)}` : layoutDigits(value);
}

/** fpconv's emit_digits rules over the shortest digits of a positive finite value. */
function layoutDigits(value: number): string {
  // toExponential() without an argument gives the shortest round-tripping digits.
  const exponential = value.toExponential();
  const ePos = exponential.indexOf('e');
  const mantissa = exponential.slice(0, ePos);
  const digits = mantissa.length > 1 ? mantissa.charAt(0) + mantissa.slice(2) : mantissa;
  const decimalExponent = Number(exponential.slice(ePos + 1));
  const digitCount = digits.length;
  // The value is digits × 10^k.
  const k = decimalExponent - (digitCount - 1);
  const exponentSize = Math.abs(decimalExponent);

  if (k >= 0 && exponentSize < digitCount + 7) return digits + '0'.repeat(k);
  if (k < 0 && (k > -7 || exponentSize < 4)) {
    const pointAt = digitCount + k;
    if (pointAt <= 0) return `0.${'0'.repeat(-pointAt)}${digits}`;
    return `${digits.slice(0, pointAt)}.${digits.slice(pointAt)}`;
  }
  const sign = decimalExponent < 0 ? '-' : '+';
  return `${digitCount > 1 ? `${digits.charAt(0)}.${digits.slice(1)}` : digits}e${sign}${exponentSize}`;
}
