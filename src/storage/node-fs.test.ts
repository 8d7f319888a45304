import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsError } from './fs.js';
import { lockFileName, NodeFileSystem, toFsError } from './node-fs.js';

const fs = new NodeFileSystem();
const bytes = (s: string) => Buffer.from(s, 'utf8');
let dir = '';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tandem-node-fs-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fsErrorOf(promise: Promise<unknown>): Promise<FsError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FsError) return error;
    throw error;
  }
  throw new Error('expected an FsError');
}

describe('NodeFileSystem files', () => {
  it('creates exclusively, appends and reads back', async () => {
    const path = join(dir, 'a.log');
    const file = await fs.open(path, 'create');
    await file.append(bytes('hello '));
    await file.append(bytes('world'));
    await file.datasync();
    expect((await file.read(0, 11)).toString()).toBe('hello world');
    expect((await file.read(6, 100)).toString()).toBe('world'); // short only at the end
    expect(await file.size()).toBe(11);
    await file.close();
    const again = await fsErrorOf(fs.open(path, 'create'));
    expect(again.code).toBe('EEXIST');
    expect(again.operation).toBe('open');
  });

  it('writes durably with one O_DSYNC pwrite when opened with syncWrites', async () => {
    const path = join(dir, 'wal.log');
    const plain = await fs.open(join(dir, 'plain.log'), 'create');
    const synced = await fs.open(path, 'create', { syncWrites: true });
    await plain.writeDurable(0, bytes('abc'));
    await synced.writeDurable(0, bytes('hello'));
    await synced.writeDurable(5, bytes(' world'));
    expect((await synced.read(0, 100)).toString()).toBe('hello world');
    expect((await plain.read(0, 100)).toString()).toBe('abc');
    if (process.platform === 'linux') {
      // The open flags as the kernel holds them (octal in /proc/self/fdinfo).
      const flagsOf = async (target: string): Promise<number> => {
        for (const fd of await readdir('/proc/self/fd')) {
          const link = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
          if (link !== target) continue;
          const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8');
          return Number.parseInt(/flags:\s+([0-7]+)/.exec(info)?.[1] ?? '', 8);
        }
        throw new Error(`no descriptor open on ${target}`);
      };
      expect(await flagsOf(path)).toSatisfy((f: number) => (f & constants.O_DSYNC) !== 0);
      expect(await flagsOf(join(dir, 'plain.log'))).toSatisfy(
        (f: number) => (f & constants.O_DSYNC) === 0,
      );
    }
    await synced.close();
    await plain.close();
  });

  it('lands concurrent appends in call order without gaps', async () => {
    const file = await fs.open(join(dir, 'b.log'), 'append');
    const parts = Array.from({ length: 50 }, (_, i) => bytes(`${String(i).padStart(3, '0')};`));
    await Promise.all(parts.map((p) => file.append(p)));
    expect((await file.read(0, 1000)).toString()).toBe(parts.map(String).join(''));
    await file.close();
  });

  it('appends after existing content when reopened', async () => {
    const path = join(dir, 'c.log');
    await writeFile(path, 'abc');
    const file = await fs.open(path, 'append');
    await file.append(bytes('def'));
    await file.close();
    expect(await readFile(path, 'utf8')).toBe('abcdef');
  });

  it('writes at a position (pwrite) and truncates', async () => {
    const file = await fs.open(join(dir, 'd.log'), 'create');
    await file.write(0, bytes('0123456789'));
    await file.write(2, bytes('xy'));
    await file.truncate(6);
    await file.sync();
    expect(await file.size()).toBe(6);
    expect((await file.read(0, 10)).toString()).toBe('01xy45');
    await file.append(bytes('!'));
    expect((await file.read(0, 10)).toString()).toBe('01xy45!');
    await file.close();
  });

  it('opens for reading only an existing file, and reports ENOENT', async () => {
    const error = await fsErrorOf(fs.open(join(dir, 'missing'), 'read'));
    expect(error.code).toBe('ENOENT');
    expect(error.message).toContain('missing');
    expect(await fsErrorOf(fs.open(join(dir, 'missing'), 'write'))).toMatchObject({
      code: 'ENOENT',
    });
  });

  it('renames, syncs the directory, lists, unlinks', async () => {
    const temp = join(dir, 'snap.tmp');
    const file = await fs.open(temp, 'create');
    await file.append(bytes('snapshot'));
    await file.sync();
    await file.close();
    await fs.rename(temp, join(dir, 'snap'));
    await fs.syncDir(dir);
    await fs.mkdir(join(dir, 'sub', 'deeper'));
    await fs.mkdir(join(dir, 'sub', 'deeper')); // already there: fine
    expect(await fs.readdir(dir)).toEqual(['snap', 'sub']);
    expect(await fs.exists(temp)).toBe(false);
    expect(await fs.exists(join(dir, 'snap'))).toBe(true);
    await fs.unlink(join(dir, 'snap'));
    await fs.syncDir(dir);
    expect(await fs.readdir(dir)).toEqual(['sub']);
    expect((await fsErrorOf(fs.unlink(join(dir, 'snap')))).code).toBe('ENOENT');
  });

  it('maps Node error codes to the typed union', () => {
    const eio = Object.assign(new Error('i/o error'), { code: 'EIO' });
    expect(toFsError(eio, 'datasync', '/x')).toMatchObject({ code: 'EIO', operation: 'datasync' });
    const odd = Object.assign(new Error('odd'), { code: 'EXDEV' });
    const mapped = toFsError(odd, 'rename', '/x');
    expect(mapped.code).toBe('EUNKNOWN');
    expect(mapped.message).toContain('odd');
  });
});

