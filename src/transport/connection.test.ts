import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Connection } from './connection.js';
import { encodeFrame, FrameType, frameBytesMaxDefault } from './frame.js';

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
