/**
 * The kv state machine: a deterministic, Redis-compatible keyspace that the
 * runtime (src/node/) replicates through the Raft log.
 *
 * Byte strings are binary strings (latin1, one char per byte) everywhere:
 * argv, keys, values, replies.
 *
 * How the runtime drives it, per client command `argv` on db `db`:
 *
 * 1. `lookupCommand(argv)` — unknown command or wrong arity: send the error.
 *    Otherwise `spec.class` says what to do:
 *    - `connection` / `server`: the runtime/protocol layer answers it itself
 *      (PING, HELLO, SELECT, MULTI/EXEC/WATCH bookkeeping, SUBSCRIBE, INFO...).
 *    - `read`: after a read barrier (ReadIndex or lease), answer
 *      `sm.read(db, argv, Date.now(), Math.random)` from local state.
 *    - `write`: on the leader, `sm.prepareWrite(db, argv, Date.now(), seed)`
 *      returns an error Reply (send it; nothing is proposed) or the entry
 *      bytes to propose. When the entry commits, every node calls
 *      `sm.apply(index, data)`; the leader sends `result.reply` to the client
 *      and every node delivers `result.published` to its local subscribers
 *      (PUBLISH answers 0; the runtime may substitute its receiver count).
 * 2. MULTI/EXEC: the runtime queues argv lists (rejecting unknown commands
 *    and wrong arities at queue time, as Redis does), records
 *    `sm.watchRevision(db, key)` at WATCH, and at EXEC proposes
 *    `sm.prepareExec(db, queued, watched, now, seed)`. Its apply replies an
 *    array of every command's reply, or nullArray when a watched key changed.
 *    PING, ECHO and SELECT may be queued (SELECT switches the db for the
 *    commands after it; the runtime applies the same switch to the
 *    connection). Other connection/server commands cannot be queued.
 * 3. Active expiry, on the leader only:
 *    `sm.prepareExpire(sm.expiredCandidates(Date.now(), 20), Date.now())`
 *    periodically; followers never expire keys on their own. Reads already
 *    hide expired keys; writes treat them as missing (and delete them).
 * 4. Snapshots: `for (const chunk of sm.snapshot()) { ...; await turn() }`
 *    — the image is as of the call even though applies continue between
 *    chunks. `KvStateMachine.restore(chunks)` rebuilds (throws
 *    CorruptDataError on a corrupt or truncated image).
 *
 * Determinism: apply never reads the clock or ambient randomness. Each entry
 * carries the leader's `nowMs` and a u32 `seed`; the state machine keeps
 * `clockMs = max(clockMs, entry.nowMs)`, resolves relative TTLs against it,
 * and a key is expired iff `expireAtMs <= clockMs`. Random choices (SPOP,
 * SRANDMEMBER inside EXEC) come from a PRNG seeded by the entry.
 *
 * WATCH: a key's revision is the log index of its last modification (0 when
 * missing or expired). EXEC aborts when any watched revision differs at
 * apply time. Weaker than Redis: a key missing at WATCH that is created and
 * deleted again before EXEC still reads 0, so EXEC proceeds (Redis aborts).
 *
 * @example
 * const sm = new KvStateMachine();
 * const data = sm.prepareWrite(0, ['SET', 'k', 'v', 'EX', '10'], 1_700_000_000_000, 42);
 * if (data instanceof Uint8Array) sm.apply(1, data).reply; // { kind: 'simple', value: 'OK' }
 * sm.read(0, ['TTL', 'k'], 1_700_000_001_000, Math.random); // { kind: 'integer', value: 9 }
 */

export { CorruptDataError } from './bytes.js';
export {
  type CommandClass,
  type CommandFlag,
  type CommandSpec,
  commandKeys,
  commandTable,
  type LookupResult,
  lookupCommand,
} from './command-table.js';
export type { Published } from './context.js';
export type { DbKey, WatchedKey } from './entry-codec.js';
export { dbCount } from './entry-codec.js';
export type { DbStats } from './keyspace.js';
export * from './reply.js';
export { KvSnapshot, type SnapshotChunks } from './snapshot.js';
export {
  type ApplyResult,
  type KvArenaStats,
  KvStateMachine,
  type KvStats,
  plantedBugs,
} from './state-machine.js';
