/**
 * The chaos suite's verdicts on a history (history.ts):
 * - registers: linearizable per key, by the simulator's checker (sim/checker);
 * - set: every acknowledged add is in the final read of every node, nothing
 *   appears that was never added or was refused (TRYAGAIN promises "not
 *   applied"), and all nodes read the same members;
 * - bank: every read (during the run and the final ones) sums to the total
 *   and holds no negative balance (transfers check the balance under WATCH,
 *   so a negative one means a lost WATCH), and the final reads agree.
 * - files: every read returned the whole content of a version put to that
 *   path (sha256 and length of the body, and the headers agree with it),
 *   never a refused one, never a 404 after an acknowledged put, never a
 *   version older than an acknowledged put that completed before the read
 *   began; every node answered a final read of every path, all the same.
 * Each violation is a line a reader can act on.
 */

import { checkLinearizable } from '../sim/checker/linearizability.js';
import type { BankOp, FileOp, History, SetAdd, SetRead } from './history.js';

export interface Verdict {
  readonly checker: 'register' | 'set' | 'bank' | 'files';
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
    checkFiles(history.files),
  ];
}

type FilePut = Extract<FileOp, { kind: 'put' }>;
type FileRead = Extract<FileOp, { kind: 'read' }>;

export function checkFiles(ops: readonly FileOp[]): Verdict {
  if (ops.length === 0) return { checker: 'files', violations: [], notes: [] };
  const violations: string[] = [];
  let count = 0;
  const report = (line: string): void => {
    if (++count <= listedMax) violations.push(line);
  };
  const puts = new Map<string, FilePut[]>();
  for (const op of ops) {
    if (op.kind === 'put') puts.set(op.path, [...(puts.get(op.path) ?? []), op]);
  }
  const reads = ops.filter((o): o is FileRead => o.kind === 'read');
  for (const read of reads) {
    if (read.status !== 'ok') {
      if (read.source === 'final') {
        report(`${read.node} never answered a final read of ${read.path}`);
      }
      continue;
    }
    const problem = fileReadProblem(read, puts.get(read.path) ?? []);
    if (problem !== null) {
      report(
        `${read.source === 'final' ? 'final read' : `client ${read.client}'s read`} of ` +
          `${read.path} on ${read.node} at ${fmt(read.invoked)}–${fmt(read.returned)}: ${problem}`,
      );
    }
  }
  for (const path of new Set(reads.map((r) => r.path))) {
    const finals = reads.filter(
      (r) => r.path === path && r.source === 'final' && r.status === 'ok',
    );
    const seen = new Set(finals.map((r) => r.found?.sha256 ?? '404'));
    if (seen.size > 1) {
      count++;
      violations.push(
        `final reads of ${path} differ: ${finals.map((r) => `${r.node} ${r.found?.sha256.slice(0, 12) ?? '404'}`).join(', ')}`,
      );
    }
  }
  const allPuts = ops.filter((o): o is FilePut => o.kind === 'put');
  const clientReads = reads.filter((r) => r.source === 'client');
  const notes = [
    `${allPuts.length} puts (${allPuts.filter((p) => p.status === 'ok').length} acknowledged, ` +
      `${allPuts.filter((p) => p.status === 'unknown').length} unknown, ` +
      `${allPuts.filter((p) => p.status === 'fail').length} refused), ` +
      `${clientReads.filter((r) => r.status === 'ok').length} reads answered ` +
      `(${clientReads.filter((r) => r.status === 'ok' && r.found === null).length} of them 404), ` +
      `${clientReads.filter((r) => r.status !== 'ok').length} unanswered, ` +
      `${reads.filter((r) => r.source === 'final').length} final reads, ` +
      `${allPuts.reduce((n, p) => n + (p.status === 'ok' ? p.size : 0), 0)} bytes acknowledged`,
  ];
  return { checker: 'files', violations: capped(violations, count), notes };
}

/**
 * What is impossible about one answered read of a file, given every put to
 * its path, or null. A put that ended unknown may have taken effect at any
 * time after its invocation; one refused (`fail`) never did.
 */
export function fileReadProblem(read: FileRead, puts: readonly FilePut[]): string | null {
  // Acknowledged puts that completed before this read began: the read must see one of them or later.
  const before = puts.filter((p) => p.status === 'ok' && (p.returned ?? Infinity) < read.invoked);
  const found = read.found;
  if (found === null) {
    const last = before[before.length - 1];
    return last === undefined
      ? null
      : `404, but the put of version ${last.version} was acknowledged at ${fmt(last.returned)} (no deletes in this workload)`;
  }
  const described = `${found.size} bytes, sha256 ${found.sha256.slice(0, 16)}`;
  if (found.headerSha256 !== null && found.headerSha256 !== found.sha256) {
    return `the body (${described}) does not match its X-Checksum-Sha256 ${found.headerSha256.slice(0, 16)}: torn or corrupt`;
  }
  if (found.headerSize !== null && found.headerSize !== found.size) {
    return `the body (${described}) is not the Content-Length ${found.headerSize}: torn`;
  }
  const same = puts.filter((p) => p.sha256 === found.sha256 && p.size === found.size);
  if (same.length === 0) {
    return `the body (${described}) is no version ever put to this path: torn, mixed or corrupt`;
  }
  const possible = same.filter(
    (p) => p.status !== 'fail' && p.invoked < (read.returned ?? Infinity),
  );
  if (possible.length === 0) {
    const p = same[0] as FilePut;
    return p.status === 'fail'
      ? `it returned version ${p.version}, whose put was refused (never applied)`
      : `it returned version ${p.version}, whose put began only after the read ended`;
  }
  // Stale: version V completed before an acknowledged put Q began, and Q completed before the read began.
  const fresh = possible.some(
    (v) =>
      v.status !== 'ok' || !before.some((q) => q !== v && (v.returned ?? Infinity) < q.invoked),
  );
  if (!fresh) {
    const v = possible[0] as FilePut;
    const q = before.find((p) => p !== v && (v.returned ?? Infinity) < p.invoked) as FilePut;
    return (
      `stale: it returned version ${v.version} (put ${fmt(v.invoked)}–${fmt(v.returned)}), ` +
      `overwritten by the acknowledged put of version ${q.version} (${fmt(q.invoked)}–${fmt(q.returned)}) before the read began`
    );
  }
  return null;
}
