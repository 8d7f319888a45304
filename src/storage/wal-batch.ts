/**
 * One group-commit batch: the encoded records of the appends that arrived
 * while the previous batch was being written and synced, and the promises
 * that resolve together when this batch is durable.
 */

import { fail } from '../raft/assert.js';
import type { Entry, HardState } from '../raft/types.js';
import { encodeRecord, recordBytes } from './record.js';

export interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** An append as the caller made it, before it is encoded into a batch. */
export interface AppendRequest {
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
  /** Encoded size of all its records. */
  readonly bytes: number;
  /** The effective last index once this append is applied. */
  readonly lastIndexAfter: number;
  readonly waiter: Waiter;
}

/** Encoded size of an append's records: entries first, then the hard state. */
export function appendBytes(entries: readonly Entry[], hardState: HardState | null): number {
  let bytes = hardState === null ? 0 : recordBytes({ type: 'hardState', hardState });
  for (const entry of entries) bytes += recordBytes({ type: 'entry', entry });
  return bytes;
}

const initialCapacityBytes = 64 * 1024;

export class WalBatch {
  /** Invariant: bytes <= buffer.length; buffer[0, bytes) holds whole records. */
  private buffer: Buffer;
  private bytesUsed = 0;
  readonly waiters: Waiter[] = [];
  /** Highest entry index written by this batch; 0 if it holds no entry. */
  maxEntryIndex = 0;
  /** The last hard state in the batch, if any. */
  hardState: HardState | null = null;
  /** The effective last index once the whole batch is applied. */
  lastIndexAfter: number;

  constructor(
    buffer: Buffer | null,
    lastIndexBefore: number,
    private readonly batchBytesMax: number,
  ) {
    this.buffer = buffer ?? Buffer.allocUnsafe(Math.min(initialCapacityBytes, batchBytesMax));
    this.lastIndexAfter = lastIndexBefore;
  }

  get bytes(): number {
    return this.bytesUsed;
  }

  /** Whether `bytes` more fit under the limit; an empty batch takes any one append. */
  fits(bytes: number): boolean {
    return this.bytesUsed === 0 || this.bytesUsed + bytes <= this.batchBytesMax;
  }

  add(request: AppendRequest): void {
    if (!this.fits(request.bytes)) fail(`append of ${request.bytes} bytes does not fit the batch`);
    this.reserve(request.bytes);
    const start = this.bytesUsed;
    let offset = start;
    for (const entry of request.entries) {
      offset += encodeRecord({ type: 'entry', entry }, this.buffer, offset);
      this.maxEntryIndex = Math.max(this.maxEntryIndex, entry.index);
    }
    if (request.hardState !== null) {
      offset += encodeRecord(
        { type: 'hardState', hardState: request.hardState },
        this.buffer,
        offset,
      );
      this.hardState = request.hardState;
    }
    if (offset - start !== request.bytes) {
      fail(`append encoded ${offset - start} bytes, expected ${request.bytes}`);
    }
    this.bytesUsed = offset;
    this.lastIndexAfter = request.lastIndexAfter;
    this.waiters.push(request.waiter);
  }

  /** The encoded records, a view valid until the buffer is reused. */
  contents(): Buffer {
    return this.buffer.subarray(0, this.bytesUsed);
  }

  /**
   * The buffer, for the next batch to reuse; null if it grew past the limit,
   * or if this batch used under a quarter of a buffer grown past the initial
   * size, so the megabytes a burst grew it to are given back once the burst
   * is over (the next batch starts small and doubles again as needed).
   */
  recycle(): Buffer | null {
    const length = this.buffer.length;
    if (length > this.batchBytesMax) return null;
    if (length > initialCapacityBytes && this.bytesUsed * 4 < length) return null;
    return this.buffer;
  }

  private reserve(bytes: number): void {
    const neededBytes = this.bytesUsed + bytes;
    if (neededBytes <= this.buffer.length) return;
    // Doubling keeps the copies linear; one oversized append may exceed the limit.
    let capacity = this.buffer.length;
    while (capacity < neededBytes) capacity *= 2;
    capacity = Math.max(neededBytes, Math.min(capacity, this.batchBytesMax));
    const grown = Buffer.allocUnsafe(capacity);
    this.buffer.copy(grown, 0, 0, this.bytesUsed);
    this.buffer = grown;
  }
}
