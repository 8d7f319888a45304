/**
 * Names of WAL segment files: `<segmentId 16 hex>-<firstIndex 16 hex>.wal`.
 * Fixed-width lower-case hex, so byte order of names is segment order.
 */

import { fail } from '../raft/assert.js';
import type { LogIndex } from '../raft/types.js';

export interface SegmentName {
  readonly segmentId: number;
  readonly firstIndex: LogIndex;
}

const hexDigits = 16;
const pattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

export function formatSegmentName(segmentId: number, firstIndex: LogIndex): string {
  if (!(Number.isSafeInteger(segmentId) && segmentId >= 0)) fail(`segment id ${segmentId}`);
  if (!(Number.isSafeInteger(firstIndex) && firstIndex >= 1)) fail(`first index ${firstIndex}`);
  const name = `${toHex(segmentId)}-${toHex(firstIndex)}.wal`;
  return name;
}

/** The parts of a segment file name, or null for any other file. */
export function parseSegmentName(name: string): SegmentName | null {
  const match = pattern.exec(name);
  if (match === null) return null;
  const segmentId = Number.parseInt(match[1] ?? '', 16);
  const firstIndex = Number.parseInt(match[2] ?? '', 16);
  // Beyond 2^53 a number cannot round-trip, so such a name is not ours.
  if (!(Number.isSafeInteger(segmentId) && Number.isSafeInteger(firstIndex))) return null;
  if (firstIndex < 1) return null;
  return { segmentId, firstIndex: firstIndex as LogIndex };
}

function toHex(value: number): string {
  return value.toString(16).padStart(hexDigits, '0');
}
