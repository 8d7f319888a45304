/**
 * A single-node harness for kv tests: writes go prepare → apply at the next
 * index, reads go through read(); time is explicit and randomness seeded.
 */
import { Prng } from '../raft/prng.js';
import { lookupCommand } from './command-table.js';
import type { Reply } from './reply.js';
import { type ApplyResult, KvStateMachine } from './state-machine.js';

export const t0 = 1_700_000_000_000;

export class Harness {
  index = 0;
  nowMs = t0;
  db = 0;
  private readonly rng: Prng;
  lastApply: ApplyResult | undefined;

  constructor(
    public sm: KvStateMachine = new KvStateMachine(),
    seed = 1,
  ) {
    this.rng = new Prng(seed);
    this.index = sm.appliedIndex;
  }

  /** Applies raw entry bytes at the next index. */
  applyData(data: Uint8Array): Reply {
    this.index++;
    this.lastApply = this.sm.apply(this.index, data);
    return this.lastApply.reply;
  }

  /** Any command: routed by its class like the runtime would. */
  cmd(...argv: string[]): Reply {
    const found = lookupCommand(argv);
    if (!found.ok) return found.error;
    if (found.spec.class === 'read') {
      return this.sm.read(this.db, argv, this.nowMs, () => this.rng.float());
    }
    return this.write(...argv);
  }

  /** Through the log even if it is a read. */
  write(...argv: string[]): Reply {
    const data = this.sm.prepareWrite(this.db, argv, this.nowMs, this.rng.uint32());
    if (!(data instanceof Uint8Array)) return data;
    return this.applyData(data);
  }

  exec(commands: string[][], watched: { db: number; key: string; revision: number }[] = []): Reply {
    const data = this.sm.prepareExec(this.db, commands, watched, this.nowMs, this.rng.uint32());
    if (!(data instanceof Uint8Array)) return data;
    return this.applyData(data);
  }

  /** Reply as plain JS for terse assertions: strings, numbers, arrays, null, {err}. */
  v(...argv: string[]): unknown {
    return plain(this.cmd(...argv));
  }
}

export function plain(r: Reply): unknown {
  switch (r.kind) {
    case 'simple':
    case 'bulk':
    case 'verbatim':
      return r.value;
    case 'error':
      return { err: r.message };
    case 'integer':
      return typeof r.value === 'bigint' ? r.value : r.value;
    case 'double':
      return r.value;
    case 'boolean':
      return r.value;
    case 'null':
    case 'nullArray':
      return null;
    case 'array':
    case 'set':
    case 'push':
      return r.items.map(plain);
    case 'map':
      return r.entries.flatMap(([k, v]) => [plain(k), plain(v)]);
  }
}
