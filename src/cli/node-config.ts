/**
 * The settings of `tandem node`, resolved from flags, `TANDEM_*` environment
 * variables and a JSON config file, in that order of precedence, then
 * defaults. Every value is validated here so the server starts only with a
 * configuration that makes sense, and a mistake is reported with the name of
 * the setting and the value given.
 */

import { formatHostPort, type HostPort, parseHostPort as parseAddress } from '../node/host-port.js';
import type { ReadMode } from '../raft/config.js';
import { type CpuPolicy, cpuPolicies } from './cpu-policy.js';

export { formatHostPort, type HostPort };

export interface NodeSettings {
  readonly id: string;
  readonly dataDir: string;
  readonly resp: HostPort;
  readonly peer: HostPort;
  readonly http: HostPort;
  /** The founding members (empty when joining an existing cluster). */
  readonly initialCluster: ReadonlyMap<string, HostPort>;
  /** Admin HTTP address of any node of the cluster to join, or null. */
  readonly join: HostPort | null;
  readonly clusterId: string;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly readMode: ReadMode;
  /** Free bytes under the data directory below which the NOSPACE alarm is raised. */
  readonly spaceLowBytes: number;
  /** A leader whose fsync p99 stays above this (ms) hands leadership over. */
  readonly degradedFsyncMs: number;
  /** ... for this long (ms): the detector's window and sustain time. */
  readonly degradedForMs: number;
  /** Fault injection (tests, drills): extra delay of every fsync (ms); 0 = none. */
  readonly faultFsyncDelayMs: number;
  /** Largest file upload accepted (bytes). */
  readonly fileBytesMax: number;
  /**
   * V8's old-generation growing factor, as a percentage over the live heap
   * (`--heap-growing-percent`); 0 keeps V8's own heuristics, which let a heap
   * of a million keys grow to about 2x its live size between major GCs.
   */
  readonly heapGrowthPercent: number;
  /**
   * A snapshot once this many MiB of writes were applied since the last one.
   * The log holds them in memory until then, so more trades memory for
   * less snapshot writing (each snapshot writes the whole state).
   */
  readonly snapshotMb: number;
  /**
   * But a snapshot waits for at least this percent of the last one's size
   * in writes: a large state is not rewritten every `snapshotMb` (Raft
   * thesis §5.1.3). More trades memory (the log) for less writing; 0 turns
   * it off.
   */
  readonly snapshotLogPercent: number;
  /** `batch`: every thread under SCHED_BATCH (cpu-policy.ts); `inherit`: as started. */
  readonly cpuPolicy: CpuPolicy;
  readonly logLevel: LogLevel;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** A setting that cannot be used; the message names it and quotes the value. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** The settings by their flag name (kebab-case), as strings from any source. */
export const settingNames = [
  'id',
  'data',
  'resp',
  'peer',
  'http',
  'initial-cluster',
  'join',
  'cluster-id',
  'tick-ms',
  'election-ticks',
  'heartbeat-ticks',
  'read-mode',
  'space-low-bytes',
  'degraded-fsync-ms',
  'degraded-for-ms',
  'fault-fsync-delay-ms',
  'file-bytes-max',
  'heap-growth-percent',
  'snapshot-mb',
  'snapshot-log-percent',
  'cpu-policy',
  'log-level',
] as const;
export type SettingName = (typeof settingNames)[number];
export type RawSettings = Partial<Record<SettingName, string>>;

const defaults: RawSettings = {
  'cluster-id': 'tandem',
  'tick-ms': '100',
  'election-ticks': '10',
  'heartbeat-ticks': '1',
  'read-mode': 'readIndex',
  'space-low-bytes': String(256 * 1024 * 1024),
  'degraded-fsync-ms': '500',
  'degraded-for-ms': '10000',
  'fault-fsync-delay-ms': '0',
  'file-bytes-max': String(5 * 1024 * 1024 * 1024),
  'heap-growth-percent': '15',
  'snapshot-mb': '32',
  'snapshot-log-percent': '50',
  'cpu-policy': 'batch',
  'log-level': 'info',
};

const logLevels: readonly LogLevel[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
];

/** `TANDEM_DATA` for `data`, `TANDEM_INITIAL_CLUSTER` for `initial-cluster`. */
export function envName(setting: SettingName | 'config'): string {
  return `TANDEM_${setting.toUpperCase().replaceAll('-', '_')}`;
}

/** Reads the settings present in an environment. */
export function fromEnv(env: NodeJS.ProcessEnv): RawSettings {
  const out: RawSettings = {};
  for (const name of settingNames) {
    const value = env[envName(name)];
    if (value !== undefined && value !== '') out[name] = value;
  }
  return out;
}

const camel = (name: string): string =>
  name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/**
 * Reads the settings in a parsed JSON config file. Keys may be the flag
 * names or their camelCase form (`initialCluster`); numbers may be numbers;
 * `initialCluster` may also be an object `{ "n1": "host:port", ... }`.
 */
export function fromFile(json: unknown, path: string): RawSettings {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(`config file ${path} must hold a JSON object`);
  }
  const byKey = new Map<string, SettingName>();
  for (const name of settingNames) {
    byKey.set(name, name);
    byKey.set(camel(name), name);
  }
  const out: RawSettings = {};
  for (const [key, value] of Object.entries(json)) {
    const name = byKey.get(key);
    if (name === undefined) {
      throw new ConfigError(
        `config file ${path}: unknown setting '${key}' (known: ${settingNames.map(camel).join(', ')})`,
      );
    }
    if (typeof value === 'string' || typeof value === 'number') out[name] = String(value);
    else if (name === 'initial-cluster' && typeof value === 'object' && value !== null) {
      out[name] = Object.entries(value)
        .map(([id, address]) => `${id}=${String(address)}`)
        .join(',');
    } else {
      throw new ConfigError(`config file ${path}: '${key}' must be a string or a number`);
    }
  }
  return out;
}

