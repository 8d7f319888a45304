/**
 * One client connection: parse pipelined requests, run them, and write the
 * replies in request order although writes and reads complete out of order.
 *
 * Ordering: a connection's commands must take effect in the order sent, as
 * on a single-threaded Redis. Writes may be in flight together (the log
 * orders them), and so may reads, but a read never overlaps a write of the
 * same connection (the read could miss it, or see a later one), and any
 * other command waits until nothing is in flight.
 */

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import {
  type CommandSpec,
  error,
  integer,
  type LookupResult,
  lookupCommand,
  type Reply,
  simple,
} from '../kv/index.js';
import type { ReplySink } from '../node/tandem-node.js';
import { assert } from '../raft/assert.js';
import * as connection from './commands-connection.js';
import type { CommandContext, Handler, Outcome, ServerView } from './commands-context.js';
import { pubsubCommand, type Subscriber, subscribe, unsubscribe } from './commands-pubsub.js';
import * as server from './commands-server.js';
import * as transaction from './commands-transaction.js';
import { type Protocol, ReplyWriter } from './encoder.js';
import { type ProtocolError, RequestParser, type RequestParserOptions } from './parser.js';
import { Session } from './session.js';

export interface ConnectionLimits {
  /** Commands parsed but not answered; above it the connection stops reading. */
  readonly inflightCommandsMax: number;
  /** Bytes queued for the client; above it the client is disconnected. */
  readonly outputBufferBytesMax: number;
  readonly parser: RequestParserOptions;
}

/** How a command may overlap the ones before it (see the file comment). */
type Kind = 'read' | 'write' | 'exclusive';

/** One reply's place in the connection's reply order. */
class Slot {
  outcome: Outcome | null = null;
  /** Close the connection once this slot is written (QUIT, protocol error). */
  closeAfter = false;
  /** Estimated bytes of a queued push message, counted against the output limit. */
  pushBytes = 0;

  constructor(
    public protocol: Protocol,
    /** The command's name as sent, for the log ('' for a push or a protocol error). */
    readonly command: string,
  ) {}
}

/** `run`'s answer for a write whose reply comes through the ReplySink methods. */
const answeredLater = Symbol('answeredLater');

type Pending = string[] | ProtocolError;

const subscribedModeCommands = new Set([
  'subscribe',
  'unsubscribe',
  'psubscribe',
  'punsubscribe',
  'ssubscribe',
  'sunsubscribe',
  'ping',
  'quit',
  'reset',
]);

export class Connection implements Subscriber, ReplySink<Slot> {
  readonly session: Session;
  private readonly parser: RequestParser;
  private readonly writer = new ReplyWriter();
  private readonly ctx: CommandContext;
  private readonly handlers: ReadonlyMap<string, Handler>;

  /** Parsed, not yet started; invariant: pending.length + inflight <= inflightCommandsMax + 1. */
  private pending: Pending[] = [];
  private pendingHead = 0;
  /** Started, in request order, answered or not; replies leave from the head. */
  private slots: Slot[] = [];
  private slotsHead = 0;
  private inflight = 0;
  private inflightKind: Kind | null = null;
  private queuedPushBytes = 0;

  /** No more commands are run (QUIT, protocol error, server shutdown). */
  private closing = false;
  private closed = false;
  private waitingForDrain = false;
  private readingPaused = false;
  private flushScheduled: NodeJS.Immediate | null = null;
  private currentSlot: Slot | null = null;

