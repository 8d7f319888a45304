import { describe, expect, it } from 'vitest';
import { IncomingSnapshot, OutgoingSnapshot } from './snapshot-stream.js';

describe('OutgoingSnapshot credit window', () => {
  it('sends no more than granted, and no more than its own window unacknowledged', async () => {
    const stream = new OutgoingSnapshot(1, 10);
    stream.grant(100); // The receiver granted more than our window.
    expect(await stream.waitForCredit(4)).toBe(4);
    stream.sent(4);
    expect(await stream.waitForCredit(100)).toBe(6);
    stream.sent(6);
    // Window full: waits until the receiver reports consumed bytes.
    let granted: number | null = null;
    const waiting = stream.waitForCredit(5).then((n) => {
      granted = n;
    });
    await Promise.resolve();
    expect(granted).toBeNull();
    stream.grant(3);
    await waiting;
    expect(granted).toBe(3);
  });

  it('returns 0 once the receiver completed early, and throws the failure after fail()', async () => {
    const done = new OutgoingSnapshot(1, 10);
    done.complete(null);
    expect(await done.waitForCredit(5)).toBe(0);
    await done.done;

    const failed = new OutgoingSnapshot(2, 10);
    const waiting = failed.waitForCredit(5);
    failed.fail(new Error('lost'));
    await expect(waiting).rejects.toThrow('lost');
    await expect(failed.done).rejects.toThrow('lost');
    expect(failed.failed?.message).toBe('lost');
  });
});

describe('snapshot stream start and resume offset', () => {
  it('waits for start, and accepts a resume offset only within the announced size', async () => {
    const stream = new OutgoingSnapshot(1, 10, 100);
    let offset: number | null | undefined;
    const waiting = stream.waitForStart().then((o) => {
      offset = o;
    });
    await Promise.resolve();
    expect(offset).toBeUndefined();
    expect(stream.start(101, 10)).toMatch(/byte 101 of a 100-byte/);
    expect(stream.start(40, 10)).toBeNull();
    await waiting;
    expect(offset).toBe(40);
    expect(await stream.waitForCredit(5)).toBe(5);
    expect(stream.start(0, 10)).toMatch(/twice/);

    const unsized = new OutgoingSnapshot(2, 10);
    expect(unsized.start(1, 10)).toMatch(/without its size/);
    const completed = new OutgoingSnapshot(3, 10, 5);
    completed.complete(null);
    expect(await completed.waitForStart()).toBeNull();
  });

  it('starts at 0 when iterated without startAt, and checks the offset against the sender', async () => {
    const starts: number[] = [];
    const plain = new IncomingSnapshot(
      1,
      10,
      null,
      (o) => starts.push(o),
      () => {},
    );
    expect(() => plain.startAt(1)).toThrow(RangeError);
    plain.end();
    await plain[Symbol.asyncIterator]().next();
    expect(starts).toEqual([0]);

    const sized = new IncomingSnapshot(
      2,
      10,
      { dataBytes: 50, dataCrc: 7 },
      (o) => starts.push(o),
      () => {},
    );
    expect(() => sized.startAt(51)).toThrow(RangeError);
    sized.startAt(50);
    sized.end();
    await sized[Symbol.asyncIterator]().next();
    expect(starts).toEqual([0, 50]);
  });
});

describe('IncomingSnapshot credit window', () => {
  it('refuses bytes beyond the window and grants back what the consumer takes', async () => {
    const consumed: number[] = [];
    const stream = new IncomingSnapshot(
      1,
      10,
      null,
      () => {},
      (n) => consumed.push(n),
    );
    expect(stream.push(new Uint8Array(6))).toBe(true);
    expect(stream.push(new Uint8Array(4))).toBe(true);
    expect(stream.push(new Uint8Array(1))).toBe(false);
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).value?.byteLength).toBe(6);
    expect(consumed).toEqual([6]);
    expect(stream.push(new Uint8Array(6))).toBe(true);
    stream.end();
    const sizes: number[] = [];
    for (let r = await it.next(); r.done !== true; r = await it.next())
      sizes.push(r.value.byteLength);
    expect(sizes).toEqual([4, 6]);
    expect(consumed).toEqual([6, 4, 6]);
  });

  it('throws the failure to the consumer and drops what was queued', async () => {
    const consumed: number[] = [];
    const stream = new IncomingSnapshot(
      1,
      10,
      null,
      () => {},
      (n) => consumed.push(n),
    );
    stream.push(new Uint8Array(3));
    stream.fail(new Error('aborted'));
    await expect(stream[Symbol.asyncIterator]().next()).rejects.toThrow('aborted');
    expect(consumed).toEqual([]);
  });
});
