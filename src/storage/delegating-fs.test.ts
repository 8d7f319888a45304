import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { overrideFile } from './delegating-fs.js';
import { FsError, type FsFile } from './fs.js';
import { NodeFileSystem } from './node-fs.js';

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tandem-delegating-fs-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The file with its calls recorded by name, each still done. */
function recorded(file: FsFile, calls: string[]): FsFile {
  return overrideFile(file, {
    write: (at, data) => {
      calls.push('write');
      return file.write(at, data);
    },
    datasync: () => {
      calls.push('datasync');
      return file.datasync();
    },
    writeDurable: (at, data) => {
      calls.push('writeDurable');
      return file.writeDurable(at, data);
    },
  });
}

describe('overrideFile', () => {
  it('makes writeDurable the replaced write and datasync when either is replaced', async () => {
    const file = await new NodeFileSystem().open(join(dir, 'a'), 'create', { syncWrites: true });
    const failing = overrideFile(file, {
      datasync: () => Promise.reject(new FsError('EIO', 'datasync', file.path, 'EIO')),
    });
    await expect(failing.writeDurable(0, Buffer.from('x'))).rejects.toThrow(FsError);
    const calls: string[] = [];
    const inner = recorded(file, calls);
    await overrideFile(inner, { datasync: () => inner.datasync() }).writeDurable(
      0,
      Buffer.from('y'),
    );
    expect(calls).toEqual(['write', 'datasync']);
    await file.close();
  });

  it('forwards writeDurable when neither write nor datasync is replaced', async () => {
    const file = await new NodeFileSystem().open(join(dir, 'b'), 'create', { syncWrites: true });
    const calls: string[] = [];
    const outer = overrideFile(recorded(file, calls), { sync: () => Promise.resolve() });
    await outer.writeDurable(0, Buffer.from('abc'));
    expect(calls).toEqual(['writeDurable']);
    expect((await file.read(0, 10)).toString()).toBe('abc');
    await file.close();
  });
});
