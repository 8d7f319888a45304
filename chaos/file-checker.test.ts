import { describe, expect, it } from 'vitest';
import { checkFiles } from './checkers.js';
import type { FileOp } from './history.js';

const sha = (c: string): string => c.repeat(64);
const put = (
  version: number,
  t0: number,
  t1: number | null,
  status: 'ok' | 'unknown' | 'fail' = 'ok',
): FileOp => ({
  kind: 'put',
  client: 1,
  path: 'p/a',
  version,
  size: 1000 + version,
  sha256: sha(String(version)),
  node: 'n1',
  invoked: t0,
  returned: t1,
  status,
});
const read = (
  t0: number,
  t1: number,
  found: { size: number; sha256: string; headerSha256?: string; headerSize?: number } | null,
  source: 'client' | 'final' = 'client',
): FileOp => ({
  kind: 'read',
  client: 2,
  path: 'p/a',
  node: 'n2',
  invoked: t0,
  returned: t1,
  status: 'ok',
  found:
    found === null
      ? null
      : {
          size: found.size,
          sha256: found.sha256,
          headerSha256: found.headerSha256 ?? found.sha256,
          headerSize: found.headerSize ?? found.size,
        },
  source,
});
const v = (n: number) => ({ size: 1000 + n, sha256: sha(String(n)) });

describe('files checker', () => {
  it('passes puts read back whole, a 404 before any acknowledgement, and an unknown put seen later', () => {
    const verdict = checkFiles([
      read(0, 1, null),
      put(1, 2, 3),
      read(4, 5, v(1)),
      put(2, 6, null, 'unknown'),
      read(7, 8, v(2)),
      read(9, 10, v(2), 'final'),
    ]);
    expect(verdict.violations).toEqual([]);
    expect(verdict.notes[0]).toContain('2 puts (1 acknowledged, 1 unknown');
  });

  it('accepts a read concurrent with a put returning either version', () => {
    const ops = [put(1, 0, 1), put(2, 2, 6), read(3, 4, v(1)), read(3, 5, v(2))];
    expect(checkFiles(ops).violations).toEqual([]);
  });

  it('catches a torn body (shorter than the version, matching no version)', () => {
    const verdict = checkFiles([
      put(1, 0, 1),
      read(2, 3, { size: 512, sha256: sha('e'), headerSha256: sha('1'), headerSize: 1001 }),
    ]);
    expect(verdict.violations).toHaveLength(1);
    expect(verdict.violations[0]).toContain('torn');
  });

  it('catches a body whose sha256 is no version ever written (same length)', () => {
    const verdict = checkFiles([put(1, 0, 1), read(2, 3, { size: 1001, sha256: sha('f') })]);
    expect(verdict.violations).toHaveLength(1);
    expect(verdict.violations[0]).toContain('no version ever put');
  });

  it('catches a lost acknowledged file (404 after the put was acknowledged)', () => {
    const verdict = checkFiles([put(1, 0, 1), read(5, 6, null, 'final')]);
    expect(verdict.violations).toHaveLength(1);
    expect(verdict.violations[0]).toContain('404, but the put of version 1 was acknowledged');
  });

  it('catches a stale read and a refused version read back', () => {
    const stale = checkFiles([put(1, 0, 1), put(2, 2, 3), read(4, 5, v(1))]);
    expect(stale.violations).toHaveLength(1);
    expect(stale.violations[0]).toContain('stale: it returned version 1');
    const refused = checkFiles([put(1, 0, 1, 'fail'), read(2, 3, v(1))]);
    expect(refused.violations[0]).toContain('refused');
  });

  it('catches nodes that disagree at the end, and a node that never answered', () => {
    const unanswered: FileOp = {
      kind: 'read',
      client: -1,
      path: 'p/a',
      node: 'n3',
      invoked: 9,
      returned: null,
      status: 'unknown',
      found: null,
      source: 'final',
    };
    const verdict = checkFiles([
      put(1, 0, 1),
      put(2, 2, null, 'unknown'),
      read(5, 6, v(1), 'final'),
      read(5, 6, v(2), 'final'),
      unanswered,
    ]);
    expect(verdict.violations.some((l) => l.includes('final reads of p/a differ'))).toBe(true);
    expect(verdict.violations.some((l) => l.includes('n3 never answered'))).toBe(true);
  });
});