/** Flag beats environment beats file beats default. */
export function mergeSettings(
  flags: RawSettings,
  env: RawSettings,
  file: RawSettings,
): RawSettings {
  const out: RawSettings = {};
  for (const name of settingNames) {
    const value = flags[name] ?? env[name] ?? file[name] ?? defaults[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** Parses `HOST:PORT` (`[::1]:7379` for IPv6). */
export function parseHostPort(what: string, text: string): HostPort {
  const address = parseAddress(text);
  if (address === null) {
    throw new ConfigError(`${what} must be HOST:PORT with a port from 1 to 65535, got '${text}'`);
  }
  return address;
}

const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function parseId(what: string, text: string): string {
  if (!idPattern.test(text)) {
    throw new ConfigError(
      `${what} must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit), got '${text}'`,
    );
  }
  return text;
}

/** Parses `n1=HOST:PORT,n2=HOST:PORT,...`. */
export function parseInitialCluster(text: string): Map<string, HostPort> {
  const members = new Map<string, HostPort>();
  for (const part of text.split(',')) {
    const item = part.trim();
    const eq = item.indexOf('=');
    if (eq <= 0) {
      throw new ConfigError(
        `--initial-cluster must be ID=HOST:PORT,ID=HOST:PORT,..., got '${text}' (bad item '${item}')`,
      );
    }
    const id = parseId('--initial-cluster member id', item.slice(0, eq));
    if (members.has(id)) throw new ConfigError(`--initial-cluster names ${id} twice, in '${text}'`);
    members.set(id, parseHostPort(`--initial-cluster address of ${id}`, item.slice(eq + 1)));
  }
  return members;
}

function parseInteger(what: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${what} must be an integer from ${min} to ${max}, got '${text}'`);
  }
  return value;
}

function required(raw: RawSettings, name: SettingName): string {
  const value = raw[name];
  if (value === undefined) {
    throw new ConfigError(
      `--${name} is required (or set ${envName(name)}, or '${camel(name)}' in the --config file)`,
    );
  }
  return value;
}

/** Validates merged settings; throws ConfigError naming the first problem. */
export function validateSettings(raw: RawSettings): NodeSettings {
  const id = parseId('--id', required(raw, 'id'));
  const joinText = raw.join;
  if ((joinText === undefined) === (raw['initial-cluster'] === undefined)) {
    throw new ConfigError(
      'give either --initial-cluster (the founding members of a new cluster) or --join ' +
        'HOST:HTTPPORT (any node of an existing cluster), not both and not neither',
    );
  }
  const join = joinText === undefined ? null : parseHostPort('--join', joinText);
  const initialCluster =
    join === null ? parseInitialCluster(required(raw, 'initial-cluster')) : new Map();
  const advertised = initialCluster.get(id);
  if (join === null && advertised === undefined) {
    throw new ConfigError(
      `--initial-cluster must include this node (${id}), got '${raw['initial-cluster']}'`,
    );
  }
  const peerText = raw.peer ?? (join === null ? undefined : required(raw, 'peer'));
  const peer =
    peerText === undefined ? (advertised as HostPort) : parseHostPort('--peer', peerText);
  const resp = parseHostPort('--resp', required(raw, 'resp'));
  const http = parseHostPort('--http', required(raw, 'http'));
  const dataDir = required(raw, 'data');
  if (dataDir.trim() === '') throw new ConfigError(`--data must be a directory path, got ''`);
  const clusterId = parseId('--cluster-id', required(raw, 'cluster-id'));
  const tickMs = parseInteger('--tick-ms', required(raw, 'tick-ms'), 1, 10_000);
  const electionTicks = parseInteger(
    '--election-ticks',
    required(raw, 'election-ticks'),
    2,
    10_000,
  );
  const heartbeatTicks = parseInteger(
    '--heartbeat-ticks',
    required(raw, 'heartbeat-ticks'),
    1,
    10_000,
  );
  if (heartbeatTicks >= electionTicks) {
    throw new ConfigError(
      `--heartbeat-ticks (${heartbeatTicks}) must be less than --election-ticks (${electionTicks})`,
    );
  }
  const readMode = required(raw, 'read-mode');
  if (readMode !== 'readIndex' && readMode !== 'lease') {
    throw new ConfigError(`--read-mode must be readIndex or lease, got '${readMode}'`);
  }
  const spaceLowBytes = parseInteger(
    '--space-low-bytes',
    required(raw, 'space-low-bytes'),
    0,
    Number.MAX_SAFE_INTEGER,
  );
  const degradedFsyncMs = parseInteger(
    '--degraded-fsync-ms',
    required(raw, 'degraded-fsync-ms'),
    1,
    3_600_000,
  );
  const degradedForMs = parseInteger(
    '--degraded-for-ms',
    required(raw, 'degraded-for-ms'),
    1_000,
    3_600_000,
  );
  const faultFsyncDelayMs = parseInteger(
    '--fault-fsync-delay-ms',
    required(raw, 'fault-fsync-delay-ms'),
    0,
    60_000,
  );
  const fileBytesMax = parseInteger(
    '--file-bytes-max',
    required(raw, 'file-bytes-max'),
    0,
    64 * 1024 * 1024 * 1024,
  );
  const heapGrowthPercent = parseInteger(
    '--heap-growth-percent',
    required(raw, 'heap-growth-percent'),
    0,
    400,
  );
  const snapshotMb = parseInteger('--snapshot-mb', required(raw, 'snapshot-mb'), 1, 64 * 1024);
  const snapshotLogPercent = parseInteger(
    '--snapshot-log-percent',
    required(raw, 'snapshot-log-percent'),
    0,
    1000,
  );
  const cpuPolicy = required(raw, 'cpu-policy');
  if (!(cpuPolicies as readonly string[]).includes(cpuPolicy)) {
    throw new ConfigError(
      `--cpu-policy must be one of ${cpuPolicies.join(', ')}, got '${cpuPolicy}'`,
    );
  }
  const logLevel = required(raw, 'log-level');
  if (!(logLevels as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`--log-level must be one of ${logLevels.join(', ')}, got '${logLevel}'`);
  }
  const ports = new Map<string, string>();
  for (const [what, address] of [
    ['--resp', resp],
    ['--peer', peer],
    ['--http', http],
  ] as const) {
    const key = `${address.host}:${address.port}`;
    const clash = ports.get(key);
    if (clash !== undefined)
      throw new ConfigError(`${what} and ${clash} both use ${formatHostPort(address)}`);
    ports.set(key, what);
  }
  return {
    id,
    dataDir,
    resp,
    peer,
    http,
    initialCluster,
    join,
    clusterId,
    tickMs,
    electionTicks,
    heartbeatTicks,
    readMode,
    spaceLowBytes,
    degradedFsyncMs,
    degradedForMs,
    faultFsyncDelayMs,
    fileBytesMax,
    heapGrowthPercent,
    snapshotMb,
    snapshotLogPercent,
    cpuPolicy: cpuPolicy as CpuPolicy,
    logLevel: logLevel as LogLevel,
  };
}

/**
 * Resolves the settings of `tandem node` from its three sources. `readFile`
 * loads the config file named by `--config` or `TANDEM_CONFIG`, if any.
 */
export function resolveSettings(
  flags: RawSettings & { readonly config?: string },
  env: NodeJS.ProcessEnv,
  readFile: (path: string) => string,
): NodeSettings {
  const configPath = flags.config ?? env[envName('config')];
  let file: RawSettings = {};
  if (configPath !== undefined && configPath !== '') {
    let text: string;
    try {
      text = readFile(configPath);
    } catch (failure) {
      throw new ConfigError(`cannot read config file ${configPath}: ${(failure as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (failure) {
      throw new ConfigError(
        `config file ${configPath} is not valid JSON: ${(failure as Error).message}`,
      );
    }
    file = fromFile(json, configPath);
  }
  return validateSettings(mergeSettings(flags, fromEnv(env), file));
}
