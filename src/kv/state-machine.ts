/**
 * The deterministic Redis state machine: prepares log entries on the leader
 * and applies committed ones on every node. See index.ts for how the runtime
 * uses it.
 */
import { assert } from '../raft/assert.js';
import type { ArenaStats } from './arena.js';
import type { ByteSpan } from './bytes.js';
import { implementationOf } from './cmd-registry.js';
import { type CommandSpec, lookupCommand } from './command-table.js';
import { Ctx, type Published } from './context.js';
import {
  type DbKey,
  dbCount,
  decodeEntry,
  decodePlainSet,
  encodeEntry,
  type Entry as KvEntry,
  type WatchedKey,
} from './entry-codec.js';
import { KvError, msg } from './errors.js';
import { type DbStats, Keyspace } from './keyspace.js';
import { parseLong } from './parse.js';
import { bulk, error, integer, nullArray, ok, type Reply, simple } from './reply.js';
import {
  digestKeyspace,
  KvSnapshot,
  restoreKeyspace,
  restoreKeyspaceAsync,
  type SnapshotChunks,
} from './snapshot.js';

/**
 * Deliberately planted bugs, for showing that the chaos suite (chaos/)
 * catches them; set only by `tandem node` from TANDEM_PLANTED_BUG, never in
 * production. `skipWatch`: EXEC ignores WATCH (a lost update);
 * `staleReads`: reads skip the read barrier (src/node: a cut-off node
 * answers from its own, possibly old, state).
 */
export const plantedBugs = { skipWatch: false, staleReads: false };

export interface ApplyResult {
  readonly reply: Reply;
  /** PUBLISHed messages, in order, for the runtime to deliver to local subscribers. */
  readonly published?: readonly Published[];
}

/** What every plain SET applies to (see applySet). */
const setApplied: ApplyResult = { reply: ok };

/** Whether argv is `SET key value` (any case, no options). */
function isPlainSet(argv: readonly string[]): boolean {
  if (argv.length !== 3) return false;
  const name = argv[0] as string;
  return name === 'SET' || name === 'set' || name.toLowerCase() === 'set';
}

export interface KvArenaStats extends ArenaStats {
  /** Times the values moved into a fresh arena (Keyspace.tidyArena). */
  readonly compactions: number;
  /** Bytes of the key tables (key-table.ts), also outside the JS heap. */
  readonly keyTableBytes: number;
}

export interface KvStats {
  readonly dbs: readonly DbStats[];
  readonly approxMemoryBytes: number;
  /** The off-heap store of short string values (arena.ts). */
  readonly arena: KvArenaStats;
  readonly clockMs: number;
  readonly appliedIndex: number;
}

/** Connection commands that EXEC can run itself; others cannot be queued. */
const execConnectionCommands = new Set(['ping', 'echo', 'select']);

function checkDb(db: number): void {
  assert(Number.isInteger(db) && db >= 0 && db < dbCount, 'db index in range');
}

function checkSeed(seed: number): void {
  assert(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff, 'seed is a u32');
}

/** Most encoded entries remembered for their apply (see `EncodedEntries`), a power of 2. */
const encodedMax = 4096;
/** How far past the oldest remembered entry an apply looks for its own. */
const encodedSearchMax = 64;

/**
 * Whether `a` and `b` view the same bytes of the same buffer. Reading
 * `.buffer` is a runtime call, so identity and the offsets go first.
 */
function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === b) return true;
  return (
    a !== undefined &&
    a.byteOffset === b.byteOffset &&
    a.byteLength === b.byteLength &&
    a.buffer === b.buffer
  );
}

/**
 * The entries this node encoded (on the leader, its own proposals), in the
 * order encoded, so applying them skips decoding what was just encoded. The
 * raft log hands back the proposed bytes object while the entry is recent
 * and a new view of the same bytes after, so an entry is found by where its
 * bytes are: the same buffer, offset and length (a buffer is never written
 * again while an encoded entry in it is remembered, see `encode`).
 *
 * A ring allocated once, not a Map: a Map's table is reallocated as entries
 * come and go, in the old generation once the Map is there, and the young
 * entries a dropped table still points to survive scavenges until the next
 * full collection, with the requests they reference.
 *
 * A node applies its own entries in the order it encoded them, skipping
 * those that never apply (refused, or lost to a new leader). So an apply
 * looks from the oldest entry on, a bounded way, and forgets the ones it
 * passes; a full ring forgets its oldest. A forgotten entry is decoded, as on
 * followers: a miss costs time, never correctness.
 */
