/**
 * Server commands answered by the RESP layer: COMMAND, CONFIG, INFO, ROLE,
 * TIME, WAIT. Replies follow Redis's shapes so tools that parse them work.
 */

import { arch, hostname, platform, release } from 'node:os';
import {
  array,
  bulk,
  type CommandSpec,
  commandKeys,
  commandTable,
  error,
  integer,
  lookupCommand,
  nullReply,
  ok,
  type Reply,
  simple,
} from '../kv/index.js';
import { globMatch } from '../kv/parse.js';
import {
  parseInteger,
  redisCompatVersion,
  tandemVersion,
  wrongSubArgs,
} from './commands-connection.js';
import type { CommandContext, Outcome, ServerView } from './commands-context.js';

// ---------------------------------------------------------------------------
// COMMAND

function commandInfo(spec: CommandSpec): Reply {
  return array([
    bulk(spec.name),
    integer(spec.arity),
    { kind: 'set', items: spec.flags.map(simple) },
    integer(spec.firstKey),
    integer(spec.lastKey),
    integer(spec.step),
    { kind: 'set', items: [simple(`@${spec.group}`)] },
    array([]),
    array([]),
    array([]),
  ]);
}

function commandDocs(spec: CommandSpec): Reply {
  return {
    kind: 'map',
    entries: [
      [bulk('summary'), bulk(`the ${spec.name.toUpperCase()} command`)],
      [bulk('since'), bulk('1.0.0')],
      [bulk('group'), bulk(spec.group)],
    ],
  };
}

export function command(_ctx: CommandContext, argv: readonly string[]): Outcome {
  if (argv.length === 1) return array([...commandTable.values()].map(commandInfo));
  const sub = (argv[1] as string).toLowerCase();
  const names = argv.slice(2);
  switch (sub) {
    case 'count':
      return argv.length === 2 ? integer(commandTable.size) : wrongSubArgs('command|count');
    case 'info':
      return array(
        names.map((name) => {
          const spec = commandTable.get(name.toLowerCase());
          return spec === undefined ? nullReply : commandInfo(spec);
        }),
      );
    case 'docs': {
      const specs =
        names.length === 0
          ? [...commandTable.values()]
          : names.flatMap((name) => commandTable.get(name.toLowerCase()) ?? []);
      return {
        kind: 'map',
        entries: specs.map((spec) => [bulk(spec.name), commandDocs(spec)] as const),
      };
    }
    case 'list':
      return array([...commandTable.keys()].map(bulk));
    case 'getkeys': {
      if (names.length === 0) return wrongSubArgs('command|getkeys');
      const found = lookupCommand(names);
      if (!found.ok) return error('ERR Invalid command specified');
      if (found.spec.firstKey === 0) return error('ERR The command has no key arguments');
      return array(commandKeys(found.spec, names).map(bulk));
    }
    default:
      return error(`ERR unknown subcommand '${argv[1] as string}'. Try COMMAND HELP.`);
  }
}

// ---------------------------------------------------------------------------
// CONFIG

interface ConfigParam {
  get(server: ServerView): string;
  /** Absent for parameters that cannot be changed at run time. */
  set?(server: ServerView, value: string): string | null;
}

function positiveSetter(apply: (server: ServerView, n: number) => void) {
  return (server: ServerView, value: string): string | null => {
    const n = parseMemory(value);
    if (n === undefined || n < 1) return 'argument must be a positive integer';
    apply(server, n);
    return null;
  };
}

/** `100`, `64mb`, `1gb` as Redis's memtoull reads them. */
function parseMemory(value: string): number | undefined {
  const match = /^([0-9]+)(b|k|kb|m|mb|g|gb)?$/i.exec(value);
  if (match === null) return undefined;
  const units: Record<string, number> = {
    b: 1,
    k: 1000,
    kb: 1024,
    m: 1e6,
    mb: 1024 ** 2,
    g: 1e9,
    gb: 1024 ** 3,
  };
  const n = Number(match[1]) * (units[(match[2] ?? 'b').toLowerCase()] ?? 1);
  return Number.isSafeInteger(n) ? n : undefined;
}

const fixed = (value: string): ConfigParam => ({ get: () => value });

