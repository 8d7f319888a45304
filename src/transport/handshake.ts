/**
 * The handshake that starts every connection. The dialer sends hello (magic,
 * protocol version, cluster id, its id, the id it means to reach); the
 * acceptor checks the version, the cluster id, that it is the intended
 * receiver, that the sender is a member and is the one that should dial,
 * and that it presents the data-directory incarnation the cluster knows it
 * by (a node that lost its disk must not come back under its old identity),
 * then answers welcome (with its own incarnation, which the dialer checks
 * the same way), or refusal with a reason and closes. Both sides log
 * one line per refusal (rate-limited), and a refused dialer backs off longer.
 * Until the handshake completes only tiny frames are accepted.
 *
 * This module owns the acceptor's checks of a hello (`checkHello`, pure)
 * and the timers that bound how long a connection may stay unauthenticated
 * (`HandshakeTimers`); links.ts drives the exchange.
 *
 * Invariants: a hello is accepted only if the protocol version and the
 * cluster id match, it is addressed to this node, its sender is a member and
 * sorts lower (the lower id dials); every connection in its handshake has
 * exactly one timer, and a timer that fires destroys its connection.
 */

import type { NodeId } from '../raft/types.js';
import type { Connection } from './connection.js';
import { type Hello, protocolVersion, type Refusal } from './protocol.js';

/** What the acceptor checks a hello against. */
export interface HelloPolicy {
  readonly self: NodeId;
  readonly clusterId: string;
  readonly isMember: (id: NodeId) => boolean;
  /** The incarnation `id` is known by; '' when unknown (any is accepted). */
  readonly expectedIncarnation: (id: NodeId) => string;
}

/** Why `id` presenting `presented` is not the member the cluster knows, or null. */
export function checkIncarnation(
  policy: Pick<HelloPolicy, 'expectedIncarnation'>,
  id: NodeId,
  presented: string,
): string | null {
  const expected = policy.expectedIncarnation(id);
  if (expected === '' || expected === presented) return null;
  return (
    `${id} presents data directory incarnation '${presented || '(none)'}' but the cluster knows ` +
    `${id} by '${expected}': its data directory was replaced (a lost disk?), and a node that lost ` +
    `its state must not rejoin under its old identity — remove ${id} from the cluster and add it ` +
    'again as a new member'
  );
}

/** The reason to refuse `h`, or null to accept it. */
export function checkHello(policy: HelloPolicy, h: Hello): Refusal | null {
  const { self, clusterId } = policy;
  if (h.version !== protocolVersion) {
    return {
      code: 'version',
      reason: `it speaks transport protocol ${h.version}, we speak ${protocolVersion} — upgrade one side`,
    };
  }
  if (h.clusterId !== clusterId) {
    return {
      code: 'clusterId',
      reason: `cluster id '${h.clusterId}' does not match ours '${clusterId}' — this node belongs to another cluster`,
    };
  }
  if (h.to !== self) {
    return {
      code: 'wrongReceiver',
      reason: `it meant to reach ${h.to} but this is ${self} — its address book has a wrong address for ${h.to}`,
    };
  }
  if (!policy.isMember(h.from)) {
    return {
      code: 'unknownMember',
      reason: `${h.from} is not a member known to ${self} — add it to the cluster first (or it was removed)`,
    };
  }
  const replaced = checkIncarnation(policy, h.from, h.incarnation);
  if (replaced !== null) return { code: 'incarnation', reason: replaced };
  if (!(h.from < self)) {
    return {
      code: 'direction',
      reason: `the node with the lower id dials, so ${self} dials ${h.from}, not the other way round — check both run the same version`,
    };
  }
  return null;
}

/** One timer per connection in its handshake (dialed or accepted). */
export class HandshakeTimers {
  private readonly timers = new Map<Connection, NodeJS.Timeout>();

  constructor(private readonly timeoutMs: number) {}

  /** Connections in their handshake. */
  get size(): number {
    return this.timers.size;
  }

  /** (Re)starts `conn`'s timer; when it fires, `conn` is destroyed. */
  start(conn: Connection): void {
    this.clear(conn);
    const timer = setTimeout(() => {
      this.timers.delete(conn);
      conn.destroy(new Error(`handshake not completed within ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    this.timers.set(conn, timer);
  }

  clear(conn: Connection): void {
    const timer = this.timers.get(conn);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(conn);
  }

  /** Clears every timer and destroys every connection still in its handshake. */
  destroyAll(): void {
    for (const [conn, timer] of [...this.timers]) {
      clearTimeout(timer);
      conn.destroy();
    }
    this.timers.clear();
  }
}
