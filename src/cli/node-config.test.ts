import { describe, expect, it } from 'vitest';
import { ConfigError, parseHostPort, resolveSettings } from './node-config.js';

const base = {
  id: 'n1',
  data: '/tmp/flag',
  resp: '127.0.0.1:7379',
  http: '127.0.0.1:8379',
  'initial-cluster': 'n1=127.0.0.1:9379,n2=127.0.0.1:9380',
};

const noFile = (path: string): string => {
  throw new Error(`unexpected read of ${path}`);
};

describe('resolveSettings', () => {
  it('takes a flag over env over file over default', () => {
    const file = JSON.stringify({
      data: '/tmp/file',
      tickMs: 30,
      electionTicks: 7,
      readMode: 'lease',
    });
    const env = { TANDEM_DATA: '/tmp/env', TANDEM_TICK_MS: '40', TANDEM_CONFIG: 'cfg.json' };
    const settings = resolveSettings({ ...base }, env, () => file);
    expect(settings.dataDir).toBe('/tmp/flag');
    expect(settings.tickMs).toBe(40);
    expect(settings.electionTicks).toBe(7);
    expect(settings.readMode).toBe('lease');
    expect(settings.heartbeatTicks).toBe(1);
    expect(settings.clusterId).toBe('tandem');
    expect(settings.degradedFsyncMs).toBe(500);
    expect(settings.degradedForMs).toBe(10_000);
    expect(settings.heapGrowthPercent).toBe(15);
    expect(settings.snapshotMb).toBe(32);
    expect(settings.snapshotLogPercent).toBe(50);
    expect(settings.faultFsyncDelayMs).toBe(0);
    expect(settings.cpuPolicy).toBe('batch');
    expect(resolveSettings({ ...base, 'cpu-policy': 'inherit' }, {}, noFile).cpuPolicy).toBe(
      'inherit',
    );

    const { data: _flagData, ...withoutData } = base;
    expect(resolveSettings(withoutData, env, () => file).dataDir).toBe('/tmp/env');
    const fromFile = resolveSettings(withoutData, { TANDEM_CONFIG: 'cfg.json' }, () => file);
    expect(fromFile.dataDir).toBe('/tmp/file');
  });

  it('reads every setting from the environment and the file', () => {
    const env = {
      TANDEM_ID: 'n2',
      TANDEM_DATA: '/d',
      TANDEM_RESP: '127.0.0.1:1',
      TANDEM_HTTP: '127.0.0.1:2',
      TANDEM_INITIAL_CLUSTER: 'n2=10.0.0.2:9000',
      TANDEM_LOG_LEVEL: 'debug',
    };
    const settings = resolveSettings({}, env, noFile);
    expect(settings.id).toBe('n2');
    expect(settings.peer).toEqual({ host: '10.0.0.2', port: 9000 });
    expect(settings.logLevel).toBe('debug');

    const file = JSON.stringify({
      ...base,
      initialCluster: { n1: '127.0.0.1:9379' },
      'cluster-id': 'c9',
    });
    const viaFile = resolveSettings({ config: 'x.json' }, {}, () => file);
    expect(viaFile.clusterId).toBe('c9');
    expect([...viaFile.initialCluster.keys()]).toEqual(['n1']);
  });

  it('explains what is wrong', () => {
    const bad = (flags: Record<string, string>, message: string | RegExp): void => {
      expect(() => resolveSettings({ ...base, ...flags }, {}, noFile)).toThrow(ConfigError);
      expect(() => resolveSettings({ ...base, ...flags }, {}, noFile)).toThrow(message);
    };
    bad({ resp: 'abc' }, "--resp must be HOST:PORT with a port from 1 to 65535, got 'abc'");
    bad({ http: '127.0.0.1:99999' }, '--http must be HOST:PORT');
    bad({ 'tick-ms': 'fast' }, "--tick-ms must be an integer from 1 to 10000, got 'fast'");
    bad({ 'read-mode': 'eventual' }, "--read-mode must be readIndex or lease, got 'eventual'");
    bad({ 'initial-cluster': 'n2=127.0.0.1:1' }, '--initial-cluster must include this node (n1)');
    bad({ 'initial-cluster': 'n1' }, "bad item 'n1'");
    bad({ http: '127.0.0.1:7379' }, '--http and --resp both use 127.0.0.1:7379');
    bad({ 'log-level': 'loud' }, '--log-level must be one of');
    bad(
      { 'heap-growth-percent': '-5' },
      "--heap-growth-percent must be an integer from 0 to 400, got '-5'",
    );
    bad(
      { 'degraded-for-ms': '10' },
      "--degraded-for-ms must be an integer from 1000 to 3600000, got '10'",
    );
    bad({ 'snapshot-mb': '0' }, "--snapshot-mb must be an integer from 1 to 65536, got '0'");
    bad(
      { 'snapshot-log-percent': '0.5' },
      "--snapshot-log-percent must be an integer from 0 to 1000, got '0.5'",
    );
    bad({ 'cpu-policy': 'fifo' }, "--cpu-policy must be one of batch, inherit, got 'fifo'");
    bad({ 'fault-fsync-delay-ms': '-1' }, '--fault-fsync-delay-ms must be an integer from 0');
    expect(() => resolveSettings({}, {}, noFile)).toThrow('--id is required (or set TANDEM_ID');
    expect(() => resolveSettings({ config: 'c.json' }, {}, () => '{"nope":1}')).toThrow(
      "unknown setting 'nope'",
    );
    expect(() => resolveSettings({ config: 'c.json' }, {}, () => '{')).toThrow('not valid JSON');
  });

  it('parses IPv6 addresses in brackets', () => {
    expect(parseHostPort('--resp', '[::1]:7379')).toEqual({ host: '::1', port: 7379 });
  });
});
