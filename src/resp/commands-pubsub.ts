/**
 * Pub/sub on one node: local subscriptions, delivery of the messages the
 * node applies (PUBLISH goes through the log, so every node delivers every
 * message, in log order), and the SUBSCRIBE family with Redis's replies.
 */

import { array, bulk, error, integer, nullReply, type Published, type Reply } from '../kv/index.js';
import { globMatch } from '../kv/parse.js';
import type { CommandContext, Outcome } from './commands-context.js';
import type { Session } from './session.js';

/** A connection that can receive out-of-band messages. */
export interface Subscriber {
  readonly session: Session;
  /** Queues a push message after the replies already queued. */
  push(message: Reply): void;
}

export class PubSubRegistry {
  private readonly channels = new Map<string, Set<Subscriber>>();
  private readonly patterns = new Map<string, Set<Subscriber>>();

  /** Adds `name` to the subscriber's channels (or patterns); false if already there. */
  add(kind: 'channel' | 'pattern', subscriber: Subscriber, name: string): boolean {
    const own = kind === 'channel' ? subscriber.session.channels : subscriber.session.patterns;
    if (own.has(name)) return false;
    own.add(name);
    const index = kind === 'channel' ? this.channels : this.patterns;
    let set = index.get(name);
    if (set === undefined) {
      set = new Set();
      index.set(name, set);
    }
    set.add(subscriber);
    return true;
  }

  remove(kind: 'channel' | 'pattern', subscriber: Subscriber, name: string): boolean {
    const own = kind === 'channel' ? subscriber.session.channels : subscriber.session.patterns;
    if (!own.delete(name)) return false;
    const index = kind === 'channel' ? this.channels : this.patterns;
    const set = index.get(name);
    set?.delete(subscriber);
    if (set?.size === 0) index.delete(name);
    return true;
  }

  /** Drops every subscription of a closing (or RESET) connection. */
  removeAll(subscriber: Subscriber): void {
    for (const name of [...subscriber.session.channels]) this.remove('channel', subscriber, name);
    for (const name of [...subscriber.session.patterns]) this.remove('pattern', subscriber, name);
  }

  /** How many local subscriptions receive a message on `channel` (PUBLISH's answer). */
  receivers(channel: string): number {
    let count = this.channels.get(channel)?.size ?? 0;
    for (const [pattern, set] of this.patterns) if (globMatch(pattern, channel)) count += set.size;
    return count;
  }

  deliver(published: Published): void {
    const { channel, message } = published;
    const direct = this.channels.get(channel);
    if (direct !== undefined) {
      const push: Reply = { kind: 'push', items: [bulk('message'), bulk(channel), bulk(message)] };
      for (const subscriber of direct) subscriber.push(push);
    }
    for (const [pattern, set] of this.patterns) {
      if (!globMatch(pattern, channel)) continue;
      const push: Reply = {
        kind: 'push',
        items: [bulk('pmessage'), bulk(pattern), bulk(channel), bulk(message)],
      };
      for (const subscriber of set) subscriber.push(push);
    }
  }

  channelNames(pattern: string | undefined): string[] {
    const names = [...this.channels.keys()];
    return pattern === undefined ? names : names.filter((name) => globMatch(pattern, name));
  }

  subscriberCount(channel: string): number {
    return this.channels.get(channel)?.size ?? 0;
  }

  get patternCount(): number {
    return this.patterns.size;
  }

  get channelCount(): number {
    return this.channels.size;
  }
}

function confirmation(kind: string, name: string | null, count: number): Reply {
  return {
    kind: 'push',
    items: [bulk(kind), name === null ? nullReply : bulk(name), integer(count)],
  };
}

/** SUBSCRIBE / PSUBSCRIBE: one confirmation per name. */
export function subscribe(
  ctx: CommandContext,
  subscriber: Subscriber,
  argv: readonly string[],
  kind: 'channel' | 'pattern',
): Outcome {
  if (ctx.session.multi !== null) {
    return error(`ERR Command not allowed inside a transaction`);
  }
  const replies: Reply[] = [];
  for (const name of argv.slice(1)) {
    ctx.server.pubsub.add(kind, subscriber, name);
    const label = kind === 'channel' ? 'subscribe' : 'psubscribe';
    replies.push(confirmation(label, name, ctx.session.subscriptionCount));
  }
  return replies;
}

/** UNSUBSCRIBE / PUNSUBSCRIBE: the named ones, or all; one confirmation each. */
export function unsubscribe(
  ctx: CommandContext,
  subscriber: Subscriber,
  argv: readonly string[],
  kind: 'channel' | 'pattern',
): Outcome {
  const session = ctx.session;
  const label = kind === 'channel' ? 'unsubscribe' : 'punsubscribe';
  const own = kind === 'channel' ? session.channels : session.patterns;
  const names = argv.length > 1 ? argv.slice(1) : [...own];
  if (names.length === 0) return [confirmation(label, null, session.subscriptionCount)];
  const replies: Reply[] = [];
  for (const name of names) {
    ctx.server.pubsub.remove(kind, subscriber, name);
    replies.push(confirmation(label, name, session.subscriptionCount));
  }
  return replies;
}

/** PUBSUB CHANNELS [pattern] | NUMSUB [channel...] | NUMPAT, from local subscriptions. */
export function pubsubCommand(ctx: CommandContext, argv: readonly string[]): Outcome {
  const registry = ctx.server.pubsub;
  const sub = (argv[1] ?? '').toLowerCase();
  if (sub === 'channels' && argv.length <= 3) {
    return array(registry.channelNames(argv[2]).map(bulk));
  }
  if (sub === 'numsub') {
    return {
      kind: 'map',
      entries: argv.slice(2).map((name) => [bulk(name), integer(registry.subscriberCount(name))]),
    };
  }
  if (sub === 'numpat' && argv.length === 2) return integer(registry.patternCount);
  if ((sub === 'shardchannels' && argv.length <= 3) || sub === 'shardnumsub') {
    return sub === 'shardchannels' ? array([]) : { kind: 'map', entries: [] };
  }
  if (sub === 'help') {
    return array([bulk('PUBSUB CHANNELS [<pattern>]'), bulk('PUBSUB NUMSUB [<channel> ...]')]);
  }
  return error(`ERR unknown subcommand '${argv[1] ?? ''}'. Try PUBSUB HELP.`);
}
