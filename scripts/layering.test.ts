import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkFile, checkTree } from './layering.js';

const src = resolve('/repo/src');
const raftFile = resolve(src, 'raft', 'x.ts');

describe('layering check', () => {
  it('rejects Node modules, packages and other project folders in src/raft', () => {
    const text = [
      "import { readFileSync } from 'node:fs';",
      "import net from 'net';",
      "import pino from 'pino';",
      "import { Wal } from '../storage/wal.js';",
      "import { ok } from './ok.js';",
    ].join('\n');
    const messages = checkFile(src, raftFile, text).map((v) => v.line);
    expect(messages).toEqual([1, 2, 3, 4]);
  });

  it('rejects clocks and ambient randomness in src/raft but not in comments or strings', () => {
    const text = [
      'const t = Date.now();',
      'const r = Math.random();',
      'setTimeout(() => {}, 1);',
      '// Date.now() in a comment is fine',
      "const s = 'Math.random';",
      '/* performance',
      '   process */',
    ].join('\n');
    expect(checkFile(src, raftFile, text).map((v) => v.line)).toEqual([1, 2, 3]);
  });

  it('lets storage import raft but not kv', () => {
    const file = resolve(src, 'storage', 'wal.ts');
    const text =
      "import type { Entry } from '../raft/types.js';\nimport { Kv } from '../kv/kv.js';";
    expect(checkFile(src, file, text).map((v) => v.line)).toEqual([2]);
  });

  it('passes on the real tree', () => {
    expect(checkTree(resolve(import.meta.dirname, '..', 'src'))).toEqual([]);
  });
});