const configParams: ReadonlyMap<string, ConfigParam> = new Map<string, ConfigParam>([
  [
    'maxclients',
    {
      get: (s) => String(s.settings.maxClients),
      set: positiveSetter((s, n) => {
        s.settings.maxClients = n;
      }),
    },
  ],
  [
    'proto-max-bulk-len',
    {
      get: (s) => String(s.settings.bulkBytesMax),
      set: positiveSetter((s, n) => {
        s.settings.bulkBytesMax = n;
      }),
    },
  ],
  [
    'client-query-buffer-limit',
    {
      get: (s) => String(s.settings.queryBufferBytesMax),
      set: positiveSetter((s, n) => {
        s.settings.queryBufferBytesMax = n;
      }),
    },
  ],
  [
    'client-output-buffer-limit',
    {
      get: (s) =>
        `normal ${s.settings.outputBufferBytesMax} 0 0 replica 0 0 0 pubsub ${s.settings.outputBufferBytesMax} 0 0`,
    },
  ],
  ['port', { get: (s) => String(s.port) }],
  ['databases', fixed('16')],
  ['appendonly', fixed('yes')],
  ['appendfsync', fixed('always')],
  ['save', fixed('')],
  ['timeout', fixed('0')],
  ['tcp-keepalive', fixed('300')],
  ['maxmemory', fixed('0')],
  ['maxmemory-policy', fixed('noeviction')],
  ['requirepass', fixed('')],
  ['protected-mode', fixed('no')],
  ['cluster-enabled', fixed('no')],
  ['notify-keyspace-events', fixed('')],
  ['replica-read-only', fixed('yes')],
  ['slave-read-only', fixed('yes')],
  ['lua-time-limit', fixed('5000')],
]);

export function config(ctx: CommandContext, argv: readonly string[]): Outcome {
  const sub = (argv[1] as string).toLowerCase();
  if (sub === 'get') {
    if (argv.length < 3) return wrongSubArgs('config|get');
    const entries: (readonly [Reply, Reply])[] = [];
    for (const [name, param] of configParams) {
      if (argv.slice(2).some((pattern) => globMatch(pattern.toLowerCase(), name))) {
        entries.push([bulk(name), bulk(param.get(ctx.server))]);
      }
    }
    return { kind: 'map', entries };
  }
  if (sub === 'set') return configSet(ctx, argv);
  if (sub === 'resetstat' && argv.length === 2) {
    ctx.server.stats.commandsProcessed = 0;
    ctx.server.stats.connectionsReceived = 0;
    ctx.server.stats.rejectedConnections = 0;
    return ok;
  }
  if (sub === 'rewrite' && argv.length === 2) {
    return error('ERR The server is running without a config file');
  }
  return error(`ERR unknown subcommand '${argv[1] as string}'. Try CONFIG HELP.`);
}

function configSet(ctx: CommandContext, argv: readonly string[]): Outcome {
  if (argv.length < 4 || argv.length % 2 !== 0) return wrongSubArgs('config|set');
  // Validate all first so a failing pair changes nothing, as Redis 7 does.
  const changes: [ConfigParam, string, string][] = [];
  for (let i = 2; i < argv.length; i += 2) {
    const name = (argv[i] as string).toLowerCase();
    const param = configParams.get(name);
    if (param?.set === undefined) {
      return error(
        `ERR Unknown option or number of arguments for CONFIG SET - '${argv[i] as string}'`,
      );
    }
    changes.push([param, name, argv[i + 1] as string]);
  }
  const before = changes.map(([param]) => param.get(ctx.server));
  for (const [index, [param, name, value]] of changes.entries()) {
    const problem = param.set?.(ctx.server, value) ?? null;
    if (problem !== null) {
      for (let j = 0; j < index; j++) {
        const [p] = changes[j] as [ConfigParam, string, string];
        p.set?.(ctx.server, before[j] as string);
      }
      return error(`ERR CONFIG SET failed (possibly related to argument '${name}') - ${problem}`);
    }
  }
  return ok;
}

// ---------------------------------------------------------------------------
// INFO

const defaultSections = [
  'server',
  'clients',
  'memory',
  'persistence',
  'stats',
  'replication',
  'cpu',
  'keyspace',
  'raft',
];

