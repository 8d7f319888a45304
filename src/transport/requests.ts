/**
 * Request/response over a peer link: correlating our requests with their
 * responses (`PendingRequests`, one per peer), and serving a peer's
 * requests with the `onRequest` handler (`serveRequest`).
 *
 * Invariants: every pending request settles exactly once (response,
 * timeout, or `failAll`) and its timer is cleared when it does; a response
 * whose request already settled is dropped; a peer has at most
 * incomingRequestsMax requests in our handler, beyond it they are answered
 * 'busy'; a response is sent only on the connection its request came on.
 */

import type { NodeId } from '../raft/types.js';
import type { Connection } from './connection.js';
import { TransportError } from './errors.js';
import { frameHeaderBytes } from './frame.js';
import { decodeRequest, decodeResponse, encodeResponse } from './protocol.js';

/** Room for a request's or response's own header (type, id, ok flag) in a frame. */
const envelopeBytesMax = 16;

/** Whether a request or response payload of `payloadBytes` fits in one frame. */
export function payloadFits(payloadBytes: number, frameBytesMax: number): boolean {
  return payloadBytes + frameHeaderBytes + envelopeBytesMax <= frameBytesMax;
}

/**
 * Why a request of `payloadBytes` to `to` cannot be sent while `inFlight`
 * of ours await a response from it ('busy', 'tooLarge'), or null.
 */
export function requestRefusal(
  to: NodeId,
  inFlight: number,
  payloadBytes: number,
  limits: { readonly requestsInFlightMax: number; readonly frameBytesMax: number },
): TransportError | null {
  if (inFlight >= limits.requestsInFlightMax) {
    return new TransportError(
      'busy',
      to,
      `${limits.requestsInFlightMax} requests to ${to} are already in flight; retry later`,
    );
  }
  if (!payloadFits(payloadBytes, limits.frameBytesMax)) {
    return new TransportError(
      'tooLarge',
      to,
      `request of ${payloadBytes} bytes exceeds frameBytesMax ${limits.frameBytesMax}`,
    );
  }
  return null;
}

interface PendingRequest {
  readonly resolve: (payload: Uint8Array) => void;
  readonly reject: (error: TransportError) => void;
  readonly timer: NodeJS.Timeout;
}

/** Our requests to one peer awaiting a response, by request id. */
export class PendingRequests {
  private readonly pending = new Map<number, PendingRequest>();

  get size(): number {
    return this.pending.size;
  }

  /**
   * Registers request `id`, then calls `send` to put it on the wire. The
   * promise resolves with the response's payload, or rejects with a 'remote'
   * error (the handler failed), `timeoutError()` after `timeoutMs`, or the
   * error of `failAll`.
   */
  add(
    id: number,
    timeoutMs: number,
    timeoutError: () => TransportError,
    send: () => void,
  ): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(timeoutError());
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      send();
    });
  }

  /** Settles the request a response frame from `peer` answers; a late response finds nothing. */
  onResponse(peer: NodeId, body: Uint8Array): void {
    const response = decodeResponse(body);
    const pending = this.pending.get(response.id);
    // A response after its timeout finds nothing: dropped.
    if (pending === undefined) return;
    this.pending.delete(response.id);
    clearTimeout(pending.timer);
    if (response.ok) pending.resolve(response.payload);
    else
      pending.reject(
        new TransportError('remote', peer, `${peer} failed the request: ${response.error}`),
      );
  }

  /** Rejects every pending request, each with its own `error()`. */
  failAll(error: () => TransportError): void {
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error());
    }
    this.pending.clear();
  }
}

/** What `serveRequest` needs of the transport and of the peer it serves. */
export interface RequestServer {
  readonly self: NodeId;
  readonly frameBytesMax: number;
  readonly incomingRequestsMax: number;
  readonly handler: ((from: NodeId, payload: Uint8Array) => Promise<Uint8Array>) | undefined;
}

/** The peer-side state `serveRequest` reads and updates. */
export interface RequestPeer {
  readonly id: NodeId;
  readonly conn: Connection | null;
  incomingRequests: number;
}

type RequestResult = { ok: true; payload: Uint8Array } | { ok: false; error: string };

/**
 * Serves a request frame that arrived from `peer` on `conn`: runs the
 * handler (bounded per peer) and answers on `conn` if it is still the
 * peer's connection.
 */
export function serveRequest(
  server: RequestServer,
  peer: RequestPeer,
  conn: Connection,
  body: Uint8Array,
): void {
  const { id, payload } = decodeRequest(body);
  const frameBytesMax = server.frameBytesMax;
  const respond = (result: RequestResult) => {
    if (peer.conn !== conn) return;
    let frame: Uint8Array;
    if (result.ok && !payloadFits(result.payload.byteLength, frameBytesMax)) {
      frame = encodeResponse(
        {
          id,
          ok: false,
          error: `response of ${result.payload.byteLength} bytes exceeds frameBytesMax`,
        },
        frameBytesMax,
      );
    } else {
      frame = encodeResponse({ id, ...result }, frameBytesMax);
    }
    conn.enqueue(frame, 'urgent', false);
  };
  const handler = server.handler;
  if (handler === undefined) {
    respond({ ok: false, error: `${server.self} has no request handler` });
    return;
  }
  if (peer.incomingRequests >= server.incomingRequestsMax) {
    respond({
      ok: false,
      error: `${server.self} is busy with ${peer.incomingRequests} requests from ${peer.id}; retry later`,
    });
    return;
  }
  peer.incomingRequests++;
  Promise.resolve()
    .then(() => handler(peer.id, payload))
    .then(
      (answer) => respond({ ok: true, payload: answer }),
      (error: unknown) =>
        respond({ ok: false, error: error instanceof Error ? error.message : String(error) }),
    )
    .finally(() => {
      peer.incomingRequests--;
    });
}
