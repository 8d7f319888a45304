/**
 * What the chaos clients did: one record per operation with its invocation
 * and completion times (ms since the run started, one monotonic clock) and
 * its outcome. `unknown` is a timeout or a lost connection: the operation may
 * have taken effect at any time after it was invoked, or never. `fail` means
 * it certainly did not (refused before it was sent, or TRYAGAIN, which
 * Tandem answers only for writes it did not apply).
 *
 * Registers use the simulator's history type as is (sim/checker/history.ts),
 * so the same linearizability checker reads both.
 */

import type { Operation, OperationStatus } from '../sim/checker/history.js';

export type { Operation, OperationStatus };

export interface SetAdd {
  readonly client: number;
  readonly key: string;
  readonly element: string;
  readonly invoked: number;
  readonly returned: number | null;
  readonly status: OperationStatus;
}

/** A final read of a set: which node answered and the members. */
export interface SetRead {
  readonly key: string;
  readonly node: string;
  readonly members: readonly string[];
}

export type BankOp =
  | {
      readonly kind: 'transfer';
      readonly client: number;
      readonly from: number;
      readonly to: number;
      readonly amount: number;
      readonly invoked: number;
      readonly returned: number | null;
      readonly status: OperationStatus;
    }
  | {
      readonly kind: 'read';
      readonly client: number;
      /** Balances as read (strings as the server sent them; null for a missing key). */
      readonly balances: readonly (string | null)[];
      readonly invoked: number;
      readonly returned: number;
      /** Where the read came from: a client during the run, or a node's final read. */
      readonly source: string;
    };

/**
 * The files workload (issue 7, workload 4): whole-file puts of versions
 * whose content is known, and whole-file reads of what came back.
 */
export type FileOp =
  | {
      readonly kind: 'put';
      readonly client: number;
      readonly path: string;
      /** Unique over the run; the content is derived from it (workloads.ts fileContent). */
      readonly version: number;
      readonly size: number;
      readonly sha256: string;
      /** The node whose admin HTTP took the request. */
      readonly node: string;
      readonly invoked: number;
      readonly returned: number | null;
      readonly status: OperationStatus;
    }
  | {
      readonly kind: 'read';
      readonly client: number;
      readonly path: string;
      readonly node: string;
      readonly invoked: number;
      readonly returned: number | null;
      /** `ok`: an answer (200 or 404); otherwise `found` means nothing and is null. */
      readonly status: OperationStatus;
      /** 404, or what the body held (its length and sha256) and what the headers claimed. */
      readonly found: null | {
        readonly size: number;
        readonly sha256: string;
        readonly headerSha256: string | null;
        readonly headerSize: number | null;
      };
      /** A client during the run, or a node's final read after the heal. */
      readonly source: 'client' | 'final';
    };

export interface History {
  readonly registers: Operation[];
  readonly files: FileOp[];
  readonly setAdds: SetAdd[];
  readonly setReads: SetRead[];
  readonly bank: BankOp[];
  /** The bank's accounts and the total they must always hold. */
  readonly bankAccounts: number;
  readonly bankTotal: number;
  /** Why operations failed or ended unknown: error text (first 100 characters) → count. */
  readonly errors: Record<string, number>;
}

export function emptyHistory(bankAccounts: number, bankTotal: number): History {
  return {
    registers: [],
    files: [],
    setAdds: [],
    setReads: [],
    bank: [],
    bankAccounts,
    bankTotal,
    errors: {},
  };
}

/** Operations per status, over every workload. */
export function countByStatus(h: History): Record<OperationStatus, number> {
  const counts: Record<OperationStatus, number> = { ok: 0, fail: 0, unknown: 0 };
  for (const op of h.registers) counts[op.status]++;
  for (const op of h.setAdds) counts[op.status]++;
  for (const op of h.bank) counts[op.kind === 'read' ? 'ok' : op.status]++;
  for (const op of h.files) if (op.kind === 'put' || op.source === 'client') counts[op.status]++;
  return counts;
}
