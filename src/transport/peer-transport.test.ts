import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { HeartbeatMessage, Message, SnapshotMessage } from '../raft/messages.js';
import { logIndex, type Membership, type NodeId, nodeId, term } from '../raft/types.js';
import { TransportError } from './errors.js';
import {
  type PeerAddress,
  PeerTransport,
  type PeerTransportOptions,
  type TransportLimits,
} from './peer-transport.js';

const n1 = nodeId('n1');
const n2 = nodeId('n2');
const n3 = nodeId('n3');
const MiB = 1024 * 1024;

interface Node {
  readonly id: NodeId;
  readonly transport: PeerTransport;
  readonly received: Message[];
  readonly unreachable: NodeId[];
  readonly logs: string[];
  address: PeerAddress;
}

const open: PeerTransport[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

type Overrides = Partial<Omit<PeerTransportOptions, 'limits'>> & {
  limits?: Partial<TransportLimits>;
};

async function startNode(id: NodeId, overrides: Overrides = {}): Promise<Node> {
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
  const received: Message[] = [];
  const unreachable: NodeId[] = [];
  const transport = new PeerTransport({
    self: id,
    clusterId: 'test-cluster',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map(),
    logger,
    onMessage: (m) => received.push(m),
    onUnreachable: (p) => unreachable.push(p),
    ...overrides,
    limits: { backoffMsMin: 10, backoffMsMax: 100, ...overrides.limits },
  });
  open.push(transport);
  const address = await transport.start();
  return { id, transport, received, unreachable, logs, address };
}

/** Gives every node the full address book. */
function link(nodes: readonly Node[], exclude: (self: Node, peer: Node) => boolean = () => false) {
  for (const self of nodes) {
    const book = new Map<NodeId, PeerAddress>();
    for (const peer of nodes)
      if (peer !== self && !exclude(self, peer)) book.set(peer.id, peer.address);
    self.transport.setPeers(book);
  }
}

/** Polls a condition (each check is cheap) until it holds or the deadline passes. */
async function until(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

function heartbeat(from: NodeId, to: NodeId, seq: number): HeartbeatMessage {
  return { type: 'heartbeat', from, to, term: term(1), commit: logIndex(0), seq };
}

/** A snapshot message from n1 to n2 in term 2. */
function snapshotMessage(
  index: number,
  membership: Membership = { voters: [n1, n2], learners: [] },
): SnapshotMessage {
  return {
    type: 'snapshot',
    from: n1,
    to: n2,
    term: term(2),
    snapshot: { index: logIndex(index), term: term(2), membership },
  };
}

/** Chunks of `bytes` zeros, for as long as the reader takes them. */
async function* endless(bytes: number): AsyncGenerator<Uint8Array> {
  for (;;) yield new Uint8Array(bytes);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Like storage's SnapshotReader: a size, a checksum, and reads from an offset (counted). */
class SeekableSource implements AsyncIterable<Uint8Array> {
  readonly offsets: number[] = [];
  readBytes = 0;
  constructor(
    private readonly content: Uint8Array,
    readonly dataCrc: number,
  ) {}
  get dataBytes(): number {
    return this.content.byteLength;
  }
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.readFrom(0)[Symbol.asyncIterator]();
  }
  readFrom(offset: number): AsyncIterable<Uint8Array> {
    this.offsets.push(offset);
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        for (let at = offset; at < self.content.byteLength; at += 100_000) {
          const piece = self.content.subarray(at, at + 100_000);
          self.readBytes += piece.byteLength;
          yield piece;
        }
      },
    };
  }
}

async function connected(nodes: readonly Node[]): Promise<void> {
  await until('all connected', () =>
    nodes.every((a) => nodes.every((b) => a === b || a.transport.isConnected(b.id))),
  );
}

