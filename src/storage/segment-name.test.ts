import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { logIndex } from '../raft/types.js';
import { formatSegmentName, parseSegmentName } from './segment-name.js';

describe('segment names', () => {
  it('round-trips and sorts by segment id', () => {
    expect(formatSegmentName(1, logIndex(1))).toBe('0000000000000001-0000000000000001.wal');
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        (a, b, firstIndex) => {
          const nameA = formatSegmentName(a, logIndex(firstIndex));
          const nameB = formatSegmentName(b, logIndex(firstIndex));
          expect(parseSegmentName(nameA)).toEqual({ segmentId: a, firstIndex });
          expect(nameA < nameB).toBe(a < b);
        },
      ),
    );
  });

  it('rejects other files', () => {
    for (const name of ['LOCK', 'x.wal', '1-1.wal', '0000000000000001-0000000000000000.wal']) {
      expect(parseSegmentName(name)).toBeNull();
    }
    expect(parseSegmentName('0000000000000001-0000000000000001.wal.tmp')).toBeNull();
    expect(parseSegmentName('FFFFFFFFFFFFFFFF-0000000000000001.wal')).toBeNull();
  });
});