class EncodedEntries {
  private readonly bytes: (Uint8Array | undefined)[] = new Array(encodedMax).fill(undefined);
  private readonly entries: (KvEntry | undefined)[] = new Array(encodedMax).fill(undefined);
  /** Positions ever used: the oldest remembered at `head`, the next free at `tail`. */
  private head = 0;
  private tail = 0;

  add(bytes: Uint8Array, entry: KvEntry): void {
    if (this.tail - this.head === encodedMax) this.forget(this.head + 1);
    const at = this.tail++ & (encodedMax - 1);
    this.bytes[at] = bytes;
    this.entries[at] = entry;
  }

  /** The entry encoded as `bytes`, forgotten with every older one; undefined if not remembered. */
  take(bytes: Uint8Array): KvEntry | undefined {
    const end = Math.min(this.tail, this.head + encodedSearchMax);
    for (let i = this.head; i < end; i++) {
      const at = i & (encodedMax - 1);
      if (!sameBytes(this.bytes[at], bytes)) continue;
      const entry = this.entries[at];
      this.forget(i + 1);
      return entry;
    }
    return undefined;
  }

  /** Forgets the entries before position `until`. */
  private forget(until: number): void {
    for (; this.head < until; this.head++) {
      const at = this.head & (encodedMax - 1);
      this.bytes[at] = undefined;
      this.entries[at] = undefined;
    }
  }
}

export class KvStateMachine {
  private readonly ks: Keyspace;
  private readonly encoded = new EncodedEntries();

  constructor(keyspace: Keyspace = new Keyspace()) {
    this.ks = keyspace;
  }

  /** Index of the last applied entry (0 when none). */
  get appliedIndex(): number {
    return this.ks.appliedIndex;
  }

  /** The monotonic clock: max nowMs of all applied entries. */
  get clockMs(): number {
    return this.ks.clockMs;
  }

  /**
   * On the leader, before proposing: checks everything that needs no state
   * (arity, syntax, numbers, option conflicts) and returns the error Reply,
   * or the entry bytes to propose. `nowMs` is the leader's clock and `seed` a
   * random u32; both travel in the entry. Read commands are accepted too
   * (for reads through the log); connection/server commands are refused.
   */
  prepareWrite(
    db: number,
    argv: readonly string[],
    nowMs: number,
    seed: number,
  ): Reply | Uint8Array {
    checkDb(db);
    checkSeed(seed);
    const found = lookupCommand(argv);
    if (!found.ok) return found.error;
    const spec = found.spec;
    if (spec.class !== 'write' && spec.class !== 'read') {
      return error(`ERR '${spec.name}' is handled by the runtime, not the kv state machine`);
    }
    const checked = this.check(spec, argv);
    if (checked !== undefined) return checked;
    return this.encode({ tag: 'command', nowMs, seed, db, argv });
  }

  /**
   * MULTI/EXEC as one entry: `commands` are the queued argv lists, `watched`
   * the revisions recorded at WATCH. Returns EXECABORT for a queued unknown
   * command or wrong arity; per-command errors are replies inside the result.
   */
  prepareExec(
    db: number,
    commands: readonly (readonly string[])[],
    watched: readonly WatchedKey[],
    nowMs: number,
    seed: number,
  ): Reply | Uint8Array {
    checkDb(db);
    checkSeed(seed);
    for (const w of watched) checkDb(w.db);
    for (const argv of commands) {
      const found = lookupCommand(argv);
      if (!found.ok) return error('EXECABORT Transaction discarded because of previous errors.');
      const { spec } = found;
      if (
        spec.class !== 'write' &&
        spec.class !== 'read' &&
        !execConnectionCommands.has(spec.name)
      ) {
        return error(`ERR '${spec.name}' inside MULTI is not supported by Tandem`);
      }
    }
    return this.encode({ tag: 'exec', nowMs, seed, db, watched, commands });
  }

