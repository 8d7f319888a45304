/**
 * `tandem node`: runs one server process — the Raft node, the RESP server
 * for clients and the admin HTTP server — until SIGTERM/SIGINT, then stops
 * gracefully (leadership handed over) and exits 0. A storage failure is
 * fatal: the process logs it and exits 1, to recover from the log on restart.
 */

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type Logger, pino } from 'pino';
import { AdminServer } from '../http/admin-server.js';
import { plantedBugs } from '../kv/index.js';
import { forceNewCluster } from '../node/force-new-cluster.js';
import { diskFullCause } from '../node/space-guard.js';
import { TandemNode, tandemNodeDefaults } from '../node/tandem-node.js';
import { nodeId } from '../raft/types.js';
import { RespServer } from '../resp/server.js';
import type { FileSystem } from '../storage/fs.js';
import { NodeFileSystem } from '../storage/node-fs.js';
import { SlowSyncFileSystem } from '../storage/slow-sync-fs.js';
import { applyCpuPolicy, type CpuPolicy } from './cpu-policy.js';
import { governHeapGrowth } from './heap-growth.js';
import { joinCluster } from './join.js';
import {
  ConfigError,
  formatHostPort,
  type NodeSettings,
  type RawSettings,
  resolveSettings,
  type SettingName,
} from './node-config.js';

/** Longest a graceful stop may take before the process exits anyway. */
const stopTimeoutMs = 15_000;

export function registerNodeCommand(program: Command): void {
  program
    .command('node')
    .description('run one Tandem server (Raft node + RESP + admin HTTP)')
    .option('--id <id>', 'this node id, e.g. n1 (env TANDEM_ID)')
    .option('--data <dir>', 'data directory (env TANDEM_DATA)')
    .option('--resp <host:port>', 'RESP (Redis protocol) listen address (env TANDEM_RESP)')
    .option('--peer <host:port>', 'peer listen address; default: own --initial-cluster entry')
    .option('--http <host:port>', 'admin HTTP listen address (env TANDEM_HTTP)')
    .option('--initial-cluster <list>', 'n1=HOST:PEERPORT,n2=HOST:PEERPORT,... (founding members)')
    .option('--join <host:port>', "join an existing cluster through any node's admin HTTP address")
    .option(
      '--cluster-id <id>',
      'cluster name; peers of another cluster are refused (default tandem)',
    )
    .option('--tick-ms <ms>', 'Raft tick length (default 100)')
    .option('--election-ticks <n>', 'election timeout in ticks (default 10)')
    .option('--heartbeat-ticks <n>', 'heartbeat interval in ticks (default 1)')
    .option('--read-mode <mode>', 'readIndex or lease (default readIndex)')
    .option(
      '--space-low-bytes <n>',
      'raise the NOSPACE alarm below this many free bytes under --data (default 268435456)',
    )
    .option(
      '--degraded-fsync-ms <ms>',
      'a leader whose fsync p99 stays above this hands leadership to a healthy follower (default 500)',
    )
    .option('--degraded-for-ms <ms>', '... when it stayed above it this long (default 10000)')
    .option(
      '--fault-fsync-delay-ms <ms>',
      'fault injection for tests and drills: delay every fsync by this much (default 0)',
    )
    .option(
      '--force-new-cluster',
      "after losing a majority for good: start a one-node cluster from this node's data (others rejoin with --join)",
    )
    .option('--file-bytes-max <n>', 'largest file upload accepted, in bytes (default 5 GiB)')
    .option(
      '--heap-growth-percent <n>',
      'let the JS heap grow this % over its size between major GCs, and at least 32 MiB; 0 = V8 default (default 15)',
    )
    .option(
      '--snapshot-mb <n>',
      'snapshot after this many MiB of applied writes; the log holds them in memory until then: more = less snapshot writing, more memory (default 32)',
    )
    .option(
      '--snapshot-log-percent <n>',
      "but wait for writes of at least this % of the last snapshot's size, so a large state is not rewritten every --snapshot-mb or 100,000 entries; more = less snapshot writing, more memory; 0 = off (default 50)",
    )
    .option(
      '--cpu-policy <policy>',
      'batch: every thread under SCHED_BATCH, so a waking thread never preempts the event loop; inherit: as started (default batch)',
    )
    .option('--config <file>', 'JSON config file (env TANDEM_CONFIG); flags > env > file')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
    .action(async (options: Record<string, string | undefined>) => {
      process.exitCode = await runNode(options);
    });
}

