import { describe, expect, it } from 'vitest';
import { normalizePath } from './file-path.js';

describe('normalizePath', () => {
  it('accepts and normalizes good paths', () => {
    expect(normalizePath('a/b.txt')).toEqual({ ok: true, path: 'a/b.txt' });
    expect(normalizePath('/lead/slash')).toEqual({ ok: true, path: 'lead/slash' });
    // NFD 'é' becomes NFC.
    expect(normalizePath('cafe\u0301')).toEqual({ ok: true, path: 'caf\u00e9' });
    expect(normalizePath('日本/ファイル')).toEqual({ ok: true, path: '日本/ファイル' });
  });

  it.each([
    ['', 'empty'],
    ['a/../b', "'..'"],
    ['..', "'..'"],
    ['./a', "'.'"],
    ['a//b', 'empty segment'],
    ['a/', 'empty segment'],
    ['a\u0000b', 'control'],
    ['a\\b', 'backslash'],
    ['x\ud800', 'UTF-8'],
    ['a'.repeat(256), 'segment'],
    [`${'a/'.repeat(600)}a`, 'at most 1024'],
  ])('refuses %j (%s)', (raw, why) => {
    const result = normalizePath(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(why);
  });
});