function humanBytes(n: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n}B` : `${value.toFixed(2)}${units[unit] as string}`;
}

function infoSection(server: ServerView, name: string): string[] | null {
  const node = server.node;
  const nowMs = Date.now();
  switch (name) {
    case 'server': {
      const uptimeS = Math.floor((nowMs - server.stats.startedMs) / 1000);
      return [
        `redis_version:${redisCompatVersion}`,
        `tandem_version:${tandemVersion}`,
        'redis_mode:standalone',
        `os:${platform()} ${release()} ${arch()}`,
        `arch_bits:${arch().endsWith('64') ? 64 : 32}`,
        `process_id:${process.pid}`,
        `node_version:${process.version}`,
        `tandem_node_id:${node.config.id}`,
        `tcp_port:${server.port}`,
        `server_time_usec:${nowMs * 1000}`,
        `uptime_in_seconds:${uptimeS}`,
        `uptime_in_days:${Math.floor(uptimeS / 86400)}`,
        `hostname:${hostname()}`,
      ];
    }
    case 'clients': {
      let connected = 0;
      let pubsub = 0;
      for (const s of server.sessions()) {
        connected++;
        if (s.subscriptionCount > 0) pubsub++;
      }
      return [
        `connected_clients:${connected}`,
        `maxclients:${server.settings.maxClients}`,
        'blocked_clients:0',
        `pubsub_clients:${pubsub}`,
      ];
    }
    case 'memory': {
      const memory = process.memoryUsage();
      const kv = node.kv.stats();
      const dataset = kv.approxMemoryBytes;
      // Keys and short string values live outside the JS heap (key tables, arena).
      const used = memory.heapUsed + kv.arena.reservedBytes + kv.arena.keyTableBytes;
      return [
        `used_memory:${used}`,
        `used_memory_human:${humanBytes(used)}`,
        `used_memory_rss:${memory.rss}`,
        `used_memory_rss_human:${humanBytes(memory.rss)}`,
        `used_memory_dataset:${dataset}`,
        `arena_reserved:${kv.arena.reservedBytes}`,
        `arena_free:${kv.arena.freeBytes}`,
        `arena_compactions:${kv.arena.compactions}`,
        `key_tables_bytes:${kv.arena.keyTableBytes}`,
        'maxmemory:0',
        'maxmemory_policy:noeviction',
      ];
    }
    case 'persistence':
      return ['loading:0', 'aof_enabled:1', 'rdb_changes_since_last_save:0'];
    case 'stats':
      return [
        `total_connections_received:${server.stats.connectionsReceived}`,
        `total_commands_processed:${server.stats.commandsProcessed}`,
        `rejected_connections:${server.stats.rejectedConnections}`,
        `pubsub_channels:${server.pubsub.channelCount}`,
        `pubsub_patterns:${server.pubsub.patternCount}`,
      ];
    case 'replication':
      return replicationLines(server);
    case 'cpu': {
      const cpu = process.cpuUsage();
      return [
        `used_cpu_sys:${(cpu.system / 1e6).toFixed(6)}`,
        `used_cpu_user:${(cpu.user / 1e6).toFixed(6)}`,
      ];
    }
    case 'keyspace':
      return node.kv
        .stats()
        .dbs.filter((db) => db.keys > 0)
        .map((db) => `db${db.db}:keys=${db.keys},expires=${db.expires},avg_ttl=0`);
    case 'raft': {
      const info = node.info();
      return [
        `raft_node_id:${info.id}`,
        `raft_role:${info.role}`,
        `raft_term:${info.term}`,
        `raft_leader:${info.leader}`,
        `raft_commit_index:${info.commit}`,
        `raft_applied_index:${info.applied}`,
        `raft_last_index:${info.lastIndex}`,
        `raft_snapshot_index:${info.snapshotIndex}`,
        `raft_voters:${info.voters.join(',')}`,
        `raft_learners:${info.learners.join(',')}`,
      ];
    }
    default:
      return null;
  }
}

function followerProgress(server: ServerView) {
  const info = server.node.info();
  return { info, followers: info.followers.filter((f) => f.id !== info.id) };
}

function replicationLines(server: ServerView): string[] {
  const { info, followers } = followerProgress(server);
  if (server.node.isLeader) {
    return [
      'role:master',
      `leader_id:${info.leader}`,
      `connected_slaves:${followers.filter((f) => f.active).length}`,
      ...followers.map((f, i) => {
        const state = f.active ? 'online' : 'offline';
        return `slave${i}:id=${f.id},state=${state},offset=${f.match},lag=${f.lag},raft_state=${f.state}`;
      }),
      `master_repl_offset:${info.applied}`,
    ];
  }
  const leader = server.node.config.members.get(info.leader);
  return [
    'role:slave',
    `leader_id:${info.leader}`,
    `master_host:${leader?.host ?? ''}`,
    `master_port:${leader?.port ?? 0}`,
    `master_link_status:${info.leader === '' ? 'down' : 'up'}`,
    `slave_repl_offset:${info.applied}`,
    'slave_read_only:1',
    'connected_slaves:0',
    `master_repl_offset:${info.applied}`,
  ];
}

const titles: Readonly<Record<string, string>> = {
  server: 'Server',
  clients: 'Clients',
  memory: 'Memory',
  persistence: 'Persistence',
  stats: 'Stats',
  replication: 'Replication',
  cpu: 'CPU',
  keyspace: 'Keyspace',
  raft: 'Raft',
};

export function info(ctx: CommandContext, argv: readonly string[]): Outcome {
  let names = argv.slice(1).map((s) => s.toLowerCase());
  if (
    names.length === 0 ||
    names.includes('default') ||
    names.includes('all') ||
    names.includes('everything')
  ) {
    names = defaultSections;
  }
  const parts: string[] = [];
  for (const name of new Set(names)) {
    const lines = infoSection(ctx.server, name);
    if (lines === null) continue;
    parts.push([`# ${titles[name] ?? name}`, ...lines].join('\r\n'));
  }
  const text = parts.length === 0 ? '' : `${parts.join('\r\n\r\n')}\r\n`;
  return { kind: 'verbatim', format: 'txt', value: text };
}

