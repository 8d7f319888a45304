import { describe, expect, it } from 'vitest';
import type { Operation } from '../sim/checker/history.js';
import { checkBank, checkRegisters, checkSet, readProblem } from './checkers.js';
import { type BankOp, emptyHistory, type SetAdd } from './history.js';

let nextId = 0;
const put = (client: number, key: string, value: string, t0: number, t1: number): Operation => ({
  id: nextId++,
  client,
  input: { op: 'put', key, value },
  invoked: t0,
  returned: t1,
  status: 'ok',
  output: { ok: true },
});
const get = (client: number, key: string, value: string | null, t0: number, t1: number) =>
  ({
    id: nextId++,
    client,
    input: { op: 'get', key },
    invoked: t0,
    returned: t1,
    status: 'ok',
    output: { value },
  }) satisfies Operation;

function registers(ops: Operation[]) {
  const h = emptyHistory(0, 0);
  h.registers.push(...ops);
  return checkRegisters(h);
}

describe('register checker (the simulator linearizability checker on chaos histories)', () => {
  it('passes a sequential history', () => {
    const v = registers([put(1, 'k', 'a', 0, 1), get(2, 'k', 'a', 2, 3)]);
    expect(v.violations).toEqual([]);
  });

  it('catches a lost acknowledged SET (a later read sees the older value)', () => {
    const v = registers([put(1, 'k', 'a', 0, 1), put(1, 'k', 'b', 2, 3), get(2, 'k', 'a', 4, 5)]);
    expect(v.violations).toHaveLength(1);
    expect(v.violations[0]).toContain('key k is not linearizable');
  });

  it('catches a stale read after a newer read (no write in between)', () => {
    const v = registers([
      put(1, 'k', 'a', 0, 1),
      put(1, 'k', 'b', 2, 10),
      get(2, 'k', 'b', 3, 4),
      get(3, 'k', 'a', 5, 6),
    ]);
    expect(v.violations).toHaveLength(1);
  });

  it('accepts an unknown SET seen later, and a cas that swapped under WATCH', () => {
    const unknownPut: Operation = {
      id: nextId++,
      client: 1,
      input: { op: 'put', key: 'k', value: 'z' },
      invoked: 0,
      returned: null,
      status: 'unknown',
      output: null,
    };
    const cas: Operation = {
      id: nextId++,
      client: 2,
      input: { op: 'cas', key: 'k', expected: 'z', value: 'y' },
      invoked: 5,
      returned: 6,
      status: 'ok',
      output: { ok: true },
    };
    const v = registers([unknownPut, get(3, 'k', 'z', 2, 3), cas, get(3, 'k', 'y', 7, 8)]);
    expect(v.violations).toEqual([]);
  });
});

const add = (element: string, status: SetAdd['status']): SetAdd => ({
  client: 1,
  key: 's',
  element,
  invoked: 0,
  returned: status === 'unknown' ? null : 1,
  status,
});

describe('set checker', () => {
  it('passes when every acknowledged add is read, unknown ones either way', () => {
    const v = checkSet(
      [add('1', 'ok'), add('2', 'unknown'), add('3', 'unknown'), add('4', 'fail')],
      [
        { key: 's', node: 'n1', members: ['1', '2'] },
        { key: 's', node: 'n2', members: ['2', '1'] },
      ],
    );
    expect(v.violations).toEqual([]);
    expect(v.notes[0]).toContain('2 unknown (1 of them landed)');
  });

  it('catches a lost acknowledged add', () => {
    const v = checkSet(
      [add('1', 'ok'), add('2', 'ok')],
      [{ key: 's', node: 'n1', members: ['1'] }],
    );
    expect(v.violations).toHaveLength(1);
    expect(v.violations[0]).toContain('acknowledged add of 2');
  });

  it('catches a refused add that was applied, a phantom, and nodes that disagree', () => {
    const v = checkSet(
      [add('1', 'ok'), add('2', 'fail')],
      [
        { key: 's', node: 'n1', members: ['1', '2', '9'] },
        { key: 's', node: 'n2', members: ['1'] },
      ],
    );
    expect(v.violations.join('\n')).toContain('refused (TRYAGAIN: not applied)');
    expect(v.violations.join('\n')).toContain('never added');
    expect(v.violations.join('\n')).toContain('read different members');
  });

  it('fails when adds were made but no final read came back', () => {
    expect(checkSet([add('1', 'ok')], []).violations).toHaveLength(1);
  });
});

const read = (balances: (string | null)[], source = 'client'): BankOp => ({
  kind: 'read',
  client: 1,
  balances,
  invoked: 0,
  returned: 1,
  source,
});

describe('bank checker', () => {
  it('passes reads that keep the total', () => {
    const v = checkBank(
      [read(['10', '90']), read(['50', '50'], 'n1'), read(['50', '50'], 'n2')],
      2,
      100,
    );
    expect(v.violations).toEqual([]);
  });

  it('catches a broken total, a negative balance, a missing account and diverged final reads', () => {
    expect(readProblem(['10', '80'], 2, 100)).toContain('the total is 90');
    expect(readProblem(['-10', '110'], 2, 100)).toContain('negative');
    expect(readProblem(['100', null], 2, 100)).toContain('missing');
    const v = checkBank(
      [read(['10', '80']), read(['50', '50'], 'n1'), read(['40', '60'], 'n2')],
      2,
      100,
    );
    expect(v.violations).toHaveLength(2);
    expect(v.violations.join('\n')).toContain('final reads differ');
  });
});