  /** An active-expiry entry: apply deletes each key that is still expired as of its clock. */
  prepareExpire(keys: readonly DbKey[], nowMs: number): Uint8Array {
    for (const k of keys) checkDb(k.db);
    return this.encode({ tag: 'expire', nowMs, seed: 0, keys });
  }

  private encode(entry: KvEntry): Uint8Array {
    // Fresh bytes each time (a new allocation, never reused while referenced),
    // so their place identifies them while `encoded` remembers them.
    const bytes = encodeEntry(entry);
    this.encoded.add(bytes, entry);
    return bytes;
  }

  /**
   * Applies one committed entry. Throws CorruptDataError for bytes that are
   * not a valid entry (a bug or corruption: never skip an entry).
   */
  apply(index: number, data: Uint8Array): ApplyResult {
    assert(Number.isInteger(index) && index > this.ks.appliedIndex, 'apply index increases');
    const cached = this.encoded.take(data);
    if (cached === undefined) {
      const set = decodePlainSet(data);
      if (set !== undefined) return this.applySet(index, set.nowMs, set.db, set.key, set.value);
    } else if (cached.tag === 'command' && isPlainSet(cached.argv)) {
      const { argv } = cached;
      return this.applySet(index, cached.nowMs, cached.db, argv[1] as string, argv[2] as string);
    }
    const entry = cached ?? decodeEntry(data);
    this.ks.appliedIndex = index;
    this.ks.clockMs = Math.max(this.ks.clockMs, entry.nowMs);
    if (entry.tag === 'expire') {
      const reply = this.applyExpire(entry.keys);
      this.ks.tidyArena();
      return { reply };
    }
    const ctx = new Ctx(this.ks, entry.db, this.ks.clockMs, index, true, entry.seed);
    const reply =
      entry.tag === 'command'
        ? this.execute(ctx, entry.argv)
        : this.applyExec(ctx, entry.watched, entry.commands);
    this.ks.tidyArena();
    return ctx.published !== null ? { reply, published: ctx.published } : { reply };
  }

  /**
   * A plain SET (no options) as the SET command applies it: an expired key
   * is deleted first (as `Ctx.lookupForWrite` does), then the key gets the
   * value, the entry's index as revision and no expiry. Without a Ctx, the
   * command table or argv: it is most entries under write load. The value
   * is a string (the leader's own entry), or a range of the entry's bytes
   * copied into the arena (followers): decoding SET's argv strings was
   * about a tenth of a follower's main thread (`perf record`, pipelined SETs).
   */
  private applySet(
    index: number,
    nowMs: number,
    db: number,
    key: string,
    value: string | ByteSpan,
  ): ApplyResult {
    const ks = this.ks;
    ks.appliedIndex = index;
    ks.clockMs = Math.max(ks.clockMs, nowMs);
    // An expiry belongs to an existing key: no lookup unless it has one.
    if (ks.isExpired(db, key, ks.clockMs)) ks.remove(db, key);
    ks.put(db, key, value, index, 0);
    ks.tidyArena();
    return setApplied;
  }

  /**
   * Answers a `read`-class command from local state (call after the read
   * barrier). `nowMs` is this node's clock (taken as max with the applied
   * clock); `random` returns [0, 1) for SRANDMEMBER, RANDOMKEY, ...
   */
  read(db: number, argv: readonly string[], nowMs: number, random: () => number): Reply {
    checkDb(db);
    const found = lookupCommand(argv);
    if (!found.ok) return found.error;
    if (found.spec.class !== 'read') {
      return error(`ERR '${found.spec.name}' is not a read command`);
    }
    const now = Math.max(nowMs, this.ks.clockMs);
    return this.execute(new Ctx(this.ks, db, now, 0, false, random), argv);
  }

  /**
   * The revision to record at WATCH: the log index of the key's last
   * modification, 0 when missing or expired (as of the applied clock).
   */
  watchRevision(db: number, key: string): number {
    checkDb(db);
    const e = this.ks.find(db, key);
    if (e === undefined || this.ks.isExpired(db, key, this.ks.clockMs)) return 0;
    return this.ks.revisionOf(e);
  }

  /** Up to `max` expired keys for the leader to propose; bounded work per call. */
  expiredCandidates(nowMs: number, max: number): DbKey[] {
    assert(Number.isInteger(max) && max >= 0, 'max is a count');
    return this.ks.expiredCandidates(nowMs, max);
  }

