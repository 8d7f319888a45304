/**
 * What the commands answered by the RESP layer itself (connection, server,
 * transaction and pub/sub commands) see of the connection and the server.
 */

import type { Reply } from '../kv/index.js';
import type { TandemNode } from '../node/tandem-node.js';
import type { PubSubRegistry } from './commands-pubsub.js';
import type { Session } from './session.js';

/** One reply, or several for one command (SUBSCRIBE confirms each channel). */
export type Outcome = Reply | readonly Reply[];

/** Server-wide settings that CONFIG GET reports and CONFIG SET may change. */
export interface ServerSettings {
  maxClients: number;
  bulkBytesMax: number;
  queryBufferBytesMax: number;
  outputBufferBytesMax: number;
}

export interface ServerStats {
  readonly startedMs: number;
  connectionsReceived: number;
  commandsProcessed: number;
  rejectedConnections: number;
}

/** The server as the commands see it. */
export interface ServerView {
  readonly node: TandemNode;
  readonly settings: ServerSettings;
  readonly stats: ServerStats;
  readonly pubsub: PubSubRegistry;
  /** The port clients connect to. */
  readonly port: number;
  sessions(): Iterable<Session>;
}

export interface CommandContext {
  readonly session: Session;
  readonly server: ServerView;
  /** Closes the connection once this command's reply is written (QUIT). */
  closeAfterReply(): void;
  /** Whether the connection is gone (long waits stop early). */
  isClosed(): boolean;
}

export type Handler = (ctx: CommandContext, argv: readonly string[]) => Outcome | Promise<Outcome>;
