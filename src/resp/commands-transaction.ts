/**
 * MULTI/EXEC/DISCARD/WATCH/UNWATCH as src/kv/index.ts asks of the runtime:
 * commands are checked and queued here, WATCH records revisions after a read
 * barrier, and EXEC proposes the whole block as one log entry.
 */

import {
  type CommandSpec,
  dbCount,
  error,
  ok,
  type Reply,
  simple,
  type WatchedKey,
} from '../kv/index.js';
import { parseInteger } from './commands-connection.js';
import type { CommandContext, Outcome } from './commands-context.js';
import { multiCommandsMax } from './session.js';

/** Keys one connection may WATCH (a limit on everything). */
export const watchedKeysMax = 10_000;

/** Commands that act on the transaction itself rather than being queued. */
export const transactionControl: ReadonlySet<string> = new Set([
  'exec',
  'discard',
  'multi',
  'watch',
  'quit',
  'reset',
]);

/** The connection commands EXEC can run itself (src/kv/state-machine.ts). */
const queueableLocal = new Set(['ping', 'echo', 'select']);

const queued = simple('QUEUED');

/** Queues a command inside MULTI, or refuses it and flags the transaction. */
export function queueCommand(ctx: CommandContext, argv: string[], spec: CommandSpec): Outcome {
  const session = ctx.session;
  const queue = session.multi;
  if (queue === null) throw new Error('queueCommand outside MULTI');
  const local = spec.class === 'connection' || spec.class === 'server';
  if (local && !queueableLocal.has(spec.name)) {
    session.multiFailed = true;
    return error('ERR Command not allowed inside a transaction');
  }
  if (queue.length >= multiCommandsMax) {
    session.multiFailed = true;
    return error(`ERR a transaction holds at most ${multiCommandsMax} commands`);
  }
  queue.push(argv);
  return queued;
}

/** A refused command inside MULTI (unknown, wrong arity) also aborts the EXEC. */
export function refuseInMulti(ctx: CommandContext, reply: Reply): Outcome {
  if (ctx.session.multi !== null) ctx.session.multiFailed = true;
  return reply;
}

export function multi(ctx: CommandContext): Outcome {
  if (ctx.session.multi !== null) return error('ERR MULTI calls can not be nested');
  ctx.session.multi = [];
  ctx.session.multiFailed = false;
  return ok;
}

export function discard(ctx: CommandContext): Outcome {
  if (ctx.session.multi === null) return error('ERR DISCARD without MULTI');
  ctx.session.clearTransaction();
  return ok;
}

export function unwatch(ctx: CommandContext): Outcome {
  ctx.session.watched = [];
  return ok;
}

export async function watch(ctx: CommandContext, argv: readonly string[]): Promise<Outcome> {
  const session = ctx.session;
  if (session.multi !== null) return error('ERR WATCH inside MULTI is not allowed');
  const db = session.db;
  const keys = argv.slice(1);
  if (session.watched.length + keys.length > watchedKeysMax) {
    return error(`ERR a connection may WATCH at most ${watchedKeysMax} keys`);
  }
  const recorded: WatchedKey[] = [];
  for (const key of keys) {
    if (session.watched.some((w) => w.db === db && w.key === key)) continue;
    const revision = await ctx.server.node.watchRevision(db, key);
    if (typeof revision !== 'number') return revision;
    recorded.push({ db, key, revision });
  }
  session.watched.push(...recorded);
  return ok;
}

export async function exec(ctx: CommandContext): Promise<Outcome> {
  const session = ctx.session;
  const commands = session.multi;
  if (commands === null) return error('ERR EXEC without MULTI');
  const failed = session.multiFailed;
  const watched = session.watched;
  const db = session.db;
  session.clearTransaction();
  if (failed) return error('EXECABORT Transaction discarded because of previous errors.');
  const reply = await ctx.server.node.exec(db, commands, watched, session.issueWrite());
  if (reply.kind === 'array') session.db = dbAfter(db, commands, reply.items);
  return reply;
}

/** The db a successful EXEC leaves selected: its last SELECT that succeeded. */
function dbAfter(db: number, commands: readonly string[][], replies: readonly Reply[]): number {
  let selected = db;
  for (const [i, argv] of commands.entries()) {
    if ((argv[0] ?? '').toLowerCase() !== 'select' || replies[i]?.kind === 'error') continue;
    const n = parseInteger(argv[1] ?? '');
    if (n !== undefined && n >= 0 && n < dbCount) selected = n;
  }
  return selected;
}
