/**
 * Model tests: random command sequences applied to independent state
 * machines must agree (determinism), and a snapshot taken mid-sequence —
 * while writes continue — must restore to the state as of its start and then
 * behave identically.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { Prng } from '../raft/prng.js';
import { arenaValueMax } from './arena.js';
import { lookupCommand } from './command-table.js';
import { Keyspace } from './keyspace.js';
import { plain, t0 } from './kv.test-util.js';
import type { Reply } from './reply.js';
import type { KvSnapshot } from './snapshot.js';
import { KvStateMachine } from './state-machine.js';

const key = fc.constantFrom('a', 'b', 'c', 'd');
const field = fc.constantFrom('x', 'y', 'z', '1', '2');
// Values of several arena slot sizes, and one too long for the arena (a JS string).
const value = fc.constantFrom(
  '1',
  '-7',
  '2.5',
  'v',
  '',
  '\xff\x00',
  '99999999999999999',
  'm'.repeat(200),
  'L'.repeat(arenaValueMax + 1),
);
const score = fc.constantFrom('0', '1', '-1.5', '3', 'inf', '-inf', '(1', 'nan');
const idx = fc.constantFrom('0', '1', '-1', '2', '-3', '10');

const argvArb: fc.Arbitrary<string[]> = fc.oneof<fc.Arbitrary<string[]>[]>(
  fc
    .tuple(fc.constantFrom('SET', 'GETSET', 'APPEND', 'SETNX'), key, value)
    .map(([c, k, v]) => [c, k, v]),
  fc
    .tuple(key, value, fc.constantFrom('EX', 'PX', 'KEEPTTL', 'NX', 'XX', 'GET'))
    .map(([k, v, o]) => (o === 'EX' || o === 'PX' ? ['SET', k, v, o, '1'] : ['SET', k, v, o])),
  fc
    .tuple(
      fc.constantFrom('INCR', 'DECR', 'GET', 'DEL', 'TYPE', 'TTL', 'PERSIST', 'GETDEL', 'STRLEN'),
      key,
    )
    .map(([c, k]) => [c, k]),
  fc
    .tuple(fc.constantFrom('INCRBY', 'INCRBYFLOAT', 'EXPIRE', 'PEXPIRE', 'SETRANGE'), key, idx)
    .map(([c, k, n]) => (c === 'SETRANGE' ? [c, k, n.replace('-', ''), 'zz'] : [c, k, n])),
  fc
    .tuple(fc.constantFrom('RENAME', 'RENAMENX', 'COPY', 'SMOVE', 'LMOVE', 'RPOPLPUSH'), key, key)
    .map(([c, a, b]) =>
      c === 'SMOVE' ? [c, a, b, 'x'] : c === 'LMOVE' ? [c, a, b, 'LEFT', 'RIGHT'] : [c, a, b],
    ),
  fc
    .tuple(fc.constantFrom('HSET', 'HSETNX', 'HINCRBY', 'HINCRBYFLOAT'), key, field, value)
    .map(([c, k, f, v]) => [c, k, f, c.startsWith('HINCR') ? v.slice(0, 2) : v]),
  fc
    .tuple(fc.constantFrom('HDEL', 'HGET', 'HEXISTS', 'HSTRLEN'), key, field)
    .map(([c, k, f]) => [c, k, f]),
  fc
    .tuple(
      fc.constantFrom('HGETALL', 'HLEN', 'HKEYS', 'HVALS', 'SMEMBERS', 'SCARD', 'LLEN', 'ZCARD'),
      key,
    )
    .map(([c, k]) => [c, k]),
  fc
    .tuple(
      fc.constantFrom('SADD', 'SREM', 'LPUSH', 'RPUSH', 'LPUSHX', 'ZREM'),
      key,
      fc.array(field, { minLength: 1, maxLength: 3 }),
    )
    .map(([c, k, fs]) => [c, k, ...fs]),
  fc
    .tuple(
      fc.constantFrom('SPOP', 'LPOP', 'RPOP', 'ZPOPMIN', 'ZPOPMAX', 'SRANDMEMBER', 'HRANDFIELD'),
      key,
      fc.option(fc.constantFrom('0', '1', '2', '-2')),
    )
    .map(([c, k, n]) => (n === null ? [c, k] : [c, k, n])),
  fc
    .tuple(
      fc.constantFrom('SINTERSTORE', 'SUNIONSTORE', 'SDIFFSTORE', 'SINTER', 'SUNION', 'SDIFF'),
      key,
      key,
      key,
    )
    .map(([c, a, b, d]) => [c, a, b, d]),
  fc
    .tuple(fc.constantFrom('LRANGE', 'LTRIM', 'GETRANGE', 'ZRANGE', 'ZREVRANGE'), key, idx, idx)
    .map(([c, k, a, b]) => [c, k, a, b]),
  fc.tuple(key, idx, value).map(([k, i, v]) => ['LSET', k, i, v]),
  fc.tuple(key, fc.constantFrom('0', '1', '-1'), field).map(([k, n, v]) => ['LREM', k, n, v]),
  fc
    .tuple(key, fc.constantFrom('BEFORE', 'AFTER'), field, value)
    .map(([k, w, p, v]) => ['LINSERT', k, w, p, v]),
  fc
    .tuple(
      key,
      fc.array(fc.tuple(score, field), { minLength: 1, maxLength: 3 }),
      fc.constantFrom([], ['NX'], ['XX'], ['GT', 'CH'], ['INCR']),
    )
    .map(([k, pairs, opts]) => [
      'ZADD',
      k,
      ...opts,
      ...(opts[0] === 'INCR' ? pairs.slice(0, 1) : pairs).flat(),
    ]),
  fc.tuple(key, score, field).map(([k, s, m]) => ['ZINCRBY', k, s.replace('(', ''), m]),
  fc
    .tuple(fc.constantFrom('ZRANGEBYSCORE', 'ZCOUNT', 'ZREVRANGEBYSCORE'), key, score, score)
    .map(([c, k, a, b]) => [c, k, a, b]),
  fc.tuple(key, key).map(([a, b]) => ['ZRANGESTORE', a, b, '0', '-1']),
  fc.tuple(key, field).map(([k, m]) => ['ZRANK', k, m]),
  fc.tuple(key, key).map(([a, b]) => ['MSET', a, '1', b, '2']),
  fc.constantFrom(
    ['KEYS', '*'],
    ['DBSIZE'],
    ['FLUSHDB'],
    ['PUBLISH', 'ch', 'm'],
    ['EXISTS', 'a', 'b'],
  ),
);

type Op =
  | { readonly kind: 'cmd'; readonly db: number; readonly argv: string[] }
  | { readonly kind: 'exec'; readonly cmds: string[][]; readonly watch: string | null }
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'expire' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc
      .tuple(fc.constantFrom(0, 0, 0, 1), argvArb)
      .map(([db, argv]) => ({ kind: 'cmd' as const, db, argv })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.array(argvArb, { minLength: 1, maxLength: 4 }), fc.option(key))
      .map(([cmds, watch]) => ({ kind: 'exec' as const, cmds, watch })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(0, 300, 1000, 1500, -2000)
      .map((ms) => ({ kind: 'advance' as const, ms })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'expire' as const }) },
);

/** Order of keys at db level is not part of the replicated state: compare KEYS as a set. */
function normalize(argv: readonly string[], r: Reply): unknown {
  const p = plain(r);
  if ((argv[0] ?? '').toUpperCase() === 'KEYS' && Array.isArray(p)) return [...p].sort();
  return p;
}

