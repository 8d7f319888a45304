import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
// An in-memory disk keeps these tests off the real file system (and within
// the layering rules: src/resp/ may not import src/storage/).
import type { TandemNode } from '../node/tandem-node.js';
import { loopbackMembers, startTestCluster, waitFor } from '../node/test-cluster.test-util.js';
import { RespServer, type RespServerLimits } from './server.js';

const log = pino({ level: 'silent' });
const originalWrite = Socket.prototype.write;
let nodes: TandemNode[] = [];
let servers: RespServer[] = [];
let clients: Redis[] = [];
let sockets: Socket[] = [];

/** Starts `size` nodes with a RESP server each; resolves once there is a leader. */
async function startCluster(size: number, limits: RespServerLimits = {}): Promise<RespServer[]> {
  const root = await mkdtemp(join(tmpdir(), 'tandem-resp-'));
  roots.push(root);
  nodes = await startTestCluster(root, await loopbackMembers(size), log);
  servers = nodes.map(
    (node) => new RespServer({ node, host: '127.0.0.1', port: 0, logger: log, limits }),
  );
  await Promise.all(servers.map((s) => s.start()));
  await waitFor('a leader', () => nodes.find((n) => n.isLeader));
  return servers;
}

function client(server: RespServer): Redis {
  const c = new Redis({
    host: '127.0.0.1',
    port: server.port,
    lazyConnect: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

/** A raw socket that collects everything the server sends. */
async function raw(server: RespServer): Promise<{
  socket: Socket;
  send(text: string): void;
  until(predicate: (received: string) => boolean): Promise<string>;
  closed: Promise<void>;
}> {
  const socket = connect(server.port, '127.0.0.1');
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    send: (text) => socket.write(text),
    until: async (predicate) =>
      waitFor('the expected bytes', () => (predicate(received) ? received : undefined), {
        timeoutMs: 5_000,
      }),
    closed,
  };
}

afterEach(async () => {
  for (const c of clients) c.disconnect();
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(nodes.map((n) => n.stop()));
  clients = [];
  sockets = [];
  servers = [];
  nodes = [];
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

const roots: string[] = [];

function leaderAndFollowers(): { leader: RespServer; followers: RespServer[] } {
  const leader = servers.find((s) => s.node.isLeader);
  if (leader === undefined) throw new Error('no leader');
  return { leader, followers: servers.filter((s) => s !== leader) };
}

describe('RespServer with one node', () => {
  it('round-trips SET, GET, INCR, DEL, EXPIRE, TTL', async () => {
    const [server] = await startCluster(1);
    const c = client(server as RespServer);
    expect(await c.set('k', 'v')).toBe('OK');
    expect(await c.get('k')).toBe('v');
    expect(await c.incr('n')).toBe(1);
    expect(await c.incrby('n', 41)).toBe(42);
    expect(await c.expire('k', 100)).toBe(1);
    const ttl = await c.ttl('k');
    expect(ttl).toBeGreaterThan(95);
    expect(ttl).toBeLessThanOrEqual(100);
    expect(await c.del('k', 'n', 'missing')).toBe(2);
    expect(await c.get('k')).toBeNull();
    expect(await c.ping()).toBe('PONG');
    expect(await c.echo('hi')).toBe('hi');
    expect(await c.dbsize()).toBe(0);
  });

  it('sends the answer in the turn its last command completes, ahead of queued callbacks', async () => {
    const [server] = await startCluster(1);
    const node = (server as RespServer).node;
    const events: string[] = [];
    const writeTo = node.writeTo.bind(node);
    node.writeTo = ((db, argv, order, sink, token) =>
      writeTo(
        db,
        argv,
        order,
        {
          reply: (t, reply) => {
            // Queued before the connection hears of the answer: with the reply
            // left to the next check phase, this would run first.
            setImmediate(() => events.push('immediate'));
            sink.reply(t, reply);
          },
          fail: (t, failure) => sink.fail(t, failure),
        },
        token,
      )) as typeof node.writeTo;
    const port = (server as RespServer).port;
    const spy = vi.spyOn(Socket.prototype, 'write');
    spy.mockImplementation(function (this: Socket, ...args: Parameters<Socket['write']>) {
      if (this.localPort === port) events.push('reply');
      return (originalWrite as (...a: unknown[]) => boolean).apply(this, args);
    });
    try {
      const r = await raw(server as RespServer);
      r.send('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n');
      await r.until((received) => received === '+OK\r\n');
      await waitFor('the queued callback', () => (events.includes('immediate') ? true : undefined));
      expect(events).toEqual(['reply', 'immediate']);
    } finally {
      spy.mockRestore();
    }
  });

  it('keeps 1,000 pipelined commands in order', async () => {
    const [server] = await startCluster(1);
    const c = client(server as RespServer);
    const pipeline = c.pipeline();
    for (let i = 0; i < 500; i++) {
      pipeline.set(`k${i % 10}`, String(i));
      pipeline.get(`k${i % 10}`);
    }
    const results = await pipeline.exec();
    expect(results).toHaveLength(1000);
    for (let i = 0; i < 500; i++) {
      expect(results?.[2 * i]).toEqual([null, 'OK']);
      expect(results?.[2 * i + 1]).toEqual([null, String(i)]);
    }
  });

  it('runs MULTI/EXEC and aborts it when a WATCHed key changed', async () => {
    const [server] = await startCluster(1);
    const a = client(server as RespServer);
    const b = client(server as RespServer);
    expect(await a.multi().set('x', '1').incr('x').get('x').exec()).toEqual([
      [null, 'OK'],
      [null, 2],
      [null, '2'],
    ]);
    expect(await a.watch('x')).toBe('OK');
    expect(await b.set('x', 'changed')).toBe('OK');
    expect(await a.multi().set('x', 'mine').exec()).toBeNull();
    expect(await a.get('x')).toBe('changed');
    // Unchanged watched key: EXEC runs.
    await a.watch('x');
    expect(await a.multi().set('x', 'mine').exec()).toEqual([[null, 'OK']]);
  });

  it('answers transaction errors as Redis does', async () => {
    const [server] = await startCluster(1);
    const r = await raw(server as RespServer);
    r.send('EXEC\r\nDISCARD\r\nMULTI\r\nMULTI\r\nWATCH k\r\nNOPE\r\nSET k v\r\nEXEC\r\nGET k\r\n');
    const text = await r.until((s) => s.endsWith('$-1\r\n'));
    expect(text).toBe(
      [
        '-ERR EXEC without MULTI',
        '-ERR DISCARD without MULTI',
        '+OK',
        '-ERR MULTI calls can not be nested',
        '-ERR WATCH inside MULTI is not allowed',
        "-ERR unknown command 'NOPE', with args beginning with: ",
        '+QUEUED',
        '-EXECABORT Transaction discarded because of previous errors.',
        '$-1',
        '',
      ].join('\r\n'),
    );
  });

  it('keeps databases apart with SELECT', async () => {
    const [server] = await startCluster(1);
    const c = client(server as RespServer);
    await c.set('k', 'zero');
    expect(await c.select(3)).toBe('OK');
    expect(await c.get('k')).toBeNull();
    await c.set('k', 'three');
    await c.select(0);
    expect(await c.get('k')).toBe('zero');
    await expect(c.select(16)).rejects.toThrow('ERR DB index is out of range');
    // SELECT inside a transaction switches the connection too.
    await c.multi().select(3).exec();
    expect(await c.get('k')).toBe('three');
  });

  it('switches to RESP3 with HELLO 3 and answers maps', async () => {
    const [server] = await startCluster(1);
    const r = await raw(server as RespServer);
    r.send('HELLO 3\r\n');
    const hello = await r.until((s) => s.includes('modules'));
    expect(hello.startsWith('%7\r\n$6\r\nserver\r\n$6\r\ntandem\r\n')).toBe(true);
    expect(hello).toContain('$5\r\nproto\r\n:3\r\n');
    expect(hello).toContain('$4\r\nmode\r\n$10\r\nstandalone\r\n');
    expect(hello).toContain('$4\r\nrole\r\n$6\r\nmaster\r\n');
    const before = hello.length;
    r.send('GET missing\r\nCONFIG GET databases\r\n');
    const rest = (await r.until((s) => s.length > before && s.endsWith('$2\r\n16\r\n'))).slice(
      before,
    );
    expect(rest).toBe('_\r\n%1\r\n$9\r\ndatabases\r\n$2\r\n16\r\n');
    const subscribed = before + rest.length;
    r.send('SUBSCRIBE ch\r\nGET missing\r\n');
    expect(
      (await r.until((s) => s.length > subscribed && s.endsWith('_\r\n'))).slice(subscribed),
    ).toBe('>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n_\r\n');
  });

  it('allows only pub/sub commands in RESP2 subscribed mode', async () => {
    const [server] = await startCluster(1);
    const r = await raw(server as RespServer);
    r.send('SUBSCRIBE ch\r\nGET x\r\nPING\r\nUNSUBSCRIBE\r\nPING\r\n');
    expect(await r.until((s) => s.endsWith('+PONG\r\n'))).toBe(
      [
        '*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n',
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
        '*2\r\n$4\r\npong\r\n$0\r\n\r\n',
        '*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n',
        '+PONG\r\n',
      ].join(''),
    );
  });

  it('serves inline commands', async () => {
    const [server] = await startCluster(1);
    const r = await raw(server as RespServer);
    r.send('PING\r\nSET greeting "hello world"\r\nGET greeting\r\n');
    expect(await r.until((s) => s.includes('world\r\n'))).toBe(
      '+PONG\r\n+OK\r\n$11\r\nhello world\r\n',
    );
  });

  it('closes only the connection that broke the protocol', async () => {
    const [server] = await startCluster(1);
    const good = client(server as RespServer);
    const bad = await raw(server as RespServer);
    bad.send('PING\r\n*1\r\n$x\r\n');
    await bad.closed;
    expect(await bad.until(() => true)).toBe(
      '+PONG\r\n-ERR Protocol error: invalid bulk length\r\n',
    );
    expect(await good.ping()).toBe('PONG');
  });

  it('stops reading at the in-flight bound and resumes', async () => {
    const [server] = await startCluster(1, { inflightCommandsMax: 8 });
    const c = client(server as RespServer);
    const pipeline = c.pipeline();
    for (let i = 0; i < 300; i++) pipeline.incr('n');
    const results = await pipeline.exec();
    expect(results?.map(([, value]) => value)).toEqual(
      Array.from({ length: 300 }, (_, i) => i + 1),
    );
  });

  it('disconnects a client whose output buffer overflows', async () => {
    const [server] = await startCluster(1, { outputBufferBytesMax: 256 * 1024 });
    const c = client(server as RespServer);
    await c.set('big', 'x'.repeat(1024 * 1024));
    const r = await raw(server as RespServer);
    r.socket.pause();
    // More than loopback's kernel buffers absorb, so the rest queues in the server.
    r.send('GET big\r\n'.repeat(32));
    // The paused client does not notice; the server has dropped it.
    await waitFor('the client to be dropped', () =>
      (server as RespServer).clientCount === 1 ? true : undefined,
    );
    expect(await c.ping()).toBe('PONG');
  }, 10_000);

  it('closes gracefully with clients connected', async () => {
    const [server] = await startCluster(1);
    const r = await raw(server as RespServer);
    r.send('PING\r\n');
    await r.until((s) => s === '+PONG\r\n');
    const started = Date.now();
    await (server as RespServer).close();
    await r.closed;
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('refuses clients over maxclients', async () => {
    const [server] = await startCluster(1, { maxClients: 2 });
    const a = await raw(server as RespServer);
    const b = await raw(server as RespServer);
    a.send('PING\r\n');
    b.send('PING\r\n');
    await a.until((s) => s === '+PONG\r\n');
    await b.until((s) => s === '+PONG\r\n');
    const c = await raw(server as RespServer);
    await c.closed;
    expect(await c.until(() => true)).toBe('-ERR max number of clients reached\r\n');
    a.socket.destroy();
    await waitFor('the slot to free', () =>
      (server as RespServer).clientCount < 2 ? true : undefined,
    );
    const d = await raw(server as RespServer);
    d.send('PING\r\n');
    await d.until((s) => s === '+PONG\r\n');
  });

  it('answers connection and server commands', async () => {
    const [server] = await startCluster(1);
    const c = client(server as RespServer);
    expect(await c.client('SETNAME', 'me')).toBe('OK');
    expect(await c.client('GETNAME')).toBe('me');
    expect(await c.client('LIST')).toContain('name=me');
    expect(await c.config('GET', 'max*')).toEqual(expect.arrayContaining(['maxclients', '10000']));
    await expect(c.config('SET', 'nope', '1')).rejects.toThrow(
      "ERR Unknown option or number of arguments for CONFIG SET - 'nope'",
    );
    await expect(c.call('AUTH', 'secret')).rejects.toThrow('without any password configured');
    const info = await c.info();
    expect(info).toContain('role:master');
    expect(info).toContain('raft_term:');
    await c.set('k', 'v');
    expect(await c.info('keyspace')).toContain('db0:keys=1,expires=0,avg_ttl=0');
    expect(await c.call('COMMAND', 'COUNT')).toBeGreaterThan(100);
    const role = (await c.call('ROLE')) as unknown[];
    expect(role[0]).toBe('master');
    const [seconds] = (await c.time()) as unknown as [string, string];
    expect(Math.abs(Number(seconds) - Date.now() / 1000)).toBeLessThan(5);
    expect(await c.call('WAIT', '0', '0')).toBe(0);
    await expect(c.call('BLPOP', 'l', '0')).rejects.toThrow('ERR');
  });
});

describe('RespServer with three nodes', () => {
  it('writes on one follower and reads on another', async () => {
    await startCluster(3);
    const { leader, followers } = leaderAndFollowers();
    const [f1, f2] = followers as [RespServer, RespServer];
    const w = client(f1);
    const r = client(f2);
    expect(await w.set('a', '1')).toBe('OK');
    expect(await r.get('a')).toBe('1');
    expect(await w.incr('a')).toBe(2);
    expect(await r.get('a')).toBe('2');
    expect(await client(leader).get('a')).toBe('2');
    expect(await r.info('replication')).toContain('role:slave');
    expect(await client(leader).call('WAIT', '2', '2000')).toBe(2);
  });

  it('delivers messages published on another node, in order', async () => {
    await startCluster(3);
    const { followers, leader } = leaderAndFollowers();
    const sub = client(followers[0] as RespServer);
    const psub = client(leader);
    const pub = client(followers[1] as RespServer);
    const got: string[] = [];
    const pgot: string[] = [];
    sub.on('message', (channel: string, message: string) => got.push(`${channel}:${message}`));
    psub.on('pmessage', (pattern: string, channel: string, message: string) =>
      pgot.push(`${pattern}:${channel}:${message}`),
    );
    expect(await sub.subscribe('news', 'other')).toBe(2);
    expect(await psub.psubscribe('n?ws')).toBe(1);
    for (let i = 0; i < 20; i++) await pub.publish('news', String(i));
    await pub.publish('other', 'last');
    await waitFor('the messages', () =>
      got.length === 21 && pgot.length === 20 ? true : undefined,
    );
    expect(got).toEqual([...Array.from({ length: 20 }, (_, i) => `news:${i}`), 'other:last']);
    expect(pgot).toEqual(Array.from({ length: 20 }, (_, i) => `n?ws:news:${i}`));
    expect(await pub.call('PUBSUB', 'NUMSUB', 'news')).toEqual(['news', 0]);
    // PUBLISH answers this node's receivers: one pattern subscriber on the leader.
    expect(await client(leader).publish('news', 'x')).toBe(1);
  });
});

const exec = promisify(execFile);

async function hasRedisCli(): Promise<boolean> {
  try {
    await exec('redis-cli', ['--version']);
    return true;
  } catch {
    return false;
  }
}

const redisCli = await hasRedisCli();
if (!redisCli) console.info('redis-cli is not installed: skipping the redis-cli test');

describe.skipIf(!redisCli)('RespServer with redis-cli', () => {
  it('serves redis-cli', async () => {
    const [server] = await startCluster(1);
    const port = String((server as RespServer).port);
    const run = async (...args: string[]) =>
      (await exec('redis-cli', ['-h', '127.0.0.1', '-p', port, ...args])).stdout.trim();
    expect(await run('SET', 'k', 'v')).toBe('OK');
    expect(await run('GET', 'k')).toBe('v');
    expect(await run('-3', 'HELLO')).toContain('tandem');
  });
});
