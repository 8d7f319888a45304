/**
 * The per-connection state Redis keeps on its `client` struct: selected db,
 * protocol, name, MULTI queue, WATCHed keys, subscriptions.
 */

import type { WatchedKey } from '../kv/index.js';
import type { WriteOrder } from '../node/tandem-node.js';
import type { Protocol } from './encoder.js';

/** Commands a transaction may hold before it is refused (a limit on everything). */
export const multiCommandsMax = 100_000;

export class Session {
  name = '';
  db = 0;
  protocol: Protocol = 2;
  /** READONLY: reads skip the read barrier (stale but fast). */
  readonly = false;
  /** The queued commands while in MULTI, else null. */
  multi: string[][] | null = null;
  /** A command was refused while queueing: EXEC answers EXECABORT. */
  multiFailed = false;
  watched: WatchedKey[] = [];
  readonly channels = new Set<string>();
  readonly patterns = new Set<string>();
  libName = '';
  libVer = '';
  readonly createdMs: number;
  lastCommandMs: number;
  lastCommand = 'NULL';
  /** Writes (and EXECs) issued on this connection; never reset. */
  private issued = 0;

  constructor(
    readonly id: number,
    /** The client's address, `ip:port`. */
    readonly addr: string,
    /** Our end of the connection, `ip:port`. */
    readonly laddr: string,
  ) {
    this.createdMs = Date.now();
    this.lastCommandMs = this.createdMs;
  }

  /**
   * Registers a write about to be issued. Pipelined writes are proposed in
   * the order they arrive, but a write refused with TRYAGAIN and retried
   * would land after the writes sent behind it; so it may be retried only
   * while it is still the connection's newest write (else the client gets
   * the TRYAGAIN, and the order it sees is the order applied).
   */
  issueWrite(): WriteOrder {
    return new IssuedWrite(this, ++this.issued);
  }

  get writesIssued(): number {
    return this.issued;
  }

  get subscriptionCount(): number {
    return this.channels.size + this.patterns.size;
  }

  /** RESP2 subscribed mode: only pub/sub commands, PING, QUIT and RESET are allowed. */
  get inSubscribedMode(): boolean {
    return this.protocol === 2 && this.subscriptionCount > 0;
  }

  /** Leaves MULTI and forgets WATCHed keys (EXEC, DISCARD, RESET). */
  clearTransaction(): void {
    this.multi = null;
    this.multiFailed = false;
    this.watched = [];
  }

  /** RESET: back to a fresh connection's state (the caller drops subscriptions first). */
  reset(): void {
    this.clearTransaction();
    this.name = '';
    this.db = 0;
    this.protocol = 2;
    this.readonly = false;
  }

  /** One line of CLIENT LIST / CLIENT INFO, Redis's field order (the subset we track). */
  describe(nowMs: number): string {
    const ageS = Math.floor((nowMs - this.createdMs) / 1000);
    const idleS = Math.floor((nowMs - this.lastCommandMs) / 1000);
    const flags = `${this.readonly ? 'r' : ''}${this.multi !== null ? 'x' : ''}${this.subscriptionCount > 0 ? 'P' : ''}`;
    return [
      `id=${this.id}`,
      `addr=${this.addr}`,
      `laddr=${this.laddr}`,
      `fd=-1`,
      `name=${this.name}`,
      `age=${ageS}`,
      `idle=${idleS}`,
      `flags=${flags === '' ? 'N' : flags}`,
      `db=${this.db}`,
      `sub=${this.channels.size}`,
      `psub=${this.patterns.size}`,
      `ssub=0`,
      `multi=${this.multi === null ? -1 : this.multi.length}`,
      `watch=${this.watched.length}`,
      `cmd=${this.lastCommand}`,
      `user=default`,
      `lib-name=${this.libName}`,
      `lib-ver=${this.libVer}`,
      `resp=${this.protocol}`,
    ].join(' ');
  }
}

/** A write's place among its connection's writes (one small object per write, no closure). */
class IssuedWrite implements WriteOrder {
  constructor(
    private readonly session: Session,
    private readonly seq: number,
  ) {}

  mayRetry(): boolean {
    return this.session.writesIssued === this.seq;
  }
}
