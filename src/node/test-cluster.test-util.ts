/**
 * Shared by the tests that run Tandem nodes in-process on loopback (node/,
 * resp/, http/) and by the process tests: free ports, polling with a
 * deadline, and starting a cluster on real disks under a temporary folder.
 */

import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { FileSystem } from '../storage/fs.js';
import { NodeFileSystem } from '../storage/node-fs.js';
import {
  type HostPort,
  TandemNode,
  type TandemNodeConfig,
  tandemNodeDefaults,
} from './tandem-node.js';

/** A loopback port free at the time of the call (another process could take it before use). */
/** Ports this process handed out: the kernel may offer a just-closed port again. */
const handedOut = new Set<number>();
const freePortAttempts = 100;

/**
 * A loopback port that was free a moment ago and that this process has not
 * handed out before (so the ports of one cluster never collide).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < freePortAttempts; attempt++) {
    const port = await ephemeralPort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no new free loopback port after ${freePortAttempts} attempts`);
}

function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        resolve(typeof address === 'object' && address !== null ? address.port : 0),
      );
    });
  });
}

/** Peer addresses on free loopback ports for members n1..n`size`. */
export async function loopbackMembers(size: number): Promise<Map<string, HostPort>> {
  const members = new Map<string, HostPort>();
  for (let i = 1; i <= size; i++) {
    members.set(`n${i}`, { host: '127.0.0.1', port: await freePort() });
  }
  return members;
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** Extra context for the timeout error (e.g. the nodes' recent logs). */
  readonly context?: () => string;
}

/** Polls `probe` until it returns a value other than undefined; throws after the timeout. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  options: WaitOptions = {},
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 10 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const context = options.context?.() ?? '';
      throw new Error(`timed out waiting for ${what}${context === '' ? '' : `\n${context}`}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Starts member `id` of `members` in this process, its data under `root`,
 * with test timings (20 ms ticks); `fs` defaults to the real disk.
 */
export function startTestNode(
  root: string,
  id: string,
  members: ReadonlyMap<string, HostPort>,
  log: Logger,
  overrides: Partial<TandemNodeConfig> = {},
  fs: FileSystem = new NodeFileSystem(),
): Promise<TandemNode> {
  const address = members.get(id);
  if (address === undefined) throw new Error(`${id} is not in the members given`);
  return TandemNode.start(
    {
      ...tandemNodeDefaults,
      id,
      clusterId: 'test',
      dataDir: join(root, id),
      peerListen: address,
      members,
      tickMs: 20,
      ...overrides,
    },
    fs,
    log.child({ node: id }),
  );
}

/** Starts every member of `members` in this process, data under `root`, on real disks. */
export function startTestCluster(
  root: string,
  members: ReadonlyMap<string, HostPort>,
  log: Logger,
  overrides: Partial<TandemNodeConfig> = {},
): Promise<TandemNode[]> {
  return Promise.all(
    [...members.keys()].map((id) => startTestNode(root, id, members, log, overrides)),
  );
}
