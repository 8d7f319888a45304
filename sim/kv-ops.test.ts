import { describe, expect, it } from 'vitest';
import { KvStateMachine } from '../src/kv/index.js';
import type { KvInput } from './checker/history.js';
import {
  formatKvEntry,
  getValue,
  type KvCas,
  prepareCas,
  restoreKv,
  simDb,
  snapshotBytes,
  writeArgv,
  writeOutput,
} from './kv-ops.js';

const nowMs = 1_000;

/** Proposes and applies one put or append, as the leader and every node would. */
function write(
  sm: KvStateMachine,
  index: number,
  input: Extract<KvInput, { op: 'put' | 'append' }>,
) {
  const data = sm.prepareWrite(simDb, writeArgv(input), nowMs, index);
  if (!(data instanceof Uint8Array)) throw new Error('refused');
  return writeOutput(input, sm.apply(index, data).reply);
}

function get(sm: KvStateMachine, key: string): string | null | undefined {
  return getValue(sm.read(simDb, ['GET', key], nowMs, () => 0));
}

describe('client operations on the real kv state machine', () => {
  it('runs put, append and get', () => {
    const sm = new KvStateMachine();
    expect(get(sm, 'a')).toBeNull();
    expect(write(sm, 1, { op: 'append', key: 'a', value: 'x ' })).toEqual({ ok: true });
    expect(write(sm, 2, { op: 'append', key: 'a', value: 'y ' })).toEqual({ ok: true });
    expect(get(sm, 'a')).toBe('x y ');
    expect(write(sm, 3, { op: 'put', key: 'a', value: 'z' })).toEqual({ ok: true });
    expect(get(sm, 'a')).toBe('z');
  });

  it('swaps a cas whose watched key is unchanged, and not one whose key changed', () => {
    const sm = new KvStateMachine();
    write(sm, 1, { op: 'put', key: 'k', value: 'v1' });
    const cas: KvCas = { op: 'cas', key: 'k', expected: 'v1', value: 'v2' };
    const revision = sm.watchRevision(simDb, 'k');
    expect(revision).toBe(1);
    const swap = prepareCas(sm, cas, revision, nowMs, 7);
    expect(writeOutput(cas, sm.apply(2, swap).reply)).toEqual({ ok: true });
    expect(get(sm, 'k')).toBe('v2');

    // Read (value v2, revision 2), then another client appends before the EXEC applies.
    const late: KvCas = { op: 'cas', key: 'k', expected: 'v2', value: 'v3' };
    const stale = prepareCas(sm, late, sm.watchRevision(simDb, 'k'), nowMs, 8);
    write(sm, 3, { op: 'append', key: 'k', value: '!' });
    expect(writeOutput(late, sm.apply(4, stale).reply)).toEqual({ ok: false });
    expect(get(sm, 'k')).toBe('v2!');
  });

  it('watches an absent key at revision 0', () => {
    const sm = new KvStateMachine();
    const cas: KvCas = { op: 'cas', key: 'k', expected: null, value: 'v' };
    expect(sm.watchRevision(simDb, 'k')).toBe(0);
    const swap = prepareCas(sm, cas, 0, nowMs, 1);
    expect(writeOutput(cas, sm.apply(1, swap).reply)).toEqual({ ok: true });
    expect(get(sm, 'k')).toBe('v');
  });

  it('rejects replies a write can never give', () => {
    expect(writeOutput({ op: 'put', key: 'k', value: 'v' }, { kind: 'null' })).toBeNull();
    expect(
      writeOutput({ op: 'append', key: 'k', value: 'v' }, { kind: 'simple', value: 'OK' }),
    ).toBeNull();
    const cas: KvCas = { op: 'cas', key: 'k', expected: null, value: 'v' };
    expect(writeOutput(cas, { kind: 'array', items: [] })).toBeNull();
    expect(getValue({ kind: 'integer', value: 1 })).toBeUndefined();
  });

  it('gives a replica restored from a snapshot the same image as one that replayed the log', () => {
    const a = new KvStateMachine();
    for (let i = 1; i <= 50; i++) {
      write(a, i, { op: i % 3 === 0 ? 'append' : 'put', key: `k${i % 7}`, value: `v${i} ` });
    }
    const b = restoreKv(snapshotBytes(a));
    expect(snapshotBytes(b)).toEqual(snapshotBytes(a));
    for (let i = 51; i <= 60; i++) {
      write(a, i, { op: 'append', key: `k${i % 9}`, value: `w${i} ` });
      write(b, i, { op: 'append', key: `k${i % 9}`, value: `w${i} ` });
    }
    expect(snapshotBytes(b)).toEqual(snapshotBytes(a));
    // Revisions travel in the image: a WATCH decides the same on both.
    expect(b.watchRevision(simDb, 'k3')).toBe(a.watchRevision(simDb, 'k3'));
  });

  it('snapshots in key creation order: equal states reached in other orders differ in bytes', () => {
    // Why the simulator compares images of one log (same history), and this test pins it.
    const a = new KvStateMachine();
    write(a, 1, { op: 'put', key: 'x', value: '0' });
    write(a, 2, { op: 'put', key: 'y', value: '2' });
    write(a, 3, { op: 'put', key: 'x', value: '1' });
    const b = new KvStateMachine();
    write(b, 1, { op: 'put', key: 'y', value: '0' });
    write(b, 2, { op: 'put', key: 'y', value: '2' });
    write(b, 3, { op: 'put', key: 'x', value: '1' });
    // The same keys, values, revisions, clock and applied index...
    expect(b.digest()).toBe(a.digest());
    // ...but the image lists keys in creation order.
    expect(snapshotBytes(b)).not.toEqual(snapshotBytes(a));
  });

  it('formats entries for traces', () => {
    const sm = new KvStateMachine();
    const put = sm.prepareWrite(simDb, ['SET', 'k1', '0.a'], nowMs, 1) as Uint8Array;
    expect(formatKvEntry(put)).toBe('SET k1 0.a');
    const append = sm.prepareWrite(simDb, ['APPEND', 'k1', '0.b '], nowMs, 1) as Uint8Array;
    expect(formatKvEntry(append)).toBe('APPEND k1 "0.b "');
    const cas = prepareCas(sm, { op: 'cas', key: 'k1', expected: null, value: '0.c' }, 0, nowMs, 1);
    expect(formatKvEntry(cas)).toBe('EXEC [SET k1 0.c] watching k1@0');
  });
});
