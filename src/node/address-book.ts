/**
 * The transport's address book: where each other member may be reached.
 *
 * A node knows a peer's address from two sources, and neither is always the
 * fresher. The member registry (replicated through the log) has the address
 * the peer registered: a node that moved while the others ran is known
 * only there. The addresses this node was started with (`--initial-cluster`)
 * come from the operator: a whole cluster restarted on new addresses is
 * known only there, while every registry still names the last run's. So a
 * peer gets both, the registered one first, and the transport dials them in
 * turn until one answers (the handshake checks it reached the right node).
 */

import { type NodeId, nodeId } from '../raft/types.js';
import { sameAddress } from '../transport/peer.js';
import { type HostPort, parseHostPort } from './host-port.js';
import type { MemberRecord } from './member-registry.js';

export interface AddressBookSources {
  readonly self: string;
  /** The addresses this node was started with, its own included. */
  readonly configured: ReadonlyMap<string, HostPort>;
  /** Registered records, least authoritative first: a later record for a member wins. */
  readonly records: readonly MemberRecord[];
  /** A record whose peer address does not parse; it is skipped. */
  readonly onUnusable: (record: MemberRecord) => void;
}

/** Each other member's addresses, the registered one first, then the configured one. */
export function peerAddressBook(sources: AddressBookSources): Map<NodeId, HostPort[]> {
  const registered = new Map<string, HostPort>();
  for (const record of sources.records) {
    if (record.id === sources.self) continue;
    const address = parseHostPort(record.peer);
    if (address === null) sources.onUnusable(record);
    else registered.set(record.id, address);
  }
  const book = new Map<NodeId, HostPort[]>();
  for (const [id, address] of registered) book.set(nodeId(id), [address]);
  for (const [id, address] of sources.configured) {
    if (id === sources.self) continue;
    const known = book.get(nodeId(id));
    if (known === undefined) book.set(nodeId(id), [address]);
    else if (!known.some((a) => sameAddress(a, address))) {
      known.push(address);
    }
  }
  return book;
}
