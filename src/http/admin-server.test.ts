import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NodeInfo, TandemNode } from '../node/tandem-node.js';
import { loopbackMembers, startTestCluster, waitFor } from '../node/test-cluster.test-util.js';
import { nodeId, term } from '../raft/types.js';
import { AdminServer, readiness } from './admin-server.js';

const log = pino({ level: 'silent' });
let root = '';
let node: TandemNode | null = null;
let admin: AdminServer | null = null;

async function startSingle(): Promise<{ node: TandemNode; admin: AdminServer }> {
  const [started] = await startTestCluster(root, await loopbackMembers(1), log);
  if (started === undefined) throw new Error('no node started');
  node = started;
  admin = new AdminServer({ node, host: '127.0.0.1', port: 0, logger: log });
  return { node, admin };
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-admin-'));
});

afterEach(async () => {
  await admin?.close();
  await node?.stop();
  admin = null;
  node = null;
  await rm(root, { recursive: true, force: true });
});

describe('AdminServer', () => {
  it('answers /health, /ready, /status and /metrics for a one-node cluster', async () => {
    const { admin } = await startSingle();
    const health = await admin.app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });

    const ready = await waitFor('/ready to answer 200', async () => {
      const r = await admin.app.inject({ method: 'GET', url: '/ready' });
      return r.statusCode === 200 ? r : undefined;
    });
    expect(ready.json()).toMatchObject({ status: 'ready', leader: 'n1' });

    const status = (await admin.app.inject({ method: 'GET', url: '/status' })).json();
    expect(status).toMatchObject({ id: 'n1', role: 'leader', leader: 'n1', voters: ['n1'] });
    expect(status.term).toBeGreaterThan(0);
    expect(status.commit).toBeGreaterThanOrEqual(1);
    expect(status.driver).toHaveProperty('proposals');
    expect(status.peers).toEqual({});

    const metrics = await admin.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.body).toMatch(/^tandem_term \d+$/m);
    expect(metrics.body).toContain('tandem_role{role="leader"} 1');
    expect(metrics.body).toContain('tandem_applied_total');
    // The bootstrap entries went through the WAL: at least one group-committed sync.
    expect(Number(/^tandem_wal_syncs_total (\d+)$/m.exec(metrics.body)?.[1])).toBeGreaterThan(0);
    expect(Number(/^tandem_wal_bytes_total (\d+)$/m.exec(metrics.body)?.[1])).toBeGreaterThan(0);
    expect(metrics.body).toMatch(/^tandem_wal_prepared_rotations_total \d+$/m);
    expect(metrics.body).toMatch(/^tandem_wal_plain_rotations_total \d+$/m);
    expect(metrics.body).toMatch(/^tandem_persists_total \d+$/m);
    expect(metrics.body).toMatch(/^tandem_read_rounds_total \d+$/m);
    for (const state of ['reserved', 'live', 'free']) {
      expect(metrics.body).toMatch(
        new RegExp(`^tandem_kv_arena_bytes\\{state="${state}"\\} \\d+$`, 'm'),
      );
    }
    expect(metrics.body).toMatch(/^tandem_kv_arena_compactions_total 0$/m);
    // Sixteen dbs' key tables, empty or not, hold an index and some records.
    expect(Number(/^tandem_kv_key_table_bytes (\d+)$/m.exec(metrics.body)?.[1])).toBeGreaterThan(0);
    expect(metrics.body).toContain('process_cpu_user_seconds_total');
  });

  it('refuses a transfer with no other voter and reports draining as not ready', async () => {
    const { admin, node } = await startSingle();
    await waitFor('leadership', () => (node.isLeader ? true : undefined));
    const transfer = await admin.app.inject({
      method: 'POST',
      url: '/v1/admin/transfer-leadership',
    });
    expect(transfer.statusCode).toBe(409);
    const toSelf = await admin.app.inject({
      method: 'POST',
      url: '/v1/admin/transfer-leadership?to=n1',
    });
    expect(toSelf.statusCode).toBe(400);
    admin.setDraining();
    const ready = await admin.app.inject({ method: 'GET', url: '/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().reason).toContain('shutting down');
  });

  it('reports the keyspace digest with its applied index, changed by a write', async () => {
    const { admin, node } = await startSingle();
    await waitFor('leadership', () => (node.isLeader ? true : undefined));
    const before = (await admin.app.inject({ method: 'GET', url: '/v1/admin/digest' })).json();
    expect(before.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(await node.write(0, ['SET', 'a', '1'])).toEqual({ kind: 'simple', value: 'OK' });
    const after = (await admin.app.inject({ method: 'GET', url: '/v1/admin/digest' })).json();
    expect(after.applied).toBeGreaterThan(before.applied);
    expect(after.digest).not.toBe(before.digest);
    expect(after).toEqual(node.digest());
  });

  it('listens on the given host only', async () => {
    const { admin } = await startSingle();
    const address = await admin.start();
    expect(address.host).toBe('127.0.0.1');
    const response = await fetch(`http://127.0.0.1:${address.port}/health`);
    expect(response.status).toBe(200);
  });
});

describe('readiness', () => {
  const info = (leader: string, commit: number, applied: number): NodeInfo => ({
    id: nodeId('n1'),
    role: 'follower',
    leader: nodeId(leader),
    term: term(2),
    commit,
    applied,
    lastIndex: commit,
    snapshotIndex: 0,
    voters: [],
    learners: [],
    followers: [],
  });

  it('needs a leader and an applied index close to the commit index', () => {
    expect(readiness(info('', 5, 5), false, 10)).toMatchObject({ ready: false });
    expect(readiness(info('n2', 50, 5), false, 10)).toMatchObject({ ready: false });
    expect(readiness(info('n2', 15, 5), false, 10)).toEqual({ ready: true });
    expect(readiness(info('n2', 5, 5), true, 10)).toMatchObject({ ready: false });
  });
});
