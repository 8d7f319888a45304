import { describe, expect, it } from 'vitest';
import { Prng } from '../src/raft/prng.js';
import { decodeCommand, encodeCommand, Kv, type KvCommand, type KvWrite } from './kv.js';

describe('KV state machine', () => {
  it('applies put, cas and append', () => {
    const kv = new Kv();
    expect(kv.apply({ op: 'cas', key: 'a', expected: null, value: '1' })).toEqual({ ok: true });
    expect(kv.apply({ op: 'cas', key: 'a', expected: null, value: '2' })).toEqual({ ok: false });
    expect(kv.apply({ op: 'cas', key: 'a', expected: '1', value: '3' })).toEqual({ ok: true });
    expect(kv.get('a')).toBe('3');
    expect(kv.apply({ op: 'append', key: 'b', value: 'x' })).toEqual({ ok: true });
    expect(kv.apply({ op: 'append', key: 'b', value: 'y' })).toEqual({ ok: true });
    expect(kv.get('b')).toBe('xy');
    expect(kv.apply({ op: 'put', key: 'b', value: 'z' })).toEqual({ ok: true });
    expect(kv.get('b')).toBe('z');
    expect(kv.get('missing')).toBeNull();
  });

  it('round-trips commands through their log encoding', () => {
    const commands: KvCommand[] = [
      { opId: 0, input: { op: 'put', key: 'k', value: '' } },
      { opId: 127, input: { op: 'cas', key: 'k', expected: null, value: 'v' } },
      { opId: 128, input: { op: 'cas', key: 'k', expected: '', value: 'v' } },
      { opId: 2 ** 40, input: { op: 'append', key: 'ключ', value: 'värde ✓' } },
    ];
    for (const c of commands) expect(decodeCommand(encodeCommand(c))).toEqual(c);
  });

  it('rejects truncated or padded commands (paired check with the encoder)', () => {
    const bytes = encodeCommand({ opId: 5, input: { op: 'put', key: 'k', value: 'v' } });
    expect(() => decodeCommand(bytes.subarray(0, bytes.length - 1))).toThrow(/truncated|overruns/);
    const padded = new Uint8Array(bytes.length + 1);
    padded.set(bytes);
    expect(() => decodeCommand(padded)).toThrow(/trailing/);
    expect(() => decodeCommand(Uint8Array.of(99, 0, 0))).toThrow(/unknown command/);
  });

  it('snapshots to identical bytes whatever the order of writes', () => {
    const random = new Prng(3);
    const writes: KvWrite[] = [];
    for (let i = 0; i < 200; i++) {
      writes.push({ op: 'put', key: `k${random.int(20)}`, value: `v${i}` });
    }
    const a = new Kv();
    for (const w of writes) a.apply(w);
    // Same final state, keys first created in another order.
    const b = new Kv();
    const last = new Map<string, string>();
    for (const w of writes) last.set(w.key, w.value);
    for (const key of [...last.keys()].reverse())
      b.apply({ op: 'put', key, value: last.get(key) ?? '' });
    expect(b.serialize()).toEqual(a.serialize());
    expect(b.digest()).toBe(a.digest());
    const restored = Kv.restore(a.serialize());
    expect(restored.digest()).toBe(a.digest());
    expect(restored.get('k3')).toBe(a.get('k3'));
    a.apply({ op: 'append', key: 'k0', value: '!' });
    expect(a.digest()).not.toBe(b.digest());
  });

  it('refuses corrupt snapshots', () => {
    const kv = new Kv();
    kv.apply({ op: 'put', key: 'a', value: '1' });
    kv.apply({ op: 'put', key: 'b', value: '2' });
    const bytes = kv.serialize();
    expect(() => Kv.restore(bytes.subarray(0, bytes.length - 1))).toThrow();
    // Swap the two keys' first byte so they are out of order.
    const swapped = Uint8Array.from(bytes);
    const ia = swapped.indexOf('a'.charCodeAt(0));
    const ib = swapped.indexOf('b'.charCodeAt(0));
    swapped[ia] = 'b'.charCodeAt(0);
    swapped[ib] = 'a'.charCodeAt(0);
    expect(() => Kv.restore(swapped)).toThrow(/order/);
  });
});
