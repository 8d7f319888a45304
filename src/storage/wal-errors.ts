/**
 * The two ways the WAL refuses to go on, as typed errors whose messages tell
 * the operator what happened and what to do.
 */

/**
 * A damaged record that is not a torn tail: it may hold a committed entry, so
 * recovery must not drop it (DESIGN.md §2). The node refuses to start.
 */
export class WalCorruptionError extends Error {
  override readonly name = 'WalCorruptionError';
  constructor(
    readonly file: string,
    readonly offsetBytes: number,
    readonly reason: string,
  ) {
    super(
      `WAL corruption in ${file} at byte offset ${offsetBytes}: ${reason}. ` +
        "This node's log is damaged at an entry that may be committed; do not delete it by hand: " +
        'stop this node, move its data directory aside, and let it rejoin the cluster as a new ' +
        'member (or restore from a backup).',
    );
  }
}

/**
 * A write or sync of the WAL failed. After a failed fsync the kernel may have
 * dropped the dirty pages while marking them clean, so a retry could report
 * data durable that is not (the "fsyncgate" lesson): the only safe course is
 * to stop the process and recover from what the log holds at restart.
 */
export class WalFailedError extends Error {
  override readonly name = 'WalFailedError';
  constructor(cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(
      `WAL write or sync failed (${detail}): this node must stop now and recover from its log ` +
        'at restart; nothing written since the last successful sync may be assumed durable',
      { cause },
    );
  }
}
