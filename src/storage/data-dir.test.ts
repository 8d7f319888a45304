import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DataDir, DataDirError, formatFileName, incarnationFileName } from './data-dir.js';
import { FsError } from './fs.js';
import { NodeFileSystem } from './node-fs.js';

const fs = new NodeFileSystem();
let root = '';

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-data-dir-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('DataDir over NodeFileSystem', () => {
  it('initializes a fresh directory, creating it if missing', async () => {
    const path = join(root, 'node1', 'data');
    const dataDir = await DataDir.open(fs, path);
    expect(dataDir.created).toBe(true);
    expect(dataDir.walDir).toBe(join(path, 'wal'));
    expect(dataDir.snapDir).toBe(join(path, 'snap'));
    expect(await readFile(join(path, formatFileName), 'utf8')).toBe('tandem-data 1\n');
    const names = await readdir(path);
    expect(names).toEqual(expect.arrayContaining(['FORMAT', 'snap', 'wal']));
    expect(names).not.toContain('FORMAT.tmp');
    await dataDir.close();

    const again = await DataDir.open(fs, path);
    expect(again.created).toBe(false);
    await again.close();
    await again.close(); // idempotent
  });

  it('refuses a second opener while the lock is held, and allows one after close', async () => {
    const path = join(root, 'data');
    const first = await DataDir.open(fs, path);
    const error = await DataDir.open(fs, path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FsError);
    expect((error as FsError).code).toBe('ELOCKED');
    expect((error as Error).message).toContain(path);
    await first.close();
    const second = await DataDir.open(fs, path);
    await second.close();
  });

  it('refuses a FORMAT of another version with a clear message, and releases the lock', async () => {
    const path = join(root, 'data');
    await mkdir(path);
    await writeFile(join(path, formatFileName), 'tandem-data 7\n');
    const error = await DataDir.open(fs, path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataDirError);
    expect((error as Error).message).toContain(
      `data directory ${path} was written by a newer or other Tandem format 7`,
    );
    // The failed open did not keep the lock.
    await writeFile(join(path, formatFileName), 'tandem-data 1\n');
    const ok = await DataDir.open(fs, path);
    await ok.close();
  });

  it('refuses a damaged FORMAT file', async () => {
    const path = join(root, 'data');
    await mkdir(path);
    await writeFile(join(path, formatFileName), 'tandem-dat\u0000 1\n');
    await expect(DataDir.open(fs, path)).rejects.toThrow(/damaged or foreign FORMAT file/);
  });

  it('refuses a non-empty directory without FORMAT', async () => {
    const path = join(root, 'data');
    await mkdir(path);
    await writeFile(join(path, 'important.txt'), 'not ours');
    await expect(DataDir.open(fs, path)).rejects.toThrow(
      /is not empty \(important\.txt\) but has no FORMAT file/,
    );
    expect(await readdir(path)).toEqual(['important.txt']);
  });

  it('finishes an initialization cut short by a crash (a leftover FORMAT.tmp)', async () => {
    const path = join(root, 'data');
    await mkdir(path);
    await writeFile(join(path, `${formatFileName}.tmp`), 'tand');
    const dataDir = await DataDir.open(fs, path);
    expect(dataDir.created).toBe(true);
    expect(await readFile(join(path, formatFileName), 'utf8')).toBe('tandem-data 1\n');
    await dataDir.close();
  });

  it('gives each new directory its own incarnation, stable across opens', async () => {
    const a = await DataDir.open(fs, join(root, 'a'));
    const b = await DataDir.open(fs, join(root, 'b'));
    expect(a.incarnation).toMatch(/^[0-9a-f]{32}$/);
    expect(b.incarnation).not.toBe(a.incarnation);
    await a.close();
    await b.close();
    expect(await readFile(join(root, 'a', incarnationFileName), 'utf8')).toBe(`${a.incarnation}\n`);
    const again = await DataDir.open(fs, join(root, 'a'));
    expect(again.incarnation).toBe(a.incarnation);
    await again.close();
    const fixed = await DataDir.open(fs, join(root, 'c'), {
      newIncarnation: () => 'ab'.repeat(16),
    });
    expect(fixed.incarnation).toBe('ab'.repeat(16));
    await fixed.close();
  });

  it('gives a directory from before incarnations one, and refuses a damaged one', async () => {
    const path = join(root, 'old');
    const first = await DataDir.open(fs, path);
    await first.close();
    await rm(join(path, incarnationFileName));
    const upgraded = await DataDir.open(fs, path);
    expect(upgraded.incarnation).toMatch(/^[0-9a-f]{32}$/);
    await upgraded.close();
    await writeFile(join(path, incarnationFileName), 'not hex\n');
    const error = await DataDir.open(fs, path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataDirError);
    expect((error as Error).message).toMatch(/damaged INCARNATION file .* rejoin as a new member/);
  });
});