  constructor(
    private readonly socket: Socket,
    id: number,
    private readonly view: ServerView,
    private readonly limits: ConnectionLimits,
    private readonly log: Logger,
  ) {
    const addr = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
    const laddr = `${socket.localAddress ?? ''}:${socket.localPort ?? 0}`;
    this.session = new Session(id, addr, laddr);
    this.parser = new RequestParser(limits.parser);
    this.ctx = {
      session: this.session,
      server: view,
      closeAfterReply: () => {
        if (this.currentSlot !== null) this.currentSlot.closeAfter = true;
        this.closing = true;
      },
      isClosed: () => this.closed,
    };
    this.handlers = this.buildHandlers();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.waitingForDrain = false;
      this.updateReading();
    });
    socket.on('error', (failure) =>
      this.log.debug({ err: failure, client: id }, 'client socket error'),
    );
    socket.on('close', () => {
      this.closed = true;
      this.closing = true;
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues a pub/sub message after the replies already queued. */
  push(message: Reply): void {
    if (this.closed) return;
    let bytes = 16;
    if (message.kind === 'push')
      for (const item of message.items)
        bytes += 16 + (item.kind === 'bulk' ? item.value.length : 0);
    this.queuedPushBytes += bytes;
    const slot = new Slot(this.session.protocol, '');
    slot.outcome = message;
    slot.pushBytes = bytes;
    this.slots.push(slot);
    this.scheduleFlush();
  }

  /** Server shutdown: run nothing more, send what is answered, then close. */
  shutdown(): void {
    this.closing = true;
    this.pending = [];
    this.pendingHead = 0;
    this.updateReading();
    this.maybeEnd();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    this.parser.feed(chunk);
    this.pump();
  }

  /** Parses what fits within the in-flight bound and starts what may start. */
  private pump(): void {
    for (;;) {
      this.parseSome();
      if (!this.startSome()) break;
    }
    this.updateReading();
    this.maybeEnd();
  }

  private parseSome(): void {
    const max = this.limits.inflightCommandsMax;
    while (!this.closing && this.pendingCount + this.inflight < max) {
      const next = this.parser.next();
      if (next === null) return;
      this.pending.push(next);
      if (!Array.isArray(next)) return;
    }
  }

  private get pendingCount(): number {
    return this.pending.length - this.pendingHead;
  }

  /** Starts pending commands in order while allowed; true if any started. */
  private startSome(): boolean {
    let started = false;
    while (!this.closing && this.pendingHead < this.pending.length) {
      const next = this.pending[this.pendingHead] as Pending;
      if (!Array.isArray(next)) {
        if (this.inflight > 0) break;
        this.takePending();
        this.protocolError(next);
        return true;
      }
      const found = lookupCommand(next);
      const kind = this.classify(found);
      if (!this.mayStart(kind)) break;
      this.takePending();
      this.start(next, found, kind);
      started = true;
    }
    return started;
  }

  private takePending(): void {
    this.pendingHead++;
    if (this.pendingHead === this.pending.length) {
      this.pending = [];
      this.pendingHead = 0;
    }
  }

  private mayStart(kind: Kind): boolean {
    return this.inflight === 0 || (kind !== 'exclusive' && kind === this.inflightKind);
  }

  private classify(found: LookupResult): Kind {
    if (!found.ok) return 'exclusive';
    const session = this.session;
    if (session.multi !== null && !transaction.transactionControl.has(found.spec.name)) {
      return 'exclusive';
    }
    if (session.inSubscribedMode) return 'exclusive';
    if (found.spec.class === 'write') return 'write';
    if (found.spec.class === 'read') return 'read';
    return 'exclusive';
  }

  private start(argv: string[], found: LookupResult, kind: Kind): void {
    const slot = new Slot(this.session.protocol, argv[0] ?? '');
    this.slots.push(slot);
    this.view.stats.commandsProcessed++;
    this.currentSlot = slot;
    let result: Outcome | Promise<Outcome> | typeof answeredLater;
    try {
      result = this.execute(argv, found);
    } catch (failure) {
      result = this.internalError(failure, slot.command);
    } finally {
      this.currentSlot = null;
    }
    // HELLO answers in the protocol it switches to.
    slot.protocol = this.session.protocol;
    if (result === answeredLater) {
      this.inflight++;
      this.inflightKind = kind;
      return;
    }
    if (!(result instanceof Promise)) {
      this.answer(slot, result);
      return;
    }
    this.inflight++;
    this.inflightKind = kind;
    result.then(
      (outcome) => this.finish(slot, outcome),
      (failure: unknown) => this.finish(slot, this.internalError(failure, slot.command)),
    );
  }

  /** A write's reply, from the node (ReplySink). */
  reply(slot: Slot, reply: Reply): void {
    this.finish(slot, reply);
  }

  /** A write failed unexpectedly (ReplySink). */
  fail(slot: Slot, failure: unknown): void {
    this.finish(slot, this.internalError(failure, slot.command));
  }

  private finish(slot: Slot, outcome: Outcome): void {
    assert(this.inflight > 0 && slot.outcome === null, 'an in-flight command is answered once');
    this.inflight--;
    if (this.inflight === 0) this.inflightKind = null;
    this.answer(slot, outcome);
    if (this.closed) return;
    this.pump();
    // Every command this client sent is answered: nothing more can join the
    // batch, so it goes out now rather than after the peer messages and the
    // I/O callbacks queued behind this turn (a sequential client's latency).
    if (this.inflight === 0 && this.pendingCount === 0 && this.flushScheduled !== null) {
      clearImmediate(this.flushScheduled);
      this.flush();
    }
  }

  private internalError(failure: unknown, command: string): Reply {
    this.log.error({ err: failure, command: command.slice(0, 64) }, 'command failed unexpectedly');
    return error('ERR internal error; see the server log');
  }

  private execute(
    argv: string[],
    found: LookupResult,
  ): Outcome | Promise<Outcome> | typeof answeredLater {
    const session = this.session;
    session.lastCommandMs = Date.now();
    if (!found.ok) return transaction.refuseInMulti(this.ctx, found.error);
    const spec = found.spec;
    session.lastCommand = spec.name;
    if (session.multi !== null && !transaction.transactionControl.has(spec.name)) {
      return transaction.queueCommand(this.ctx, argv, spec);
    }
    if (session.inSubscribedMode && !subscribedModeCommands.has(spec.name)) {
      return error(
        `ERR Can't execute '${spec.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`,
      );
    }
    return this.run(spec, argv);
  }

  private run(
    spec: CommandSpec,
    argv: string[],
  ): Outcome | Promise<Outcome> | typeof answeredLater {
    const node = this.view.node;
    const db = this.session.db;
    if (spec.class === 'write') {
      if (spec.name === 'publish') return this.publish(db, argv);
      const slot = this.currentSlot;
      assert(slot !== null, 'a command runs in its slot');
      return node.writeTo(db, argv, this.session.issueWrite(), this, slot) ?? answeredLater;
    }
    if (spec.class === 'read') return node.read(db, argv, this.session.readonly);
    const handler = this.handlers.get(spec.name);
    if (handler === undefined) return error(`ERR '${spec.name}' is not implemented by Tandem yet`);
    return handler(this.ctx, argv);
  }

  /** PUBLISH goes through the log; it answers this node's receivers, as Redis answers its own. */
  private async publish(db: number, argv: string[]): Promise<Outcome> {
    const reply = await this.view.node.write(db, argv, this.session.issueWrite());
    if (reply.kind !== 'integer') return reply;
    return integer(this.view.pubsub.receivers(argv[1] as string));
  }

  private reset(): Outcome {
    this.view.pubsub.removeAll(this);
    this.session.reset();
    return simple('RESET');
  }

  private buildHandlers(): ReadonlyMap<string, Handler> {
    return new Map<string, Handler>([
      ['ping', connection.ping],
      ['echo', connection.echo],
      ['hello', connection.hello],
      ['auth', connection.auth],
      ['select', connection.select],
      ['client', connection.client],
      ['quit', connection.quit],
      ['reset', () => this.reset()],
      ['readonly', connection.readonlyCommand],
      ['readwrite', connection.readwriteCommand],
      ['command', server.command],
      ['config', server.config],
      ['info', server.info],
      ['role', server.role],
      ['time', server.time],
      ['wait', server.wait],
      ['multi', transaction.multi],
      ['exec', transaction.exec],
      ['discard', transaction.discard],
      ['watch', transaction.watch],
      ['unwatch', transaction.unwatch],
      ['subscribe', (ctx, argv) => subscribe(ctx, this, argv, 'channel')],
      ['psubscribe', (ctx, argv) => subscribe(ctx, this, argv, 'pattern')],
      ['unsubscribe', (ctx, argv) => unsubscribe(ctx, this, argv, 'channel')],
      ['punsubscribe', (ctx, argv) => unsubscribe(ctx, this, argv, 'pattern')],
      ['pubsub', pubsubCommand],
    ]);
  }

  /** Replies to what came before, then `-ERR Protocol error...` (or nothing) and close. */
  private protocolError(failure: ProtocolError): void {
    this.log.info(
      { client: this.session.id, addr: this.session.addr, reason: failure.message },
      'closing client: protocol error',
    );
    const outcome = failure.replyBeforeClose ? error(`ERR ${failure.message}`) : [];
    const slot = new Slot(this.session.protocol, '');
    slot.outcome = outcome;
    slot.closeAfter = true;
    this.slots.push(slot);
    this.closing = true;
    this.scheduleFlush();
  }

  private answer(slot: Slot, outcome: Outcome): void {
    slot.outcome = outcome;
    this.scheduleFlush();
  }

  /**
   * Batches every reply that completes in this turn of the event loop into
   * one write (`finish` writes at once when nothing is left in flight).
   */
  private scheduleFlush(): void {
    if (this.flushScheduled !== null) return;
    this.flushScheduled = setImmediate(this.flushNow);
  }

  /** One function for every scheduled flush, not a closure each. */
  private readonly flushNow = (): void => this.flush();

  private flush(): void {
    this.flushScheduled = null;
    if (this.closed || this.socket.writableEnded) return;
    let endNow = false;
    while (this.slotsHead < this.slots.length) {
      const slot = this.slots[this.slotsHead] as Slot;
      if (slot.outcome === null) {
        assert(this.inflight > 0, 'an unanswered slot belongs to an in-flight command');
        break;
      }
      this.slotsHead++;
      this.queuedPushBytes -= slot.pushBytes;
      this.writeOutcome(slot.outcome, slot.protocol);
      if (slot.closeAfter) {
        endNow = true;
        break;
      }
    }
    if (this.slotsHead === this.slots.length) {
      this.slots = [];
      this.slotsHead = 0;
    }
    const batch = this.writer.take();
    if (batch.length > 0 && !this.socket.write(batch)) this.waitingForDrain = true;
    if (endNow) {
      this.closing = true;
      this.socket.end();
      return;
    }
    if (this.socket.writableLength + this.queuedPushBytes > this.limits.outputBufferBytesMax) {
      this.log.warn(
        {
          client: this.session.id,
          addr: this.session.addr,
          queuedBytes: this.socket.writableLength + this.queuedPushBytes,
        },
        'closing client: output buffer limit reached',
      );
      this.socket.destroy();
      return;
    }
    this.updateReading();
    this.maybeEnd();
  }

  private writeOutcome(outcome: Outcome, protocol: Protocol): void {
    if (Array.isArray(outcome)) {
      for (const reply of outcome as readonly Reply[]) this.writer.write(reply, protocol);
    } else {
      this.writer.write(outcome as Reply, protocol);
    }
  }

  /** Pauses reading while the client is not draining or too much is in flight. */
  private updateReading(): void {
    if (this.closed) return;
    const full = this.pendingCount + this.inflight >= this.limits.inflightCommandsMax;
    const pause = this.closing || this.waitingForDrain || full;
    if (pause && !this.readingPaused) {
      this.readingPaused = true;
      this.socket.pause();
    } else if (!pause && this.readingPaused) {
      this.readingPaused = false;
      this.socket.resume();
    }
  }

  /** During shutdown, ends the socket once every started command is answered and sent. */
  private maybeEnd(): void {
    if (!this.closing || this.closed || this.inflight > 0) return;
    if (this.slotsHead < this.slots.length || this.flushScheduled !== null) return;
    this.socket.end();
  }
}
