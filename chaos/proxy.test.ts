import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../src/node/test-cluster.test-util.js';
import type { NodeId } from '../src/raft/types.js';
import { encodeHello, protocolVersion } from '../src/transport/protocol.js';
import { LinkTable, PeerProxy } from './proxy.js';

// A stand-in for node n2's peer port: echoes every byte after the hello back.
let servers: Server[] = [];
let proxies: PeerProxy[] = [];
let sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets) s.destroy();
  for (const p of proxies) await p.close();
  for (const s of servers) await new Promise((done) => s.close(done));
  servers = [];
  proxies = [];
  sockets = [];
});

async function setup(): Promise<{ links: LinkTable; proxy: PeerProxy; received: Buffer[] }> {
  const target = await freePort();
  const received: Buffer[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      socket.write(chunk);
    });
  });
  await new Promise<void>((done) => server.listen(target, '127.0.0.1', done));
  servers.push(server);
  const links = new LinkTable();
  const proxy = new PeerProxy('n2', await freePort(), target, links);
  await proxy.start();
  proxies.push(proxy);
  return { links, proxy, received };
}

const hello = Buffer.from(
  encodeHello(
    {
      version: protocolVersion,
      clusterId: 'tandem',
      from: 'n1' as NodeId,
      to: 'n2' as NodeId,
      incarnation: 'x',
    },
    1 << 20,
  ),
);

/** Dials the proxy as n1 would, sends the hello; collects what comes back. */
async function dial(proxy: PeerProxy): Promise<{ socket: Socket; echoed: () => string }> {
  const socket = connect(proxy.listenPort, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => undefined);
  let back = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    back = Buffer.concat([back, chunk]);
  });
  await new Promise<void>((done) => socket.once('connect', () => done()));
  socket.write(hello);
  return { socket, echoed: () => back.subarray(hello.length).toString() };
}

describe('PeerProxy', () => {
  it('passes bytes both ways after reading the hello', async () => {
    const { proxy, received } = await setup();
    const { socket, echoed } = await dial(proxy);
    socket.write('ping');
    await expect.poll(() => echoed()).toBe('ping');
    expect(Buffer.concat(received).subarray(0, hello.length).equals(hello)).toBe(true);
  });

  it('blackholes one direction only, then cuts the holed connection on heal', async () => {
    const { links, proxy, received } = await setup();
    const { socket, echoed } = await dial(proxy);
    await expect.poll(() => Buffer.concat(received).length).toBe(hello.length);
    links.set('n2', 'n1', { kind: 'drop' });
    socket.write('one');
    // n1→n2 still passes: the target gets it; its echo n2→n1 vanishes.
    await expect.poll(() => Buffer.concat(received).toString()).toContain('one');
    await sleep(100);
    expect(echoed()).toBe('');
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    links.set('n2', 'n1', { kind: 'pass' });
    await closed;
    expect(proxy.counts.cut).toBe(1);
  });

  it('stalls a link: nothing arrives, then everything, in order, on the same connection', async () => {
    const { links, proxy, received } = await setup();
    const { socket, echoed } = await dial(proxy);
    await expect.poll(() => Buffer.concat(received).length).toBe(hello.length);
    links.set('n1', 'n2', { kind: 'stall' });
    socket.write('a');
    socket.write('b');
    await sleep(150);
    expect(Buffer.concat(received).length).toBe(hello.length);
    links.healAll();
    await expect.poll(() => echoed()).toBe('ab');
    expect(proxy.counts.cut).toBe(0);
  });

  it('refuses new connections while a link refuses', async () => {
    const { links, proxy } = await setup();
    links.setBoth('n1', 'n2', { kind: 'refuse' });
    const { socket } = await dial(proxy);
    await new Promise<void>((done) => socket.once('close', () => done()));
    expect(proxy.counts.refused).toBe(1);
    links.healAll();
    const again = await dial(proxy);
    again.socket.write('back');
    await expect.poll(() => again.echoed()).toBe('back');
  });

  it('delays in order', async () => {
    const { links, proxy } = await setup();
    const { socket, echoed } = await dial(proxy);
    await sleep(50);
    links.set('n1', 'n2', { kind: 'delay', ms: 300 });
    const start = Date.now();
    socket.write('a');
    socket.write('b');
    await expect.poll(() => echoed(), { timeout: 3_000 }).toBe('ab');
    expect(Date.now() - start).toBeGreaterThanOrEqual(250);
  });

  it('cuts the connection under total loss', async () => {
    const { links, proxy } = await setup();
    const { socket } = await dial(proxy);
    await sleep(50);
    links.set('n1', 'n2', { kind: 'loss', p: 1 });
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.write('x');
    await closed;
    expect(proxy.counts.cut).toBe(1);
  });
});
