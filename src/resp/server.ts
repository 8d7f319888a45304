/**
 * The RESP server: Redis clients (redis-cli, ioredis, node-redis) talk to a
 * TandemNode through it. Every node runs one; writes from any node go
 * through the leader's log, reads run locally after a read barrier.
 *
 * @example
 * const server = new RespServer({ node, host: '127.0.0.1', port: 6379, logger });
 * await server.start();
 * // redis-cli -p 6379 SET k v
 * await server.close();
 */

import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Published } from '../kv/index.js';
import type { TandemNode } from '../node/tandem-node.js';
import type { ServerSettings, ServerStats, ServerView } from './commands-context.js';
import { PubSubRegistry } from './commands-pubsub.js';
import { type RequestParserOptions, requestParserDefaults } from './parser.js';
import { Connection } from './server-connection.js';
import type { Session } from './session.js';

export interface RespServerLimits {
  /** Connections beyond this are refused with `-ERR max number of clients reached`. */
  readonly maxClients?: number;
  /** Passed to each connection's RequestParser. */
  readonly parser?: RequestParserOptions;
  /** Bytes queued for one client before it is disconnected (slow consumer). */
  readonly outputBufferBytesMax?: number;
  /** Commands of one connection parsed but not answered before it stops reading. */
  readonly inflightCommandsMax?: number;
}

export interface RespServerOptions {
  readonly node: TandemNode;
  readonly host: string;
  /** 0 picks a free port; see address(). */
  readonly port: number;
  readonly logger: Logger;
  readonly limits?: RespServerLimits;
  /** How long close() lets connections finish before cutting them. */
  readonly closeTimeoutMs?: number;
}

export const respServerDefaults = {
  maxClients: 10_000,
  outputBufferBytesMax: 64 * 1024 * 1024,
  inflightCommandsMax: 1024,
  closeTimeoutMs: 2_000,
} as const;

const maxClientsReply = '-ERR max number of clients reached\r\n';

export class RespServer implements ServerView {
  readonly node: TandemNode;
  readonly settings: ServerSettings;
  readonly stats: ServerStats = {
    startedMs: Date.now(),
    connectionsReceived: 0,
    commandsProcessed: 0,
    rejectedConnections: 0,
  };
  readonly pubsub = new PubSubRegistry();
  private readonly connections = new Map<number, Connection>();
  private readonly sockets = new Set<Socket>();
  private readonly net: Server;
  private readonly log: Logger;
  private readonly parserOptions: RequestParserOptions;
  private readonly inflightCommandsMax: number;
  private readonly closeTimeoutMs: number;
  private nextClientId = 1;
  private unsubscribe: (() => void) | null = null;
  private closing: Promise<void> | null = null;

  constructor(private readonly options: RespServerOptions) {
    this.node = options.node;
    this.log = options.logger;
    const limits = options.limits ?? {};
    this.parserOptions = limits.parser ?? {};
    this.settings = {
      maxClients: limits.maxClients ?? respServerDefaults.maxClients,
      bulkBytesMax: this.parserOptions.bulkBytesMax ?? requestParserDefaults.bulkBytesMax,
      queryBufferBytesMax:
        this.parserOptions.queryBufferBytesMax ?? requestParserDefaults.queryBufferBytesMax,
      outputBufferBytesMax: limits.outputBufferBytesMax ?? respServerDefaults.outputBufferBytesMax,
    };
    this.inflightCommandsMax = limits.inflightCommandsMax ?? respServerDefaults.inflightCommandsMax;
    this.closeTimeoutMs = options.closeTimeoutMs ?? respServerDefaults.closeTimeoutMs;
    if (this.settings.maxClients < 1 || this.inflightCommandsMax < 1) {
      throw new Error('RespServer limits must be positive');
    }
    this.net = createServer((socket) => this.accept(socket));
  }

  /** Listens on host:port and starts delivering published messages. */
  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.net.once('error', reject);
      this.net.listen(this.options.port, this.options.host, () => {
        this.net.off('error', reject);
        resolve();
      });
    });
    this.net.on('error', (failure) => this.log.error({ err: failure }, 'RESP listener error'));
    this.unsubscribe = this.node.onPublish((p: Published) => this.pubsub.deliver(p));
    this.log.info(this.address(), 'RESP server listening');
  }

  /** Where the server listens (the real port when started with port 0). */
  address(): { host: string; port: number } {
    const address = this.net.address();
    if (address === null || typeof address === 'string') {
      return { host: this.options.host, port: this.options.port };
    }
    return { host: address.address, port: address.port };
  }

  get port(): number {
    return this.address().port;
  }

  *sessions(): Iterable<Session> {
    for (const c of this.connections.values()) yield c.session;
  }

  get clientCount(): number {
    return this.connections.size;
  }

  /**
   * Stops accepting, lets each connection finish the commands it started
   * (at most closeTimeoutMs), then closes them. Resolves when all are closed.
   */
  close(): Promise<void> {
    if (this.closing === null) this.closing = this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    const listenerClosed = new Promise<void>((resolve) => this.net.close(() => resolve()));
    const socketsClosed = [...this.sockets].map(
      (socket) =>
        new Promise<void>((resolve) => {
          if (socket.destroyed) resolve();
          else socket.once('close', () => resolve());
        }),
    );
    for (const c of this.connections.values()) c.shutdown();
    const timer = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, this.closeTimeoutMs);
    await Promise.all([listenerClosed, ...socketsClosed]);
    clearTimeout(timer);
    this.log.info('RESP server closed');
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.settings.maxClients) {
      this.stats.rejectedConnections++;
      this.log.warn(
        { maxClients: this.settings.maxClients },
        'refusing client: max number of clients reached',
      );
      socket.end(maxClientsReply);
      return;
    }
    this.stats.connectionsReceived++;
    const id = this.nextClientId++;
    const connection = new Connection(
      socket,
      id,
      this,
      {
        inflightCommandsMax: this.inflightCommandsMax,
        outputBufferBytesMax: this.settings.outputBufferBytesMax,
        parser: {
          ...this.parserOptions,
          bulkBytesMax: this.settings.bulkBytesMax,
          queryBufferBytesMax: this.settings.queryBufferBytesMax,
        },
      },
      this.log,
    );
    this.connections.set(id, connection);
    socket.once('close', () => {
      this.connections.delete(id);
      this.pubsub.removeAll(connection);
    });
  }
}