class Driver {
  index = 0;
  nowMs = t0;
  /**
   * `follower`, if given, applies every entry from its bytes alone, as a
   * follower does (no cached decoding from prepare), and must reply alike.
   * `setsThroughExec` proposes each plain SET as a one-command EXEC, which
   * runs the SET command itself instead of the state machine's fast path.
   */
  constructor(
    readonly sm: KvStateMachine,
    readonly follower?: KvStateMachine,
    readonly setsThroughExec = false,
  ) {
    this.index = sm.appliedIndex;
  }

  run(op: Op, seed: number): unknown {
    const rng = new Prng(seed);
    switch (op.kind) {
      case 'advance':
        this.nowMs += op.ms;
        return null;
      case 'expire': {
        const keys = this.sm.expiredCandidates(this.nowMs, 10);
        return this.apply(this.sm.prepareExpire(keys, this.nowMs), []);
      }
      case 'exec': {
        const watched =
          op.watch === null
            ? []
            : [{ db: 0, key: op.watch, revision: this.sm.watchRevision(0, op.watch) }];
        return this.apply(this.sm.prepareExec(0, op.cmds, watched, this.nowMs, seed), []);
      }
      case 'cmd': {
        const found = lookupCommand(op.argv);
        if (found.ok && found.spec.class === 'read') {
          return normalize(
            op.argv,
            this.sm.read(op.db, op.argv, this.nowMs, () => rng.float()),
          );
        }
        if (this.setsThroughExec && op.argv.length === 3 && op.argv[0] === 'SET') {
          const data = this.sm.prepareExec(op.db, [op.argv], [], this.nowMs, seed);
          const reply = this.apply(data, op.argv) as [unknown[], unknown];
          return [reply[0][0], reply[1]];
        }
        return this.apply(this.sm.prepareWrite(op.db, op.argv, this.nowMs, seed), op.argv);
      }
    }
  }

