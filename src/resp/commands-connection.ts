/**
 * Connection commands answered by the RESP layer: PING, ECHO, HELLO, AUTH,
 * SELECT, CLIENT, QUIT, RESET, READONLY, READWRITE. Error texts are Redis's.
 */

import {
  array,
  bulk,
  dbCount,
  error,
  integer,
  nullReply,
  ok,
  type Reply,
  simple,
} from '../kv/index.js';
import type { CommandContext, Outcome } from './commands-context.js';

/** The Redis version we report: clients gate features on it. */
export const redisCompatVersion = '7.2.0';
export const tandemVersion = '0.1.0';

const noPasswordError =
  'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?';
const wrongPassError = 'WRONGPASS invalid username-password pair or user is disabled.';

/** A decimal integer as Redis's string2ll accepts it, or undefined. */
export function parseInteger(s: string): number | undefined {
  if (!/^-?(0|[1-9][0-9]{0,17})$/.test(s)) return undefined;
  const value = Number(s);
  return Number.isSafeInteger(value) ? value : undefined;
}

export function ping(ctx: CommandContext, argv: readonly string[]): Outcome {
  if (argv.length > 2) return error("ERR wrong number of arguments for 'ping' command");
  if (ctx.session.inSubscribedMode) return array([bulk('pong'), bulk(argv[1] ?? '')]);
  return argv.length === 2 ? bulk(argv[1] as string) : simple('PONG');
}

export function echo(_ctx: CommandContext, argv: readonly string[]): Outcome {
  return bulk(argv[1] as string);
}

/** AUTH with the default user and no password configured, as Redis 6+ behaves. */
function checkAuth(user: string | undefined, _password: string): Reply | null {
  if (user === undefined) return error(noPasswordError);
  return user === 'default' ? null : error(wrongPassError);
}

export function auth(_ctx: CommandContext, argv: readonly string[]): Outcome {
  if (argv.length > 3) return error('ERR syntax error');
  const failure =
    argv.length === 2 ? checkAuth(undefined, argv[1] as string) : checkAuth(argv[1], argv[2] ?? '');
  return failure ?? ok;
}

export function hello(ctx: CommandContext, argv: readonly string[]): Outcome {
  const session = ctx.session;
  let protocol = session.protocol;
  let name: string | undefined;
  let i = 1;
  if (argv.length > 1) {
    const version = parseInteger(argv[1] as string);
    if (version === undefined)
      return error('ERR Protocol version is not an integer or out of range');
    if (version !== 2 && version !== 3) return error('NOPROTO unsupported protocol version');
    protocol = version;
    i = 2;
  }
  for (; i < argv.length; i++) {
    const option = (argv[i] as string).toLowerCase();
    const left = argv.length - i - 1;
    if (option === 'auth' && left >= 2) {
      const failure = checkAuth(argv[i + 1], argv[i + 2] as string);
      if (failure !== null) return failure;
      i += 2;
    } else if (option === 'setname' && left >= 1) {
      name = argv[i + 1] as string;
      if (!validClientName(name)) return error(badNameError);
      i += 1;
    } else {
      return error(`ERR Syntax error in HELLO option '${argv[i] as string}'`);
    }
  }
  session.protocol = protocol;
  if (name !== undefined) session.name = name;
  const node = ctx.server.node;
  return {
    kind: 'map',
    entries: [
      [bulk('server'), bulk('tandem')],
      [bulk('version'), bulk(redisCompatVersion)],
      [bulk('proto'), integer(protocol)],
      [bulk('id'), integer(session.id)],
      [bulk('mode'), bulk('standalone')],
      [bulk('role'), bulk(node.isLeader ? 'master' : 'replica')],
      [bulk('modules'), array([])],
    ],
  };
}

export function select(ctx: CommandContext, argv: readonly string[]): Outcome {
  const db = parseInteger(argv[1] as string);
  if (db === undefined) return error('ERR value is not an integer or out of range');
  if (db < 0 || db >= dbCount) return error('ERR DB index is out of range');
  ctx.session.db = db;
  return ok;
}

export function readonlyCommand(ctx: CommandContext): Outcome {
  ctx.session.readonly = true;
  return ok;
}

export function readwriteCommand(ctx: CommandContext): Outcome {
  ctx.session.readonly = false;
  return ok;
}

export function quit(ctx: CommandContext): Outcome {
  ctx.closeAfterReply();
  return ok;
}

const badNameError = 'ERR Client names cannot contain spaces, newlines or special characters.';

/** Redis allows printable ASCII without spaces ('!' to '~'). */
function validClientName(name: string): boolean {
  return /^[!-~]*$/.test(name);
}

function verbatimText(text: string): Reply {
  return { kind: 'verbatim', format: 'txt', value: text };
}

export function client(ctx: CommandContext, argv: readonly string[]): Outcome {
  const session = ctx.session;
  const sub = (argv[1] as string).toLowerCase();
  const n = argv.length;
  switch (sub) {
    case 'id':
      return n === 2 ? integer(session.id) : wrongSubArgs('client|id');
    case 'getname':
      return n === 2
        ? session.name === ''
          ? nullReply
          : bulk(session.name)
        : wrongSubArgs('client|getname');
    case 'setname': {
      if (n !== 3) return wrongSubArgs('client|setname');
      const name = argv[2] as string;
      if (!validClientName(name)) return error(badNameError);
      session.name = name;
      return ok;
    }
    case 'info':
      return n === 2
        ? verbatimText(`${session.describe(Date.now())}\n`)
        : wrongSubArgs('client|info');
    case 'list': {
      const now = Date.now();
      let text = '';
      for (const s of ctx.server.sessions()) text += `${s.describe(now)}\n`;
      return verbatimText(text);
    }
    case 'setinfo':
      return clientSetInfo(ctx, argv);
    case 'no-evict':
    case 'no-touch': {
      const mode = (argv[2] ?? '').toLowerCase();
      if (n !== 3 || (mode !== 'on' && mode !== 'off')) return error('ERR syntax error');
      return ok;
    }
    case 'reply': {
      // Only ON is meaningful without a fire-and-forget mode; accept it.
      return (argv[2] ?? '').toLowerCase() === 'on' && n === 3
        ? ok
        : error('ERR CLIENT REPLY OFF|SKIP is not supported by Tandem');
    }
    case 'help':
      return array(
        [
          'CLIENT ID',
          'CLIENT GETNAME',
          'CLIENT SETNAME <name>',
          'CLIENT INFO',
          'CLIENT LIST',
          'CLIENT SETINFO <LIB-NAME|LIB-VER> <value>',
          'CLIENT NO-EVICT <ON|OFF>',
          'CLIENT NO-TOUCH <ON|OFF>',
        ].map(simple),
      );
    default:
      return error(`ERR unknown subcommand '${argv[1] as string}'. Try CLIENT HELP.`);
  }
}

function clientSetInfo(ctx: CommandContext, argv: readonly string[]): Outcome {
  if (argv.length !== 4) return wrongSubArgs('client|setinfo');
  const attribute = (argv[2] as string).toLowerCase();
  const value = argv[3] as string;
  if (attribute !== 'lib-name' && attribute !== 'lib-ver') {
    return error(`ERR Unrecognized option '${argv[2] as string}'`);
  }
  if (!/^[!-~]*$/.test(value)) {
    return error(`ERR ${attribute} cannot contain spaces, newlines or special characters.`);
  }
  if (attribute === 'lib-name') ctx.session.libName = value;
  else ctx.session.libVer = value;
  return ok;
}

export function wrongSubArgs(name: string): Reply {
  return error(`ERR wrong number of arguments for '${name}' command`);
}