/** Maps commander's camelCase option values back to setting names. */
function flagsOf(options: Record<string, string | undefined>): RawSettings & { config?: string } {
  const pairs: [SettingName | 'config', string][] = [
    ['id', 'id'],
    ['data', 'data'],
    ['resp', 'resp'],
    ['peer', 'peer'],
    ['http', 'http'],
    ['initial-cluster', 'initialCluster'],
    ['join', 'join'],
    ['cluster-id', 'clusterId'],
    ['tick-ms', 'tickMs'],
    ['election-ticks', 'electionTicks'],
    ['heartbeat-ticks', 'heartbeatTicks'],
    ['read-mode', 'readMode'],
    ['space-low-bytes', 'spaceLowBytes'],
    ['degraded-fsync-ms', 'degradedFsyncMs'],
    ['degraded-for-ms', 'degradedForMs'],
    ['fault-fsync-delay-ms', 'faultFsyncDelayMs'],
    ['file-bytes-max', 'fileBytesMax'],
    ['heap-growth-percent', 'heapGrowthPercent'],
    ['snapshot-mb', 'snapshotMb'],
    ['snapshot-log-percent', 'snapshotLogPercent'],
    ['cpu-policy', 'cpuPolicy'],
    ['log-level', 'logLevel'],
    ['config', 'config'],
  ];
  const out: RawSettings & { config?: string } = {};
  for (const [name, key] of pairs) {
    const value = options[key];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

async function runNode(options: Record<string, string | undefined>): Promise<number> {
  let settings: NodeSettings;
  try {
    settings = resolveSettings(flagsOf(options), process.env, (path) => readFileSync(path, 'utf8'));
  } catch (failure) {
    if (!(failure instanceof ConfigError)) throw failure;
    process.stderr.write(`tandem node: ${failure.message}\n`);
    return 2;
  }
  // Synchronous writes: the fatal line must reach the output before exit(1).
  const log = pino(
    { level: settings.logLevel, base: { node: settings.id, pid: process.pid } },
    pino.destination({ dest: 1, sync: true }),
  );
  const planted = process.env.TANDEM_PLANTED_BUG;
  if (planted === 'skip-watch' || planted === 'stale-reads') {
    if (planted === 'skip-watch') plantedBugs.skipWatch = true;
    else plantedBugs.staleReads = true;
    log.warn(`PLANTED BUG ${planted}: for the chaos suite's self-test only, never in production`);
  }
  try {
    if (options.forceNewCluster !== undefined) {
      await forceNewCluster(new NodeFileSystem(), settings.dataDir, nodeId(settings.id), log);
      const own = new Map([[settings.id, settings.peer]]);
      settings = { ...settings, initialCluster: own, join: null };
    }
    return await serve(settings, log);
  } catch (failure) {
    log.fatal({ err: failure }, 'could not start');
    return 1;
  }
}

async function serve(settings: NodeSettings, log: Logger): Promise<number> {
  setCpuPolicy(settings.cpuPolicy, log);
  const stopGoverningHeap = governHeapGrowth(settings.heapGrowthPercent, (percent) =>
    log.debug({ percent }, 'heap growth limit set'),
  );
  log.info(
    {
      dataDir: settings.dataDir,
      resp: formatHostPort(settings.resp),
      peer: formatHostPort(settings.peer),
      http: formatHostPort(settings.http),
      members: Object.fromEntries(
        [...settings.initialCluster].map(([id, a]) => [id, formatHostPort(a)]),
      ),
    },
    'starting',
  );
  const node = await TandemNode.start(
    {
      ...tandemNodeDefaults,
      id: settings.id,
      clusterId: settings.clusterId,
      dataDir: settings.dataDir,
      peerListen: settings.peer,
      members: settings.initialCluster,
      tickMs: settings.tickMs,
      electionTimeoutTicks: settings.electionTicks,
      heartbeatTicks: settings.heartbeatTicks,
      readMode: settings.readMode,
      spaceLowBytes: settings.spaceLowBytes,
      snapshotBytes: settings.snapshotMb * 1024 * 1024,
      snapshotLogRatio: settings.snapshotLogPercent / 100,
      degradation: {
        fsyncP99Ms: settings.degradedFsyncMs,
        windowMs: settings.degradedForMs,
        sustainMs: settings.degradedForMs,
      },
      respAddress: formatHostPort(settings.resp),
      httpAddress: formatHostPort(settings.http),
    },
    storageFileSystem(settings, log),
    log,
  );
  const admin = new AdminServer({
    node,
    host: settings.http.host,
    port: settings.http.port,
    logger: log.child({ component: 'http' }),
    files: { node, uploadBytesMax: settings.fileBytesMax },
  });
  const resp = new RespServer({
    node,
    host: settings.resp.host,
    port: settings.resp.port,
    logger: log.child({ component: 'resp' }),
  });
  try {
    await admin.start();
    await resp.start();
  } catch (failure) {
    await Promise.allSettled([admin.close(), resp.close(), node.stop()]);
    throw failure;
  }
  log.info({ resp: formatHostPort(settings.resp), http: formatHostPort(settings.http) }, 'serving');
  const ended = waitForEnd(node, admin, resp, log);
  void ended.finally(stopGoverningHeap);
  if (settings.join !== null) {
    let stopped = false;
    void ended.finally(() => {
      stopped = true;
    });
    void joinCluster(node, settings.join, log, () => stopped);
  }
  return ended;
}

/** Before the node starts its work; see cpu-policy.ts. A failure costs speed, not service. */
function setCpuPolicy(policy: CpuPolicy, log: Logger): void {
  const outcome = applyCpuPolicy(policy);
  if (outcome.kind === 'applied') log.info('CPU scheduling: SCHED_BATCH for every thread');
  if (outcome.kind === 'failed') {
    log.warn(
      { reason: outcome.reason },
      'could not set SCHED_BATCH; running with the policy the process was started with ' +
        '(--cpu-policy inherit asks for that and skips this)',
    );
  }
}

/** The disk, slowed down when fault injection asks for it. */
function storageFileSystem(settings: NodeSettings, log: Logger): FileSystem {
  const disk = new NodeFileSystem();
  if (settings.faultFsyncDelayMs === 0) return disk;
  log.warn(
    { delayMs: settings.faultFsyncDelayMs },
    'FAULT INJECTION: every fsync of this node is delayed (--fault-fsync-delay-ms); for tests only',
  );
  return new SlowSyncFileSystem(disk, settings.faultFsyncDelayMs);
}

/** Resolves with the exit code: 0 after a graceful stop, 1 on a fatal storage failure. */
function waitForEnd(
  node: TandemNode,
  admin: AdminServer,
  resp: RespServer,
  log: Logger,
): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const finish = (code: number): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(code);
      // Sockets and timers of a wedged component must not keep the process alive.
      setTimeout(() => process.exit(code), 100).unref();
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal during shutdown: exiting now');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'shutting down');
      const timer = setTimeout(() => {
        log.error({ timeoutMs: stopTimeoutMs }, 'graceful stop timed out; exiting anyway');
        finish(1);
      }, stopTimeoutMs);
      gracefulStop(node, admin, resp, log)
        .then(() => {
          clearTimeout(timer);
          log.info('shut down cleanly');
          finish(0);
        })
        .catch((failure: unknown) => {
          clearTimeout(timer);
          log.error({ err: failure }, 'error during shutdown');
          finish(1);
        });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    node.fatal.then((failure) => {
      const full = diskFullCause(failure);
      if (full === null) {
        log.fatal({ err: failure }, 'storage failure: stopping; restart to recover from the log');
      } else {
        log.fatal(
          { err: failure, path: full.path },
          'disk full: this node cannot write its log and stops; free space under its data ' +
            'directory, then restart it (the cluster refuses writes with NOSPACE meanwhile; ' +
            'the alarm clears once this node is back with room)',
        );
      }
      process.exit(1);
    });
  });
}

async function gracefulStop(
  node: TandemNode,
  admin: AdminServer,
  resp: RespServer,
  log: Logger,
): Promise<void> {
  admin.setDraining();
  // Stop taking client connections first, then hand leadership over and flush.
  await resp.close();
  log.info('client connections closed; stopping the node');
  await node.stop();
  await admin.close();
}
