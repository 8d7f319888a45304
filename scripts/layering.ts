/**
 * Layering rules from DESIGN.md §2: imports only point down, and the
 * consensus core stays pure (no Node, no clock, no ambient randomness).
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';

export interface Violation {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

/** Which top-level folders of src/ each folder may import from. */
const allowedImports: Readonly<Record<string, readonly string[]>> = {
  raft: ['raft'],
  storage: ['storage', 'raft'],
  transport: ['transport', 'raft'],
  kv: ['kv', 'raft'],
  files: ['files', 'raft'],
  node: ['node', 'raft', 'storage', 'transport', 'kv', 'files'],
  resp: ['resp', 'node', 'storage', 'kv', 'raft'],
  http: ['http', 'node', 'storage', 'kv', 'raft'],
  cli: ['cli', 'http', 'resp', 'node', 'storage', 'kv', 'raft'],
};

/** Folders whose code must not reach the outside world at all. */
const pureFolders = new Set(['raft']);

const forbiddenGlobals: readonly { pattern: RegExp; what: string }[] = [
  { pattern: /\bDate\b/, what: 'Date (time enters the core only through tick())' },
  { pattern: /\bMath\.random\b/, what: 'Math.random (use the seeded PRNG from the config)' },
  { pattern: /\bperformance\b/, what: 'performance (time enters the core only through tick())' },
  { pattern: /\bset(Timeout|Interval|Immediate)\b/, what: 'timers (the runtime drives tick())' },
  { pattern: /\bqueueMicrotask\b/, what: 'queueMicrotask (the core is synchronous)' },
  { pattern: /\bprocess\b/, what: 'process (no I/O in the core)' },
  { pattern: /\brequire\s*\(/, what: 'require() (ESM imports only)' },
  { pattern: /\bcrypto\b/, what: 'crypto (randomness comes from the seeded PRNG)' },
];

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

const importPattern =
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Strips comments and string contents so rules see only code. */
function codeOnly(line: string): string {
  return line
    .replace(/\/\/.*$/, '')
    .replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`/g, "''");
}

export function checkFile(srcRoot: string, file: string, text: string): Violation[] {
  const rel = relative(srcRoot, file);
  const folder = rel.split(sep)[0] ?? '';
  const isTest = rel.endsWith('.test.ts');
  const allowed = allowedImports[folder];
  const violations: Violation[] = [];
  const lines = text.split('\n');
  let inBlockComment = false;
  for (const [i, raw] of lines.entries()) {
    const lineNo = i + 1;
    for (const match of raw.matchAll(importPattern)) {
      const spec = match[1] ?? match[2] ?? match[3] ?? '';
      const problem = checkImport(srcRoot, file, folder, spec, allowed, isTest);
      if (problem !== null) violations.push({ file: rel, line: lineNo, message: problem });
    }
    if (!pureFolders.has(folder) || isTest) continue;
    let line = raw;
    if (inBlockComment) {
      const end = line.indexOf('*/');
      if (end < 0) continue;
      line = line.slice(end + 2);
      inBlockComment = false;
    }
    const start = line.indexOf('/*');
    if (start >= 0) {
      const end = line.indexOf('*/', start + 2);
      if (end < 0) inBlockComment = true;
      line = line.slice(0, start) + (end >= 0 ? line.slice(end + 2) : '');
    }
    const code = codeOnly(line);
    if (/^\s*\*/.test(code)) continue;
    for (const { pattern, what } of forbiddenGlobals) {
      if (pattern.test(code)) {
        violations.push({
          file: rel,
          line: lineNo,
          message: `src/${folder}/ must not use ${what}`,
        });
      }
    }
  }
  return violations;
}

function checkImport(
  srcRoot: string,
  file: string,
  folder: string,
  spec: string,
  allowed: readonly string[] | undefined,
  isTest: boolean,
): string | null {
  if (spec.startsWith('.')) {
    const target = relative(srcRoot, resolve(dirname(file), spec));
    const targetFolder = target.split(sep)[0] ?? '';
    if (target.startsWith('..')) {
      return isTest ? null : `src/${folder}/ must not import from outside src/ ('${spec}')`;
    }
    if (allowed !== undefined && !allowed.includes(targetFolder)) {
      return `src/${folder}/ must not import from src/${targetFolder}/ ('${spec}'); allowed: ${allowed.join(', ')}`;
    }
    return null;
  }
  if (!pureFolders.has(folder)) return null;
  if (isTest && !builtins.has(spec)) return null;
  if (isTest) return null;
  if (builtins.has(spec))
    return `src/${folder}/ must not import the Node module '${spec}' (the core has no I/O)`;
  return `src/${folder}/ must not import the package '${spec}' (the core has no dependencies)`;
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listTs(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

export function checkTree(srcRoot: string): Violation[] {
  return listTs(srcRoot).flatMap((file) => checkFile(srcRoot, file, readFileSync(file, 'utf8')));
}
