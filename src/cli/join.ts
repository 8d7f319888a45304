/**
 * `tandem node --join HOST:HTTPPORT`: ask an existing cluster to add this
 * node (issue 5). In the background while the node serves: learn the
 * members' addresses from the given node, then ask the leader (following
 * the 421 answers of other nodes) to register this node and add it as a
 * learner; the leader promotes it once it has caught up. Repeating it is
 * harmless (an existing member gets its addresses refreshed). A refusal
 * (409: e.g. this id is a member under another data directory) is logged
 * and ends the attempts; unreachable nodes are retried, a bounded number of
 * times.
 */

import type { Logger } from 'pino';
import { formatHostPort, type HostPort } from '../node/host-port.js';
import type { MemberRecord } from '../node/member-registry.js';
import type { TandemNode } from '../node/tandem-node.js';

const attemptsMax = 300;
const retryMs = 1_000;
const requestTimeoutMs = 5_000;

interface MembersAnswer {
  readonly members?: MemberRecord[];
  readonly error?: string;
  readonly leaderHttp?: string;
  readonly message?: string;
}

/** Resolves true once the cluster took this node in, false if it refused or never answered. */
export async function joinCluster(
  node: TandemNode,
  via: HostPort,
  log: Logger,
  stopped: () => boolean,
): Promise<boolean> {
  let target = formatHostPort(via);
  for (let attempt = 1; attempt <= attemptsMax && !stopped(); attempt++) {
    try {
      const listed = await call('GET', target, null);
      if (listed.status === 200 && listed.body.members !== undefined) {
        node.learnPeers(listed.body.members);
      }
      const added = await call('POST', target, node.ownRecord());
      if (added.status === 200) {
        log.info({ via: target, answer: added.body.message }, 'joined the cluster');
        return true;
      }
      if (added.status === 421 && (added.body.leaderHttp ?? '') !== '') {
        target = added.body.leaderHttp as string;
        continue;
      }
      if (added.status === 409 || added.status === 400) {
        log.error({ via: target, error: added.body.error }, 'the cluster refused to add this node');
        return false;
      }
      log.warn({ via: target, status: added.status, error: added.body.error }, 'join deferred');
    } catch (failure) {
      log.warn({ via: target, err: failure }, `cannot reach ${target} to join; retrying`);
      target = formatHostPort(via);
    }
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
  if (!stopped())
    log.error({ via: formatHostPort(via) }, `gave up joining after ${attemptsMax} attempts`);
  return false;
}

async function call(
  method: 'GET' | 'POST',
  hostPort: string,
  body: MemberRecord | null,
): Promise<{ status: number; body: MembersAnswer }> {
  const response = await fetch(`http://${hostPort}/v1/admin/members`, {
    method,
    headers: body === null ? {} : { 'content-type': 'application/json' },
    body: body === null ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(requestTimeoutMs),
  });
  return { status: response.status, body: (await response.json()) as MembersAnswer };
}