  /**
   * Starts a snapshot as of now; iterate its chunks (between applies is
   * fine). `chunks` says whether the consumer may keep them (see
   * `SnapshotChunks`); `chunkBytes` is the target chunk size (default 256 KiB).
   */
  snapshot(chunks: SnapshotChunks = 'fresh', chunkBytes?: number): KvSnapshot {
    return new KvSnapshot(this.ks, chunkBytes, chunks);
  }

  static restore(chunks: Iterable<Uint8Array>): KvStateMachine {
    return new KvStateMachine(restoreKeyspace(chunks));
  }

  /** Restores from a stream without holding the whole image in memory. */
  static async restoreAsync(
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  ): Promise<KvStateMachine> {
    return new KvStateMachine(await restoreKeyspaceAsync(chunks));
  }

  /** Hex SHA-256 of the whole logical state (canonical order), for cross-node comparison. */
  digest(): string {
    return digestKeyspace(this.ks);
  }

  /** The string arena's bytes and compactions, and the key tables' bytes (cheap: for metrics at every scrape). */
  arenaStats(): KvArenaStats {
    return {
      ...this.ks.arenaStats(),
      compactions: this.ks.arenaCompactions,
      keyTableBytes: this.ks.keyTableBytes,
    };
  }

  /** Keys and keys with expiry per db and approximate memory, for INFO. */
  stats(): KvStats {
    return {
      dbs: this.ks.stats(),
      approxMemoryBytes: this.ks.approxMemoryBytes(),
      arena: this.arenaStats(),
      clockMs: this.ks.clockMs,
      appliedIndex: this.ks.appliedIndex,
    };
  }

  private check(spec: CommandSpec, argv: readonly string[]): Reply | undefined {
    const impl = implementationOf(spec.name);
    if (impl === undefined) return error(`ERR '${spec.name}' is not implemented by Tandem yet`);
    try {
      impl.check?.(argv);
    } catch (e) {
      if (e instanceof KvError) return e.reply;
      throw e;
    }
    return undefined;
  }

  private execute(ctx: Ctx, argv: readonly string[]): Reply {
    const found = lookupCommand(argv);
    if (!found.ok) return found.error;
    const impl = implementationOf(found.spec.name);
    if (impl === undefined)
      return error(`ERR '${found.spec.name}' is not implemented by Tandem yet`);
    try {
      return impl.run(ctx, argv);
    } catch (e) {
      if (e instanceof KvError) return e.reply;
      throw e;
    }
  }

  private applyExec(
    ctx: Ctx,
    watched: readonly WatchedKey[],
    commands: readonly (readonly string[])[],
  ): Reply {
    for (const w of watched) {
      if (plantedBugs.skipWatch) break;
      if (this.watchRevision(w.db, w.key) !== w.revision) return nullArray;
    }
    const replies: Reply[] = [];
    for (const argv of commands) {
      const name = (argv[0] ?? '').toLowerCase();
      if (execConnectionCommands.has(name)) replies.push(this.execConnection(ctx, argv));
      else replies.push(this.execute(ctx, argv));
    }
    return { kind: 'array', items: replies };
  }

  /** PING, ECHO and SELECT queued in a transaction. */
  private execConnection(ctx: Ctx, argv: readonly string[]): Reply {
    const found = lookupCommand(argv);
    if (!found.ok) return found.error;
    const name = found.spec.name;
    if (name === 'ping') {
      if (argv.length > 2) return error("ERR wrong number of arguments for 'ping' command");
      return argv.length === 2 ? bulk(argv[1] as string) : simple('PONG');
    }
    if (name === 'echo') return bulk(argv[1] as string);
    try {
      const db = parseLong(argv[1] as string);
      if (db < 0 || db >= dbCount) return error(msg.dbIndex);
      ctx.db = db;
      return ok;
    } catch (e) {
      if (e instanceof KvError) return e.reply;
      throw e;
    }
  }

  private applyExpire(keys: readonly DbKey[]): Reply {
    let deleted = 0;
    for (const { db, key } of keys) {
      if (this.ks.isExpired(db, key, this.ks.clockMs) && this.ks.remove(db, key)) {
        deleted++;
      }
    }
    return integer(deleted);
  }
}