describe('NodeFileSystem data directory lock', () => {
  it('refuses a second holder with a message naming the holder', async () => {
    const lock = await fs.lock(dir);
    const error = await fsErrorOf(fs.lock(dir));
    expect(error.code).toBe('ELOCKED');
    expect(error.message).toContain(`pid ${process.pid}`);
    expect(error.message).toContain(dir);
    expect(await readFile(join(dir, lockFileName), 'utf8')).toContain(`pid=${process.pid}`);
    await lock.release();
    expect(await fs.exists(join(dir, lockFileName))).toBe(false);
    const again = await fs.lock(dir);
    await again.release();
    await again.release(); // idempotent
  });

  it('takes over a lock file left by a dead process of this host', async () => {
    const mine = await readLockOwnerFields();
    await writeFile(join(dir, lockFileName), mine.replace(/pid=\d+/, 'pid=999999999'));
    const lock = await fs.lock(dir);
    expect(await readFile(join(dir, lockFileName), 'utf8')).toContain(`pid=${process.pid}`);
    await lock.release();
  });

  it('refuses a lock file from another host, saying what to do if it is stale', async () => {
    await writeFile(join(dir, lockFileName), 'pid=4242\nhost=elsewhere\nboot=x\nnetns=y\n');
    const error = await fsErrorOf(fs.lock(dir));
    expect(error.code).toBe('ELOCKED');
    expect(error.message).toContain('pid 4242 on host elsewhere');
    expect(error.message).toContain(`delete ${join(dir, lockFileName)}`);
  });

  it('is held by a live child process and freed when it is killed', async () => {
    const child = spawnLockHolder(dir);
    try {
      await child.locked;
      const error = await fsErrorOf(fs.lock(dir));
      expect(error.code).toBe('ELOCKED');
      expect(error.message).toContain(`pid ${child.pid}`);
    } finally {
      child.kill();
    }
    await child.exited;
    const lock = await fs.lock(dir); // the kernel freed the socket; the file is stale
    await lock.release();
  });

  it('reports a missing directory as ENOENT', async () => {
    expect((await fsErrorOf(fs.lock(join(dir, 'nope')))).code).toBe('ENOENT');
  });
});

/** What this process writes into a LOCK file, read by locking a scratch directory. */
async function readLockOwnerFields(): Promise<string> {
  const scratch = join(dir, 'scratch');
  await fs.mkdir(scratch);
  const lock = await fs.lock(scratch);
  const text = await readFile(join(scratch, lockFileName), 'utf8');
  await lock.release();
  expect(text).toContain(`host=${hostname()}`);
  return text;
}

function spawnLockHolder(lockDir: string) {
  const moduleUrl = new URL('./node-fs.ts', import.meta.url).href;
  const script = [
    `const { NodeFileSystem } = await import(${JSON.stringify(moduleUrl)});`,
    `await new NodeFileSystem().lock(${JSON.stringify(lockDir)});`,
    `process.stdout.write('locked\\n');`,
    'setInterval(() => {}, 1000);',
  ].join('\n');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '--eval', script],
    { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`lock holder exited (${code}): ${stderr}`)));
  });
  return {
    pid: child.pid,
    locked,
    exited,
    kill: () => child.kill('SIGKILL'),
  };
}
