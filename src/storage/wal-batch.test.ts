import { describe, expect, it } from 'vitest';
import type { Entry, LogIndex, Term } from '../raft/types.js';
import { type AppendRequest, appendBytes, WalBatch } from './wal-batch.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function request(index: number, dataBytes: number): AppendRequest {
  const entries: Entry[] = [
    { kind: 'normal', term: 1 as Term, index: index as LogIndex, data: new Uint8Array(dataBytes) },
  ];
  return {
    entries,
    hardState: null,
    bytes: appendBytes(entries, null),
    lastIndexAfter: index,
    waiter: { resolve: () => undefined, reject: () => undefined },
  };
}

describe('WalBatch buffer reuse', () => {
  it('keeps a buffer a burst grew while batches still fill it', () => {
    const big = new WalBatch(null, 0, 8 * MiB);
    big.add(request(1, 2 * MiB));
    const buffer = big.recycle();
    expect(buffer?.length).toBeGreaterThanOrEqual(2 * MiB);
    const next = new WalBatch(buffer, 1, 8 * MiB);
    next.add(request(2, MiB));
    expect(next.recycle()).toBe(buffer);
  });

  it('gives a grown buffer back once a batch uses under a quarter of it', () => {
    const big = new WalBatch(null, 0, 8 * MiB);
    big.add(request(1, 2 * MiB));
    const small = new WalBatch(big.recycle(), 1, 8 * MiB);
    small.add(request(2, 100));
    expect(small.recycle()).toBeNull();
    // The next batch starts at the initial size; a small buffer is always kept.
    const fresh = new WalBatch(null, 2, 8 * MiB);
    fresh.add(request(3, 100));
    expect(fresh.recycle()?.length).toBe(64 * KiB);
  });

  it('never keeps a buffer one oversized append grew past the batch limit', () => {
    const oversized = new WalBatch(null, 0, MiB);
    oversized.add(request(1, 3 * MiB));
    expect(oversized.recycle()).toBeNull();
  });
});
