import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Message, SnapshotMessage } from '../raft/messages.js';
import type { LogIndex, NodeId } from '../raft/types.js';
import { nodeId } from '../raft/types.js';
import { NodeFileSystem } from '../storage/node-fs.js';
import { RaftStorage } from '../storage/raft-storage.js';
import {
  type PeerNetwork,
  RaftDriver,
  type RaftDriverOptions,
  RaftRefusedError,
  roleChangeReason,
  type StateMachine,
} from './raft-driver.js';
import { waitFor } from './test-cluster.test-util.js';

/** A replicated list of strings; apply returns the list's length. */
class ListMachine implements StateMachine<number> {
  items: string[] = [];
  apply(_index: LogIndex, data: Uint8Array): number {
    this.items.push(Buffer.from(data).toString('utf8'));
    return this.items.length;
  }
  snapshot(): AsyncIterable<Uint8Array> {
    // Captured now, as the contract requires, not when iteration starts.
    return toIterable([Buffer.from(JSON.stringify(this.items))]);
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of chunks) parts.push(Buffer.from(c));
    this.items = JSON.parse(Buffer.concat(parts).toString('utf8')) as string[];
  }
}

/** Delivers messages between in-process drivers on the next turn; links can be cut. */
class LocalNetwork {
  readonly drivers = new Map<NodeId, RaftDriver<number>>();
  readonly down = new Set<NodeId>();
  endpoint(from: NodeId): PeerNetwork {
    return {
      send: (messages: readonly Message[]) => {
        for (const m of messages) {
          setImmediate(() => {
            if (this.down.has(from) || this.down.has(m.to)) return;
            this.drivers.get(m.to)?.step(m);
          });
        }
      },
      sendSnapshot: async (message: SnapshotMessage, chunks: AsyncIterable<Uint8Array>) => {
        const target = this.drivers.get(message.to);
        if (target === undefined || this.down.has(from) || this.down.has(message.to)) {
          throw new Error(`${message.to} unreachable`);
        }
        const parts: Uint8Array[] = [];
        for await (const c of chunks) parts.push(Buffer.from(c));
        await target.receiveSnapshot(message, toIterable(parts));
      },
    };
  }
}

async function* toIterable(parts: readonly Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield p;
}

const ids = [nodeId('n1'), nodeId('n2'), nodeId('n3')];
const fs = new NodeFileSystem();
const log = pino({ level: 'silent' });
let root = '';
let network: LocalNetwork;
const machines = new Map<NodeId, ListMachine>();

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-driver-'));
  network = new LocalNetwork();
  machines.clear();
});

afterEach(async () => {
  for (const d of network.drivers.values()) await d.stop(0);
  await rm(root, { recursive: true, force: true });
});

function options(id: NodeId, overrides: Partial<RaftDriverOptions> = {}): RaftDriverOptions {
  return {
    id,
    initialMembers: ids,
    tickMs: 10,
    raft: { electionTimeoutTicks: 10, heartbeatTicks: 2 },
    snapshotEntries: 1000,
    slowPersistMs: 1000,
    pendingProposalsMax: 1000,
    seed: ids.indexOf(id) + 1,
    ...overrides,
  };
}

async function startNode(id: NodeId, overrides: Partial<RaftDriverOptions> = {}) {
  const opened = await RaftStorage.open(fs, join(root, id));
  const machine = new ListMachine();
  machines.set(id, machine);
  const driver = await RaftDriver.start(
    options(id, overrides),
    opened,
    machine,
    network.endpoint(id),
    { onFatal: (error) => expect.fail(`fatal: ${String(error)}`) },
    log,
  );
  network.drivers.set(id, driver);
  return driver;
}

function leader(): RaftDriver<number> | undefined {
  return [...network.drivers.values()].find((d) => d.isLeader);
}

