import type { LogIndex, NodeId, Term } from './types.js';

/**
 * Expected refusals, returned (never thrown) so the runtime can turn each
 * into a clear client error. `leader` is a hint: where to retry.
 */
export type Refusal =
  | { readonly kind: 'notLeader'; readonly leader: NodeId; readonly message: string }
  | { readonly kind: 'transferInProgress'; readonly message: string }
  | { readonly kind: 'overloaded'; readonly message: string }
  | { readonly kind: 'confChangeInProgress'; readonly message: string }
  | { readonly kind: 'leaderNotReady'; readonly message: string }
  | { readonly kind: 'invalidConfChange'; readonly message: string }
  | { readonly kind: 'invalidTransfer'; readonly message: string };

export type ProposeResult =
  | { readonly ok: true; readonly index: LogIndex; readonly term: Term }
  | { readonly ok: false; readonly refusal: Refusal };

export type RequestResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly refusal: Refusal };

export function notLeader(leader: NodeId, what: string): Refusal {
  const where = leader === '' ? 'no leader is known yet; retry shortly' : `retry on ${leader}`;
  return {
    kind: 'notLeader',
    leader,
    message: `${what} needs the leader and this node is not it: ${where}`,
  };
}
