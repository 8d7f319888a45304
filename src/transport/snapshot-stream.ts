/**
 * Flow control of snapshot streams (see snapshot-transfer.ts for the frames).
 *
 * Credit-based: the receiver grants `windowBytes` when its consumer starts
 * the stream (snapStart, which also carries the offset to resume from) and
 * grants again each chunk's bytes once its consumer has taken the chunk. The
 * sender never has more bytes outstanding than it was granted (and than its
 * own window), so a receiver that writes slowly to disk slows the sender
 * instead of filling either side's memory.
 */

import { assert } from '../raft/assert.js';
import type { SnapshotSourceInfo } from './protocol.js';

/** Sender side: waits for credit; fails when the stream ends badly. */
export class OutgoingSnapshot {
  /** Bytes the receiver allowed us to send beyond what we sent. Invariant: >= 0. */
  private creditBytes = 0;
  /** Bytes sent whose consumption the receiver has not acknowledged. */
  private inflightBytes = 0;
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private finish: ((error: Error | null) => void) | null = null;
  /** The offset the receiver asked to continue from (snapStart); null until it did. */
  private startOffset: number | null = null;
  /** Settles when the receiver reports the install's outcome, or the stream fails. */
  readonly done: Promise<void>;

  /**
   * `resumableBytes`: the size the sender announced in snapBegin (so the
   * receiver may ask to resume anywhere up to it), or null (only offset 0).
   */
  constructor(
    readonly streamId: number,
    private readonly windowBytes: number,
    readonly resumableBytes: number | null = null,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.finish = (error) => (error === null ? resolve() : reject(error));
    });
    // The caller awaits `done` only after sending everything; until then a
    // failure is reported through `waitForCredit`, so an early rejection must
    // not count as unhandled.
    this.done.catch(() => {});
  }

  get failed(): Error | null {
    return this.failure;
  }

  /**
   * The receiver started the stream at `offset` with `creditBytes` of credit.
   * Returns why that breaks the protocol, or null.
   */
  start(offset: number, creditBytes: number): string | null {
    if (this.startOffset !== null) return 'started the snapshot stream twice';
    if (offset > 0 && this.resumableBytes === null) {
      return `asked to resume at byte ${offset} a snapshot sent without its size`;
    }
    if (this.resumableBytes !== null && offset > this.resumableBytes) {
      return `asked to resume at byte ${offset} of a ${this.resumableBytes}-byte snapshot`;
    }
    this.startOffset = offset;
    this.grant(creditBytes);
    return null;
  }

  /**
   * Waits for the receiver to start the stream and returns the offset to
   * send from, or null once the receiver completed the stream without
   * starting it. Throws the stream's failure.
   */
  async waitForStart(): Promise<number | null> {
    for (;;) {
      if (this.failure !== null) throw this.failure;
      if (this.startOffset !== null) return this.startOffset;
      if (this.finish === null) return null;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  /** The receiver granted `bytes` more (consumed chunks; the initial window comes with `start`). */
  grant(bytes: number): void {
    this.creditBytes += bytes;
    // The initial grant covers nothing in flight; later grants return consumed bytes.
    this.inflightBytes = Math.max(0, this.inflightBytes - bytes);
    this.wake();
  }

  /**
   * Waits until at least one byte may be sent and returns how many (at most
   * `wantBytes`), or 0 once the receiver has completed the stream. Throws the
   * stream's failure.
   */
  async waitForCredit(wantBytes: number): Promise<number> {
    assert(wantBytes > 0, 'waitForCredit for a positive amount');
    for (;;) {
      if (this.failure !== null) throw this.failure;
      // Completed before everything was sent: nothing more will be granted.
      if (this.finish === null) return 0;
      const allowed = Math.min(wantBytes, this.creditBytes, this.windowBytes - this.inflightBytes);
      if (allowed > 0) return allowed;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  sent(bytes: number): void {
    assert(bytes <= this.creditBytes, 'sent within credit');
    this.creditBytes -= bytes;
    this.inflightBytes += bytes;
  }

  /** The receiver installed the snapshot (error null) or failed to. */
  complete(error: Error | null): void {
    if (error !== null) this.failure ??= error;
    this.finish?.(error);
    this.finish = null;
    this.wake();
  }

  /** The stream can no longer complete (disconnect, abort, close). */
  fail(error: Error): void {
    this.complete(error);
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }
}

/**
 * Receiver side: the AsyncIterable handed to `onSnapshot`. Its consumer may
 * first call `startAt(offset)` to skip bytes it kept of an interrupted
 * transfer of the same snapshot (`sender` tells size and checksum);
 * iterating without it starts at 0. Starting calls `onStart`, which grants
 * the initial window; taking a chunk calls `onConsumed`, which grants the
 * sender that much credit again.
 */
export class IncomingSnapshot implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  /** Bytes received and not yet taken. Invariant: <= windowBytes (else the sender broke the protocol). */
  private queuedBytes = 0;
  private ended = false;
  private failure: Error | null = null;
  private waiter: (() => void) | null = null;
  private iterated = false;
  private started = false;

  constructor(
    readonly streamId: number,
    private readonly windowBytes: number,
    /** The sender's data size and checksum, or null if it did not tell them (no resume). */
    readonly sender: SnapshotSourceInfo | null,
    private readonly onStart: (offset: number) => void,
    private readonly onConsumed: (bytes: number) => void,
  ) {}

  /**
   * Asks the sender to send from byte `offset` on (0: everything). At most
   * once, before iterating; an offset above 0 needs `sender`, and at most
   * its dataBytes.
   */
  startAt(offset: number): void {
    assert(!this.started, 'a snapshot stream is started once');
    const limit = this.sender?.dataBytes ?? 0;
    if (!(Number.isSafeInteger(offset) && offset >= 0 && offset <= limit)) {
      throw new RangeError(`cannot resume a snapshot of ${limit} known bytes at byte ${offset}`);
    }
    this.started = true;
    this.onStart(offset);
  }

  /** Returns false if the sender exceeded the window it was granted. */
  push(chunk: Uint8Array): boolean {
    if (this.ended || this.failure !== null) return true;
    if (this.queuedBytes + chunk.byteLength > this.windowBytes) return false;
    this.chunks.push(chunk);
    this.queuedBytes += chunk.byteLength;
    this.wake();
    return true;
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  fail(error: Error): void {
    this.failure ??= error;
    this.chunks.length = 0;
    this.queuedBytes = 0;
    this.wake();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    // Chunks are handed out once; a second iteration would silently see nothing.
    assert(!this.iterated, 'a snapshot stream can be iterated only once');
    this.iterated = true;
    if (!this.started) this.startAt(0);
    return { next: () => this.next(), return: () => this.stop() };
  }

  private async next(): Promise<IteratorResult<Uint8Array>> {
    for (;;) {
      if (this.failure !== null) throw this.failure;
      const chunk = this.chunks.shift();
      if (chunk !== undefined) {
        this.queuedBytes -= chunk.byteLength;
        this.onConsumed(chunk.byteLength);
        return { done: false, value: chunk };
      }
      if (this.ended) return { done: true, value: undefined };
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  /** The consumer stopped early (break in for-await): nothing more will be read. */
  private stop(): Promise<IteratorResult<Uint8Array>> {
    this.ended = true;
    this.chunks.length = 0;
    this.queuedBytes = 0;
    return Promise.resolve({ done: true, value: undefined });
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }
}