describe('RaftDriver', () => {
  it('elects a leader, replicates proposals to every node and answers the proposer', async () => {
    for (const id of ids) await startNode(id);
    const lead = await waitFor('a leader', leader);
    const results = await Promise.all(['a', 'b', 'c'].map((v) => lead.propose(Buffer.from(v))));
    expect(results).toEqual([1, 2, 3]);
    for (const id of ids) {
      await waitFor(`${id} to apply`, () =>
        machines.get(id)?.items.length === 3 ? true : undefined,
      );
      expect(machines.get(id)?.items).toEqual(['a', 'b', 'c']);
    }
  });

  it('refuses proposals on a follower, naming the leader', async () => {
    for (const id of ids) await startNode(id);
    const lead = await waitFor('a leader', leader);
    const follower = [...network.drivers.values()].find((d) => d !== lead);
    await waitFor('the follower to know the leader', () =>
      follower?.leaderId === lead.id ? true : undefined,
    );
    const error = await follower?.propose(Buffer.from('x')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftRefusedError);
    expect((error as Error).message).toContain(`retry on ${lead.id}`);
  });

  it('gives a follower a linearizable read point after a write committed on the leader', async () => {
    for (const id of ids) await startNode(id);
    const lead = await waitFor('a leader', leader);
    const follower = [...network.drivers.values()].find((d) => d !== lead);
    if (follower === undefined) throw new Error('no follower');
    await waitFor('the follower to know the leader', () =>
      follower.leaderId === lead.id ? true : undefined,
    );
    await lead.propose(Buffer.from('w'));
    await follower.readBarrier();
    expect(machines.get(follower.id)?.items).toEqual(['w']);
  });

  it('keeps committed data across a restart of every node', async () => {
    for (const id of ids) await startNode(id);
    const lead = await waitFor('a leader', leader);
    await lead.propose(Buffer.from('kept'));
    for (const d of [...network.drivers.values()]) await d.stop(0);
    network.drivers.clear();
    for (const id of ids) await startNode(id);
    const again = await waitFor('a new leader', leader);
    await again.readBarrier();
    expect(machines.get(again.id)?.items).toEqual(['kept']);
  });

  it('bounds the bytes of proposals waiting to commit, and admits more once they did', async () => {
    for (const id of ids) await startNode(id, { pendingBytesMax: 250 });
    const lead = await waitFor('a leader', leader);
    const first = lead.propose(Buffer.alloc(100, 'a'));
    const second = lead.propose(Buffer.alloc(100, 'b'));
    // Nothing can commit within this turn of the event loop: 200 bytes are pending.
    const third = await lead.propose(Buffer.alloc(100, 'c')).catch((e: unknown) => e);
    expect(third).toBeInstanceOf(RaftRefusedError);
    expect((third as Error).message).toMatch(
      /200 bytes of writes are waiting to commit \(limit 250\)/,
    );
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    // Committed: the bytes are released. A single proposal over the bound is still admitted.
    expect(await lead.propose(Buffer.alloc(400, 'd'))).toBe(3);
  });

  it('snapshots, compacts and brings a lagging node up to date by snapshot', async () => {
    for (const id of ids) await startNode(id, { snapshotEntries: 20 });
    const lead = await waitFor('a leader', leader);
    const lagging = ids.find((id) => id !== lead.id) ?? ids[0];
    if (lagging === undefined) throw new Error('no follower');
    network.down.add(lagging);
    for (let i = 0; i < 60; i++) await lead.propose(Buffer.from(`v${i}`));
    await waitFor('the leader to snapshot', () => (lead.stats.snapshots > 0 ? true : undefined));
    network.down.delete(lagging);
    await waitFor('the lagging node to catch up', () =>
      machines.get(lagging)?.items.length === 60 ? true : undefined,
    );
    expect(machines.get(lagging)?.items).toEqual(machines.get(lead.id)?.items);
  });
});

describe('roleChangeReason', () => {
  const base = { previousLeader: nodeId('n1'), silentMs: 1234, transferFrom: null };
  it('says why an election started', () => {
    expect(roleChangeReason({ ...base, from: 'follower', to: 'preCandidate' })).toBe(
      'election timeout: nothing from leader n1 for 1234 ms',
    );
    expect(
      roleChangeReason({
        ...base,
        previousLeader: nodeId(''),
        from: 'follower',
        to: 'preCandidate',
      }),
    ).toBe('election timeout with no leader known');
    expect(
      roleChangeReason({ ...base, transferFrom: nodeId('n1'), from: 'follower', to: 'candidate' }),
    ).toBe('leadership transfer requested by n1');
    expect(roleChangeReason({ ...base, from: 'preCandidate', to: 'candidate' })).toBe(
      'pre-vote granted by a majority',
    );
  });
  it('says why a node leads or follows', () => {
    expect(roleChangeReason({ ...base, from: 'candidate', to: 'leader' })).toBe('won the election');
    expect(roleChangeReason({ ...base, from: 'leader', to: 'follower' })).toMatch(/stepped down/);
    expect(roleChangeReason({ ...base, from: 'candidate', to: 'follower' })).toMatch(
      /lost the election/,
    );
  });
});