  private apply(data: Reply | Uint8Array, argv: readonly string[]): unknown {
    if (!(data instanceof Uint8Array)) return plain(data);
    this.index++;
    const res = this.sm.apply(this.index, data);
    if (this.follower !== undefined) {
      const other = this.follower.apply(this.index, data);
      expect([plain(other.reply), other.published ?? null]).toEqual([
        plain(res.reply),
        res.published ?? null,
      ]);
    }
    return [normalize(argv, res.reply), res.published ?? null];
  }
}

describe('model', () => {
  test('independent state machines agree on every reply and digest', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 80 }), (ops) => {
        // `a` compacts its string arena whenever more of it is free than live.
        // Plain SETs take the fast path on `a` and its follower, the SET
        // command on `b`.
        const follower = new KvStateMachine();
        const a = new Driver(new KvStateMachine(new Keyspace(0)), follower);
        const b = new Driver(new KvStateMachine(), undefined, true);
        ops.forEach((op, i) => {
          expect(b.run(op, i * 7919)).toEqual(a.run(op, i * 7919));
        });
        expect(b.sm.digest()).toBe(a.sm.digest());
        expect(follower.digest()).toBe(a.sm.digest());
      }),
      { numRuns: 150, seed: 20261122 },
    );
  });

  test('snapshot mid-sequence (writes continuing) restores the state at its start and replays identically', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 2, maxLength: 80 }),
        fc.nat(),
        fc.constantFrom(1, 16, 64, 100_000),
        (ops, at, chunkBytes) => {
          const cut = at % ops.length;
          const a = new Driver(new KvStateMachine(new Keyspace(0)));
          let snap: KvSnapshot | undefined;
          let it: Iterator<Uint8Array> | undefined;
          const chunks: Uint8Array[] = [];
          let digestAtCut = '';
          let stateAtCut = { index: 0, nowMs: 0 };
          const replies: unknown[] = [];
          ops.forEach((op, i) => {
            if (i === cut) {
              digestAtCut = a.sm.digest();
              stateAtCut = { index: a.index, nowMs: a.nowMs };
              snap = a.sm.snapshot('fresh', chunkBytes);
              it = snap[Symbol.iterator]();
            }
            replies.push(a.run(op, i * 104729));
            const next = it?.next();
            if (next !== undefined && next.done !== true) chunks.push(next.value);
          });
          for (;;) {
            const next = it?.next();
            if (next === undefined || next.done === true) break;
            chunks.push(next.value);
          }
          const c = new Driver(KvStateMachine.restore(chunks));
          expect(c.sm.digest()).toBe(digestAtCut);
          expect(c.index).toBe(stateAtCut.index);
          c.nowMs = stateAtCut.nowMs;
          for (let i = cut; i < ops.length; i++) {
            expect(c.run(ops[i] as Op, i * 104729)).toEqual(replies[i]);
          }
          expect(c.sm.digest()).toBe(a.sm.digest());
        },
      ),
      { numRuns: 150, seed: 7 },
    );
  });

  test('apply does not depend on the wall clock or Math.random', () => {
    const ops =
      fc.sample(fc.array(opArb, { minLength: 50, maxLength: 50 }), { numRuns: 1, seed: 3 })[0] ??
      [];
    const run = (): string => {
      const d = new Driver(new KvStateMachine());
      ops.forEach((op, i) => {
        d.run(op, i);
      });
      return d.sm.digest();
    };
    const first = run();
    const realRandom = Math.random;
    const realNow = Date.now;
    try {
      Math.random = () => 0.999;
      Date.now = () => 0;
      expect(run()).toBe(first);
    } finally {
      Math.random = realRandom;
      Date.now = realNow;
    }
  });
});
