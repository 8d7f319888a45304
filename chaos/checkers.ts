/**
 * The chaos suite's verdicts on a history (history.ts):
 * - registers: linearizable per key, by the simulator's checker (sim/checker);
 * - set: every acknowledged add is in the final read of every node, nothing
 *   appears that was never added or was refused (TRYAGAIN promises "not
 *   applied"), and all nodes read the same members;
 * - bank: every read (during the run and the final ones) sums to the total
 *   and holds no negative balance (transfers check the balance under WATCH,
 *   so a negative one means a lost WATCH), and the final reads agree.
 * Each violation is a line a reader can act on.
 */

import { checkLinearizable } from '../sim/checker/linearizability.js';
import type { BankOp, History, SetAdd, SetRead } from './history.js';

export interface Verdict {
  readonly checker: 'register' | 'set' | 'bank';
  readonly violations: readonly string[];
  /** Facts worth printing (e.g. adds whose outcome was unknown and that did land). */
  readonly notes: readonly string[];
  /** The register key found not linearizable, for the timeline to highlight. */
  readonly key?: string;
}

/** Violations listed per checker are capped; the count stays exact. */
const listedMax = 20;

function capped(lines: string[], total: number): string[] {
  return total > lines.length ? [...lines, `... and ${total - lines.length} more`] : lines;
}

export function checkRegisters(history: History, stepsMax = 2_000_000): Verdict {
  if (history.registers.length === 0) return { checker: 'register', violations: [], notes: [] };
  const result = checkLinearizable(history.registers, { stepsMax });
  switch (result.verdict) {
    case 'linearizable':
      return {
        checker: 'register',
        violations: [],
        notes: [`${result.keys} keys linearizable (${result.steps} search steps)`],
      };
    case 'violation':
      return {
        checker: 'register',
        violations: [`key ${result.key} is not linearizable:\n${result.explanation}`],
        notes: [],
        key: result.key,
      };
    case 'inconclusive':
      // Not a violation, but not a pass either: reported, never hidden.
      return { checker: 'register', violations: [], notes: [`inconclusive: ${result.reason}`] };
  }
}

export function checkSet(adds: readonly SetAdd[], reads: readonly SetRead[]): Verdict {
  const violations: string[] = [];
  const notes: string[] = [];
  let count = 0;
  const keys = new Set([...adds.map((a) => a.key), ...reads.map((r) => r.key)]);
  for (const key of keys) {
    const keyAdds = adds.filter((a) => a.key === key);
    const keyReads = reads.filter((r) => r.key === key);
    if (keyAdds.length > 0 && keyReads.length === 0) {
      count++;
      violations.push(`set ${key}: no final read (the cluster never answered one)`);
      continue;
    }
    const byElement = new Map(keyAdds.map((a) => [a.element, a]));
    for (const read of keyReads) {
      const members = new Set(read.members);
      for (const a of keyAdds) {
        if (a.status === 'ok' && !members.has(a.element)) {
          if (++count <= listedMax)
            violations.push(
              `set ${key}: acknowledged add of ${a.element} (client ${a.client}, ` +
                `${fmt(a.invoked)}–${fmt(a.returned)}) is missing from ${read.node}'s final read`,
            );
        }
      }
      for (const m of members) {
        const add = byElement.get(m);
        if (add === undefined || add.status === 'fail') {
          if (++count <= listedMax)
            violations.push(
              `set ${key}: ${read.node}'s final read holds ${m}, which was ` +
                (add === undefined ? 'never added' : 'refused (TRYAGAIN: not applied)'),
            );
        }
      }
    }
    const first = keyReads[0];
    for (const read of keyReads.slice(1)) {
      if (first !== undefined && !sameMembers(first.members, read.members)) {
        count++;
        violations.push(
          `set ${key}: ${first.node} and ${read.node} read different members ` +
            `(${first.members.length} vs ${read.members.length})`,
        );
      }
    }
    const final = new Set(first?.members ?? []);
    const unknown = keyAdds.filter((a) => a.status === 'unknown');
    const landed = unknown.filter((a) => final.has(a.element)).length;
    notes.push(
      `set ${key}: ${keyAdds.filter((a) => a.status === 'ok').length} acknowledged adds, ` +
        `${unknown.length} unknown (${landed} of them landed), final size ${final.size}`,
    );
  }
  return { checker: 'set', violations: capped(violations, count), notes };
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((m) => set.has(m));
}

export function checkBank(ops: readonly BankOp[], accounts: number, total: number): Verdict {
  const violations: string[] = [];
  let count = 0;
  let reads = 0;
  const finals: { source: string; balances: readonly (string | null)[] }[] = [];
  for (const op of ops) {
    if (op.kind !== 'read') continue;
    reads++;
    if (op.source !== 'client') finals.push(op);
    const problem = readProblem(op.balances, accounts, total);
    if (problem !== null && ++count <= listedMax) {
      violations.push(
        `bank read by ${op.source === 'client' ? `client ${op.client}` : op.source} at ` +
          `${fmt(op.invoked)}–${fmt(op.returned)}: ${problem} (balances ${JSON.stringify(op.balances)})`,
      );
    }
  }
  const first = finals[0];
  for (const f of finals.slice(1)) {
    if (first !== undefined && JSON.stringify(f.balances) !== JSON.stringify(first.balances)) {
      count++;
      violations.push(
        `bank: final reads differ: ${first.source} ${JSON.stringify(first.balances)} vs ` +
          `${f.source} ${JSON.stringify(f.balances)}`,
      );
    }
  }
  const transfers = ops.filter((o) => o.kind === 'transfer');
  const notes = [
    `bank: ${reads} reads, ${transfers.filter((t) => t.status === 'ok').length} acknowledged transfers, ` +
      `${transfers.filter((t) => t.status === 'unknown').length} unknown`,
  ];
  return { checker: 'bank', violations: capped(violations, count), notes };
}

/** What is impossible about one read of every balance, or null. */
export function readProblem(
  balances: readonly (string | null)[],
  accounts: number,
  total: number,
): string | null {
  if (balances.length !== accounts) return `read ${balances.length} accounts, not ${accounts}`;
  let sum = 0;
  for (const [i, b] of balances.entries()) {
    if (b === null) return `account ${i} is missing`;
    const value = Number(b);
    if (!Number.isSafeInteger(value)) return `account ${i} holds '${b}', not an integer`;
    if (value < 0) return `account ${i} is negative (${value})`;
    sum += value;
  }
  return sum === total ? null : `the total is ${sum}, not ${total}`;
}

function fmt(ms: number | null): string {
  return ms === null ? '?' : `${(ms / 1000).toFixed(3)}s`;
}

export function checkAll(history: History): Verdict[] {
  return [
    checkRegisters(history),
    checkSet(history.setAdds, history.setReads),
    checkBank(history.bank, history.bankAccounts, history.bankTotal),
  ];
}