describe('PeerTransport', () => {
  it('connects three nodes with one connection per pair, used in both directions', async () => {
    const nodes = await Promise.all([n1, n2, n3].map((id) => startNode(id)));
    link(nodes);
    await connected(nodes);
    for (const a of nodes) {
      a.transport.send(nodes.filter((b) => b !== a).map((b, i) => heartbeat(a.id, b.id, i)));
    }
    await until('every node got 2 messages', () => nodes.every((n) => n.received.length === 2));
    for (const a of nodes) {
      expect(new Set(a.received.map((m) => m.from)).size).toBe(2);
      for (const b of nodes) {
        if (a === b) continue;
        const ab = a.transport.stats()[b.id];
        const ba = b.transport.stats()[a.id];
        // Same socket seen from both ends; the lower id dialed it.
        expect(ab?.localPort).toBe(ba?.remotePort);
        expect(ab?.remotePort).toBe(ba?.localPort);
        expect(ab?.dialer).toBe(a.id < b.id);
        expect(ab?.framesReceived).toBeGreaterThan(0);
      }
    }
  });

  it('reconnects after the connection is destroyed from either end', async () => {
    const nodes = await Promise.all([n1, n2].map((id) => startNode(id)));
    const [a, b] = nodes as [Node, Node];
    link(nodes);
    await connected(nodes);
    a.transport.disconnect(n2);
    await until('n1 sees the loss', () => !a.transport.isConnected(n2));
    await connected(nodes);
    b.transport.disconnect(n1);
    await until('reconnected twice', () => (a.transport.stats()[n2]?.reconnects ?? 0) >= 2);
    await connected(nodes);
    b.transport.send([heartbeat(n2, n1, 7)]);
    await until('message after reconnect', () =>
      a.received.some((m) => m.type === 'heartbeat' && m.seq === 7),
    );
    expect(a.logs.some((l) => l.includes('connection to n2 lost'))).toBe(true);
  });

  it("dials a peer's addresses in turn, keeps the one that works while it is listed, and redials when it is not", async () => {
    const [a, b] = (await Promise.all([n1, n2].map((id) => startNode(id)))) as [Node, Node];
    const nowhere = { host: '127.0.0.1', port: 1 };
    b.transport.setPeers(new Map([[n1, a.address]]));
    a.transport.setPeers(new Map([[n2, [nowhere, b.address, nowhere]]]));
    await connected([a, b]);
    expect(a.transport.stats()[n2]?.remotePort).toBe(b.address.port);
    expect(
      a.logs.some((l) =>
        l.includes(
          `cannot connect to n2 at 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1; trying 127.0.0.1:${b.address.port} next`,
        ),
      ),
    ).toBe(true);
    // Another preference, but the address in use is still listed: no reconnect.
    a.transport.setPeers(new Map([[n2, [nowhere, b.address]]]));
    a.transport.setPeers(new Map([[n2, b.address]]));
    await sleep(50);
    expect(a.transport.isConnected(n2)).toBe(true);
    expect(a.transport.stats()[n2]?.reconnects).toBe(0);
    // The address in use is no longer listed: the connection goes.
    a.transport.setPeers(new Map([[n2, nowhere]]));
    await until('n1 dropped the connection', () => !a.transport.isConnected(n2));
    expect(a.logs.some((l) => l.includes('reconnecting to n2: its address changed'))).toBe(true);
  });

  it('refuses a node of another cluster, logging a clear line on both sides', async () => {
    const a = await startNode(n1, { clusterId: 'xyz' });
    const b = await startNode(n2, { clusterId: 'abc' });
    link([a, b]);
    await until(
      'refusal logged',
      () =>
        b.logs.some((l) => l.includes("cluster id 'xyz' does not match ours 'abc'")) &&
        a.logs.some((l) => l.includes('refused our connection (clusterId)')),
    );
    expect(a.transport.isConnected(n2)).toBe(false);
    expect(b.transport.isConnected(n1)).toBe(false);
    a.transport.send([heartbeat(n1, n2, 1)]);
    await until('onUnreachable', () => a.unreachable.includes(n2));
    // A refused dialer backs off (1 s at least), so it has retried at most once so far.
    expect(b.logs.filter((l) => l.includes('refused connection from n1')).length).toBe(1);
  });

  it('refuses a node that is not a member', async () => {
    const a = await startNode(n1);
    const b = await startNode(n2);
    a.transport.setPeers(new Map([[n2, b.address]]));
    b.transport.setPeers(new Map([[n3, { host: '127.0.0.1', port: 1 }]]));
    await until('refusal logged', () =>
      b.logs.some((l) => l.includes('refused connection from n1') && l.includes('not a member')),
    );
    await until('dialer logged', () => a.logs.some((l) => l.includes('(unknownMember)')));
    expect(a.transport.isConnected(n2)).toBe(false);
  });

  it('refuses a dialer whose data directory was replaced, and connects when it matches', async () => {
    const inc = (c: string): string => c.repeat(32);
    const a = await startNode(n1, { incarnation: inc('b') });
    const b = await startNode(n2, {
      incarnation: inc('c'),
      expectedIncarnation: (id) => (id === n1 ? inc('a') : ''),
    });
    link([a, b]);
    await until('refusal logged', () =>
      b.logs.some((l) => l.includes('refused connection from n1') && l.includes('was replaced')),
    );
    await until('dialer logged', () => a.logs.some((l) => l.includes('(incarnation)')));
    expect(a.transport.isConnected(n2)).toBe(false);
    const c = await startNode(n3, { incarnation: inc('a') });
    const d = await startNode(nodeId('n4'), {
      expectedIncarnation: (id) => (id === n3 ? inc('a') : ''),
    });
    link([c, d]);
    await connected([c, d]);
  });

  it('does not connect to an acceptor whose data directory was replaced', async () => {
    const inc = (c: string): string => c.repeat(32);
    const a = await startNode(n1, { expectedIncarnation: (id) => (id === n2 ? inc('a') : '') });
    const b = await startNode(n2, { incarnation: inc('d') });
    link([a, b]);
    await until('dialer logged', () =>
      a.logs.some((l) => l.includes('not connecting') && l.includes('was replaced')),
    );
    expect(a.transport.isConnected(n2)).toBe(false);
  });

  it('drops messages over the queue bound and reports the peer unreachable (rate-limited)', async () => {
    const a = await startNode(n1, {
      limits: { queueFramesMax: 10, unreachableIntervalMs: 60_000 },
    });
    const b = await startNode(n2);
    link([a, b]);
    await connected([a, b]);
    const messages = Array.from({ length: 1_000 }, (_, i) => heartbeat(n1, n2, i));
    a.transport.send(messages);
    expect(a.transport.stats()[n2]?.framesDropped).toBe(990);
    await until('10 delivered', () => b.received.length === 10);
    expect(a.unreachable).toEqual([n2]);
    expect(b.received.map((m) => (m as HeartbeatMessage).seq)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
  });

  it('delivers appends whose large entries were sent uncopied, next to small ones', async () => {
    const [a, b] = await Promise.all([startNode(n1), startNode(n2)]);
    link([a, b]);
    await connected([a, b]);
    const sizes = [10, 4_096, 100, 200_000];
    const messages: Message[] = [0, 1].map((k) => ({
      type: 'append',
      from: n1,
      to: n2,
      term: term(3),
      prevIndex: logIndex(k * sizes.length),
      prevTerm: term(3),
      commit: logIndex(0),
      entries: sizes.map((bytes, i) => ({
        kind: 'normal',
        term: term(3),
        index: logIndex(k * sizes.length + i + 1),
        data: new Uint8Array(bytes).fill(k * 16 + i),
      })),
    }));
    a.transport.send([heartbeat(n1, n2, 1), ...messages, heartbeat(n1, n2, 2)]);
    await until('4 messages', () => b.received.length === 4);
    expect(b.received).toEqual([heartbeat(n1, n2, 1), ...messages, heartbeat(n1, n2, 2)]);
  });

  it('drops messages to a peer that is not connected and reports it', async () => {
    const a = await startNode(n1);
    a.transport.setPeers(new Map([[n2, { host: '127.0.0.1', port: 1 }]]));
    a.transport.send([heartbeat(n1, n2, 1), heartbeat(n1, n3, 1)]);
    await until('both reported', () => a.unreachable.includes(n2) && a.unreachable.includes(n3));
    expect(a.received).toEqual([]);
  });

  it('streams a 20 MiB snapshot to a slow receiver with bounded sender buffering', async () => {
    const windowBytes = 4 * MiB;
    let consumedBytes = 0;
    let checksum = 0;
    const b = await startNode(n2, {
      onSnapshot: async (_from, _m, chunks) => {
        for await (const chunk of chunks) {
          for (let i = 0; i < chunk.byteLength; i += 4096)
            checksum = (checksum + (chunk[i] ?? 0)) % 1e9;
          consumedBytes += chunk.byteLength;
          await sleep(5); // a slow disk
        }
      },
      limits: { snapshotWindowBytes: windowBytes },
    });
    const a = await startNode(n1, { limits: { snapshotWindowBytes: windowBytes } });
    link([a, b]);
    await connected([a, b]);
    const totalBytes = 20 * MiB;
    let expected = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      // 2.5 MiB pieces, split by the transport into chunks of at most 1 MiB.
      for (let sent = 0; sent < totalBytes; sent += 2.5 * MiB) {
        const piece = new Uint8Array(2.5 * MiB);
        for (let i = 0; i < piece.byteLength; i += 4096) {
          piece[i] = (sent / MiB + i) % 251;
          expected = (expected + (piece[i] ?? 0)) % 1e9;
        }
        yield piece;
      }
    }
    const message = snapshotMessage(100);
    let maxQueued = 0;
    let maxAheadBytes = 0;
    const sampler = setInterval(() => {
      const stats = a.transport.stats()[n2];
      maxQueued = Math.max(maxQueued, stats?.queueBytes ?? 0);
      maxAheadBytes = Math.max(maxAheadBytes, (stats?.bytesSent ?? 0) - consumedBytes);
    }, 1);
    let heartbeatArrivedDuringStream = false;
    const heartbeats = setInterval(() => a.transport.send([heartbeat(n1, n2, 1)]), 10);
    try {
      const done = a.transport.sendSnapshot(n2, message, source());
      await until(
        'a heartbeat arrives mid-stream',
        () => b.received.length > 0 && consumedBytes < totalBytes,
      );
      heartbeatArrivedDuringStream = true;
      await done;
    } finally {
      clearInterval(sampler);
      clearInterval(heartbeats);
    }
    expect(heartbeatArrivedDuringStream).toBe(true);
    expect(consumedBytes).toBe(totalBytes);
    expect(checksum).toBe(expected);
    // The window bounds what the sender holds: window plus one chunk frame of slack.
    expect(maxQueued).toBeLessThanOrEqual(windowBytes + MiB + 64 * 1024);
    expect(maxQueued).toBeGreaterThan(0);
    // The slow consumer paces the sender: it is never more than a window (plus
    // the chunk being consumed) ahead of what the receiver has taken.
    expect(maxAheadBytes).toBeLessThanOrEqual(windowBytes + MiB + 64 * 1024);
  }, 30_000);

  it('fails a snapshot on both sides when the connection drops', async () => {
    let receiverError: unknown = null;
    let sawChunk!: () => void;
    const chunkSeen = new Promise<void>((resolve) => {
      sawChunk = resolve;
    });
    const b = await startNode(n2, {
      onSnapshot: async (_from, _m, chunks) => {
        try {
          for await (const _ of chunks) {
            sawChunk();
            await sleep(1);
          }
        } catch (error) {
          receiverError = error;
          throw error;
        }
      },
    });
    const a = await startNode(n1);
    link([a, b]);
    await connected([a, b]);
    const message = snapshotMessage(5);
    const done = a.transport.sendSnapshot(n2, message, endless(64 * 1024));
    await chunkSeen;
    a.transport.disconnect(n2);
    await expect(done).rejects.toMatchObject({ code: 'disconnected' });
    await until('receiver iterable threw', () => receiverError !== null);
    expect(receiverError).toBeInstanceOf(TransportError);
  });

  it('aborts a snapshot through its signal and rejects when the receiver fails', async () => {
    const b = await startNode(n2, {
      onSnapshot: async (_from, _m, chunks) => {
        for await (const _ of chunks) throw new Error('disk full');
      },
    });
    const a = await startNode(n1);
    link([a, b]);
    await connected([a, b]);
    const message = snapshotMessage(5, { voters: [n1], learners: [n2] });
    async function* one(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(10);
    }
    await expect(a.transport.sendSnapshot(n2, message, one())).rejects.toThrow(/disk full/);
    const controller = new AbortController();
    async function* stalled(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(10);
      controller.abort();
      yield new Uint8Array(10);
    }
    await expect(
      a.transport.sendSnapshot(n2, message, stalled(), controller.signal),
    ).rejects.toThrow();
  });

  it('completes a snapshot whose receiver needed only part of the stream', async () => {
    const b = await startNode(n2, {
      onSnapshot: async (_from, _m, chunks) => {
        for await (const _ of chunks) break;
      },
    });
    const a = await startNode(n1);
    link([a, b]);
    await connected([a, b]);
    const message = snapshotMessage(5);
    await a.transport.sendSnapshot(n2, message, endless(256 * 1024));
    // The connection stays usable.
    a.transport.send([heartbeat(n1, n2, 3)]);
    await until('heartbeat after snapshot', () => b.received.length === 1);
  });

  it('resumes a snapshot stream that broke midway from the offset the receiver kept', async () => {
    const totalBytes = 6 * MiB;
    const content = new Uint8Array(totalBytes);
    for (let i = 0; i < totalBytes; i++) content[i] = (i * 31 + (i >>> 12)) % 251;
    // The receiver's "storage": keeps what it took of a stream that broke, by
    // snapshot and announced size and checksum, like RaftStorage does.
    type Kept = { key: string; parts: Uint8Array[]; bytes: number };
    let kept: Kept | null = null;
    const installed: Uint8Array[] = [];
    const startedAt: number[] = [];
    const b = await startNode(n2, {
      onSnapshot: async (_from, m, chunks) => {
        const sender = chunks.sender;
        const key = `${m.snapshot.index}/${m.snapshot.term}/${sender?.dataBytes}/${sender?.dataCrc}`;
        const resume = sender !== null && kept?.key === key ? kept : null;
        kept = null;
        const parts = resume === null ? [] : resume.parts;
        let bytes = resume === null ? 0 : resume.bytes;
        chunks.startAt(bytes);
        startedAt.push(bytes);
        try {
          for await (const chunk of chunks) {
            parts.push(chunk.slice());
            bytes += chunk.byteLength;
            await sleep(1); // a disk slower than the loopback link
          }
        } catch (error) {
          kept = { key, parts, bytes };
          throw error;
        }
        installed.push(concat(parts));
      },
      limits: { snapshotWindowBytes: MiB, snapshotChunkBytesMax: 256 * 1024 },
    });
    const a = await startNode(n1, {
      limits: { snapshotWindowBytes: MiB, snapshotChunkBytesMax: 256 * 1024 },
    });
    link([a, b]);
    await connected([a, b]);
    const message = snapshotMessage(5);

    // First attempt: the connection drops after a third of the bytes.
    const first = new SeekableSource(content, 0xc0ffee);
    const broken = a.transport.sendSnapshot(n2, message, first);
    await until('a third read', () => first.readBytes >= totalBytes / 3);
    a.transport.disconnect(n2);
    await expect(broken).rejects.toMatchObject({ code: 'disconnected' });
    await until('the receiver kept its bytes', () => kept !== null);
    // (Assigned in the handler: TypeScript cannot see it.)
    const keptBytes = (kept as Kept | null)?.bytes ?? 0;
    expect(keptBytes).toBeGreaterThan(0);
    expect(keptBytes).toBeLessThan(totalBytes);

    // Second attempt on the new connection: only the missing bytes are read and sent.
    await connected([a, b]);
    const sentBefore = a.transport.stats()[n2]?.bytesSent ?? 0;
    const second = new SeekableSource(content, 0xc0ffee);
    await a.transport.sendSnapshot(n2, message, second);
    const sentSecond = (a.transport.stats()[n2]?.bytesSent ?? 0) - sentBefore;
    expect(startedAt).toEqual([0, keptBytes]);
    expect(second.offsets).toEqual([keptBytes]);
    expect(second.readBytes).toBe(totalBytes - keptBytes);
    expect(sentSecond).toBeLessThan(totalBytes - keptBytes + 64 * 1024);
    expect(installed).toHaveLength(1);
    expect(Buffer.from(installed[0] ?? new Uint8Array()).equals(Buffer.from(content))).toBe(true);
    const resumeLine = new RegExp(`resuming snapshot 5/2 .* at byte ${keptBytes} of ${totalBytes}`);
    expect(a.logs.some((line) => resumeLine.test(line) && line.includes('to n2'))).toBe(true);
    expect(b.logs.some((line) => resumeLine.test(line) && line.includes('from n1'))).toBe(true);
  }, 30_000);

  it('sends a plain source whole: the receiver learns no size and cannot resume it', async () => {
    let sender: unknown = 'unset';
    let refused: unknown = null;
    const b = await startNode(n2, {
      onSnapshot: async (_from, _m, chunks) => {
        sender = chunks.sender;
        try {
          chunks.startAt(1);
        } catch (error) {
          refused = error;
        }
        for await (const _ of chunks) {
          // take everything
        }
      },
    });
    const a = await startNode(n1);
    link([a, b]);
    await connected([a, b]);
    async function* two(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(10);
      yield new Uint8Array(10);
    }
    await a.transport.sendSnapshot(n2, snapshotMessage(5), two());
    expect(sender).toBeNull();
    expect(refused).toBeInstanceOf(RangeError);
  });

  it('answers requests, and rejects on timeout, remote failure, bound and disconnect', async () => {
    const b = await startNode(n2, {
      onRequest: async (_from, payload) => {
        const text = new TextDecoder().decode(payload);
        if (text === 'hang') return new Promise<Uint8Array>(() => {});
        if (text === 'fail') throw new Error('not the leader');
        return new TextEncoder().encode(`echo:${text}`);
      },
    });
    const a = await startNode(n1, { limits: { requestsInFlightMax: 3 } });
    link([a, b]);
    await connected([a, b]);
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(new TextDecoder().decode(await a.transport.request(n2, enc('hi'), 1_000))).toBe(
      'echo:hi',
    );
    await expect(b.transport.request(n1, enc('x'), 1_000)).rejects.toMatchObject({
      code: 'remote',
    });
    await expect(a.transport.request(n2, enc('fail'), 1_000)).rejects.toThrow(/not the leader/);
    await expect(a.transport.request(n2, enc('hang'), 50)).rejects.toMatchObject({
      code: 'timeout',
    });
    const hanging = [1, 2, 3].map(() =>
      a.transport.request(n2, enc('hang'), 10_000).catch((error: unknown) => error),
    );
    await expect(a.transport.request(n2, enc('hi'), 1_000)).rejects.toMatchObject({ code: 'busy' });
    a.transport.disconnect(n2);
    for (const h of hanging) expect(await h).toMatchObject({ code: 'disconnected' });
    await expect(a.transport.request(n3, enc('hi'), 1_000)).rejects.toMatchObject({
      code: 'unreachable',
    });
  });

  it('close() fails pending work and leaves no sockets or timers behind', async () => {
    const before = new Set(process.getActiveResourcesInfo());
    const nodes = await Promise.all(
      [n1, n2].map((id) => startNode(id, { onRequest: () => new Promise(() => {}) })),
    );
    link(nodes);
    await connected(nodes);
    const [a] = nodes as [Node, Node];
    const pending = a.transport
      .request(n2, new Uint8Array(1), 60_000)
      .catch((error: unknown) => error);
    await Promise.all(open.splice(0).map((t) => t.close()));
    expect(await pending).toMatchObject({ code: 'closed' });
    await until('handles released', () => {
      const now = process
        .getActiveResourcesInfo()
        .filter((r) => r.startsWith('TCP') || r === 'Timeout');
      return now.length <= [...before].filter((r) => r.startsWith('TCP') || r === 'Timeout').length;
    });
  });
});
