import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Connection } from './connection.js';
import {
  encodeFrame,
  FrameReader,
  FrameType,
  finishFrameParts,
  frameBytesMaxDefault,
  type OutgoingFrame,
  outgoingBytes,
  startFrame,
} from './frame.js';

const limits = {
  queueBytesMax: 1 << 20,
  queueFramesMax: 1024,
  writeBatchBytesMax: 1 << 20,
  bulkBatchBytesMax: 64 * 1024,
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A connected loopback socket pair: ours, and the far end's. */
async function socketPair(): Promise<{ near: Socket; far: Socket }> {
  const server: Server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const near = connect({ host: '127.0.0.1', port: address.port });
  await new Promise<void>((resolve) => near.once('connect', () => resolve()));
  const far = await accepted;
  cleanups.push(async () => {
    near.destroy();
    far.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { near, far };
}

describe('Connection', () => {
  it('writes the frames one callback sent as one write, before the next turn', async () => {
    const { near } = await socketPair();
    const connection = new Connection(near, frameBytesMaxDefault, limits, {
      onFrame: () => undefined,
      onClose: () => undefined,
    });
    cleanups.push(async () => connection.destroy());
    const write = vi.spyOn(near, 'write');
    const frames = [1, 2, 3].map((n) =>
      encodeFrame(FrameType.raft, Uint8Array.of(n), frameBytesMaxDefault),
    );
    for (const frame of frames) connection.enqueue(frame, 'urgent', true);
    expect(write).not.toHaveBeenCalled();
    // Queued after the flush: by the time it runs, the frames are written,
    // without waiting for the next turn's I/O callbacks (setImmediate).
    await new Promise<void>((resolve) => process.nextTick(resolve));
    expect(write).toHaveBeenCalledTimes(1);
    expect(Buffer.from(write.mock.calls[0]?.[0] as Uint8Array)).toEqual(Buffer.concat(frames));
  });
});

describe('Connection with frames in parts', () => {
  it('writes parted and whole frames in order, the parts back to back', async () => {
    const { near, far } = await socketPair();
    const connection = new Connection(near, frameBytesMaxDefault, limits, {
      onFrame: () => undefined,
      onClose: () => undefined,
    });
    cleanups.push(async () => connection.destroy());
    const reader = new FrameReader(frameBytesMaxDefault);
    // Type, length, first and last byte of each frame's body.
    const got: number[][] = [];
    far.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      for (let f = reader.next(); f !== null; f = reader.next())
        got.push([f.type, f.body.length, f.body[0] ?? -1, f.body.at(-1) ?? -1]);
    });
    const big = new Uint8Array(300_000).fill(7);
    const parted = (): OutgoingFrame => {
      const w = startFrame(FrameType.raft, 16, 4096);
      w.u8(1);
      w.blob(big);
      w.u8(2);
      return finishFrameParts(w, frameBytesMaxDefault);
    };
    const whole = (n: number) =>
      encodeFrame(FrameType.request, new Uint8Array(n).fill(n), frameBytesMaxDefault);
    const frames = [whole(3), parted(), whole(5), parted(), whole(9)];
    expect(frames[1]).not.toBeInstanceOf(Uint8Array);
    for (const frame of frames) connection.enqueue(frame, 'urgent', true);
    const body = 1 + 3 + big.length + 1;
    const expected = [
      [FrameType.request, 3, 3, 3],
      [FrameType.raft, body, 1, 2],
      [FrameType.request, 5, 5, 5],
      [FrameType.raft, body, 1, 2],
      [FrameType.request, 9, 9, 9],
    ];
    await vi.waitFor(() => expect(got).toEqual(expected), { timeout: 5_000 });
    expect(connection.counters.bytesSent).toBe(frames.reduce((n, f) => n + outgoingBytes(f), 0));
  });
});