// ---------------------------------------------------------------------------
// ROLE, TIME, WAIT

export function role(ctx: CommandContext): Outcome {
  const { info, followers } = followerProgress(ctx.server);
  const members = ctx.server.node.config.members;
  if (ctx.server.node.isLeader) {
    return array([
      bulk('master'),
      integer(info.applied),
      array(
        followers.map((f) => {
          const address = members.get(f.id);
          return array([
            bulk(address?.host ?? ''),
            bulk(String(address?.port ?? 0)),
            bulk(String(f.match)),
          ]);
        }),
      ),
    ]);
  }
  const leader = members.get(info.leader);
  return array([
    bulk('slave'),
    bulk(leader?.host ?? ''),
    integer(leader?.port ?? 0),
    bulk(info.leader === '' ? 'connect' : 'connected'),
    integer(info.applied),
  ]);
}

export function time(): Outcome {
  const nowUs = BigInt(Date.now()) * 1000n + BigInt(Math.floor((performance.now() % 1) * 1000));
  return array([bulk(String(nowUs / 1_000_000n)), bulk(String(nowUs % 1_000_000n))]);
}

const waitPollMs = 10;

/**
 * WAIT numreplicas timeout. Every acknowledged write is already on a
 * majority, so a follower answers the quorum's other members; the leader
 * polls how many followers hold its applied index.
 */
export async function wait(ctx: CommandContext, argv: readonly string[]): Promise<Outcome> {
  const wanted = parseInteger(argv[1] as string);
  const timeoutMs = parseInteger(argv[2] as string);
  if (wanted === undefined || timeoutMs === undefined) {
    return error('ERR value is not an integer or out of range');
  }
  if (timeoutMs < 0) return error('ERR timeout is negative');
  const node = ctx.server.node;
  if (!node.isLeader) return integer(Math.floor(node.info().voters.length / 2));
  const target = node.appliedIndex;
  const deadline = timeoutMs === 0 ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
  for (;;) {
    const { info, followers } = followerProgress(ctx.server);
    const count = followers.filter((f) => f.match >= target).length;
    if (count >= wanted || Date.now() >= deadline || ctx.isClosed() || info.role !== 'leader') {
      return integer(count);
    }
    await new Promise((resolve) => setTimeout(resolve, waitPollMs));
  }
}
