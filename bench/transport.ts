/**
 * Throughput of the peer transport between two nodes on loopback. A
 * measurement, not a test:
 *
 *   npx tsx bench/transport.ts [--seconds 2]
 *
 * Cases: append messages carrying 16 entries of 100 B (the small-write
 * path: encoding, coalescing, decoding), and append messages carrying one
 * 64 KiB entry (the bulk path). The sender keeps a bounded number of bytes in
 * flight (pipelining the way Raft's inflight limits do) and counts messages
 * the receiver decoded. Prints a table, then one JSON line with every figure.
 */

import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { AppendMessage, Message } from '../src/raft/messages.js';
import type { Entry } from '../src/raft/types.js';
import { logIndex, nodeId, term } from '../src/raft/types.js';
import { PeerTransport } from '../src/transport/peer-transport.js';

const MB = 1e6;
const KiB = 1024;

interface Case {
  readonly name: string;
  readonly entriesPerMessage: number;
  readonly entryBytes: number;
  /** Payload bytes the sender lets run ahead of the receiver. */
  readonly inflightBytesMax: number;
}

interface Result {
  readonly name: string;
  readonly messagesPerSecond: number;
  readonly entriesPerSecond: number;
  readonly payloadMbPerSecond: number;
  readonly wireMbPerSecond: number;
  readonly dropped: number;
}

const cases: readonly Case[] = [
  { name: '16 x 100 B entries', entriesPerMessage: 16, entryBytes: 100, inflightBytesMax: 4 << 20 },
  {
    name: '1 x 64 KiB entry',
    entriesPerMessage: 1,
    entryBytes: 64 * KiB,
    inflightBytesMax: 16 << 20,
  },
];

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' } } });
const seconds = Number(values.seconds);

const a = nodeId('n1');
const b = nodeId('n2');

function makeMessage(c: Case, seq: number): AppendMessage {
  const data = new Uint8Array(c.entryBytes).fill(seq % 251);
  const first = seq * c.entriesPerMessage;
  const entries: Entry[] = [];
  for (let i = 0; i < c.entriesPerMessage; i++) {
    entries.push({ kind: 'normal', term: term(1), index: logIndex(first + i + 1), data });
  }
  return {
    type: 'append',
    from: a,
    to: b,
    term: term(1),
    prevIndex: logIndex(first),
    prevTerm: term(1),
    commit: logIndex(first),
    entries,
  };
}

async function runCase(c: Case): Promise<Result> {
  const logger = pino({ level: 'warn' });
  let receivedMessages = 0;
  let wake: (() => void) | null = null;
  const onMessage = (_m: Message) => {
    receivedMessages++;
    const w = wake;
    wake = null;
    w?.();
  };
  const receiver = new PeerTransport({
    self: b,
    clusterId: 'bench',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map(),
    logger,
    onMessage,
  });
  const sender = new PeerTransport({
    self: a,
    clusterId: 'bench',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map(),
    logger,
    onMessage: () => {},
  });
  const receiverAddress = await receiver.start();
  const senderAddress = await sender.start();
  receiver.setPeers(new Map([[a, senderAddress]]));
  sender.setPeers(new Map([[b, receiverAddress]]));
  while (!sender.isConnected(b)) await new Promise((r) => setTimeout(r, 5));

  // Messages are prebuilt so the figure is the transport's, not the generator's.
  const pool = Array.from({ length: 64 }, (_, i) => makeMessage(c, i));
  const messageBytes = c.entriesPerMessage * c.entryBytes;
  const inflightMessagesMax = Math.max(1, Math.floor(c.inflightBytesMax / messageBytes));
  const batch = Math.max(1, Math.min(64, Math.floor(inflightMessagesMax / 4)));
  let sent = 0;
  const startBytes = sender.stats()[b]?.bytesSent ?? 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  while (performance.now() < deadline) {
    while (sent - receivedMessages + batch <= inflightMessagesMax) {
      const messages: Message[] = [];
      for (let i = 0; i < batch; i++) messages.push(pool[(sent + i) % pool.length] as Message);
      sender.send(messages);
      sent += batch;
    }
    await new Promise<void>((resolve) => {
      wake = resolve;
    });
  }
  const elapsedS = (performance.now() - started) / 1000;
  const stats = sender.stats()[b];
  await Promise.all([sender.close(), receiver.close()]);
  return {
    name: c.name,
    messagesPerSecond: receivedMessages / elapsedS,
    entriesPerSecond: (receivedMessages * c.entriesPerMessage) / elapsedS,
    payloadMbPerSecond: (receivedMessages * messageBytes) / elapsedS / MB,
    wireMbPerSecond: ((stats?.bytesSent ?? 0) - startBytes) / elapsedS / MB,
    dropped: stats?.framesDropped ?? 0,
  };
}

const results: Result[] = [];
for (const c of cases) results.push(await runCase(c));
console.log('case                 messages/s   entries/s   payload MB/s   wire MB/s   dropped');
for (const r of results) {
  console.log(
    `${r.name.padEnd(20)} ${r.messagesPerSecond.toFixed(0).padStart(10)} ${r.entriesPerSecond
      .toFixed(0)
      .padStart(11)} ${r.payloadMbPerSecond.toFixed(1).padStart(14)} ${r.wireMbPerSecond
      .toFixed(1)
      .padStart(11)} ${String(r.dropped).padStart(9)}`,
  );
}
console.log(JSON.stringify({ seconds, results }));
