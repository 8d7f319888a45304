import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/raft/prng.js';
import { FsError } from '../../src/storage/fs.js';
import { SimFileSystem, simSectorBytes } from './sim-fs.js';

const dir = '/data';
const path = '/data/f';

async function fresh(seed = 1): Promise<SimFileSystem> {
  const fs = new SimFileSystem({ prng: new Prng(seed) });
  await fs.mkdir(dir);
  return fs;
}

async function readAll(fs: SimFileSystem, p: string): Promise<string> {
  const file = await fs.open(p, 'read');
  const data = await file.read(0, await file.size());
  await file.close();
  return data.toString();
}

async function fsErrorCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FsError) return error.code;
    throw error;
  }
  throw new Error('expected an FsError');
}

/** A durable file holding `text`: written, synced, its name synced. */
async function durableFile(fs: SimFileSystem, p: string, text: string): Promise<void> {
  const file = await fs.open(p, 'create');
  await file.write(0, Buffer.from(text));
  await file.datasync();
  await file.close();
  await fs.syncDir(dir);
}

describe('SimFileSystem basics', () => {
  it('reads back what was written, appends in call order, and truncates', async () => {
    const fs = await fresh();
    const file = await fs.open(path, 'create');
    await Promise.all([file.append(Buffer.from('ab')), file.append(Buffer.from('cd'))]);
    await file.write(1, Buffer.from('X'));
    expect((await file.read(0, 100)).toString()).toBe('aXcd');
    await file.truncate(2);
    expect(await file.size()).toBe(2);
    await file.write(4, Buffer.from('z'));
    expect([...(await file.read(0, 5))]).toEqual([97, 88, 0, 0, 122]);
  });

  it('follows the open modes and lists directories sorted', async () => {
    const fs = await fresh();
    expect(await fsErrorCode(fs.open(path, 'read'))).toBe('ENOENT');
    expect(await fsErrorCode(fs.open(path, 'write'))).toBe('ENOENT');
    expect(await fsErrorCode(fs.open('/nowhere/f', 'create'))).toBe('ENOENT');
    await (await fs.open(path, 'append')).close();
    expect(await fsErrorCode(fs.open(path, 'create'))).toBe('EEXIST');
    const readOnly = await fs.open(path, 'read');
    expect(await fsErrorCode(readOnly.write(0, Buffer.from('x')))).toBe('EUNKNOWN');
    await fs.mkdir('/data/sub/deeper');
    await (await fs.open('/data/b', 'create')).close();
    expect(await fs.readdir(dir)).toEqual(['b', 'f', 'sub']);
    expect(await fs.exists('/data/sub/deeper')).toBe(true);
    await fs.rename('/data/b', '/data/c');
    await fs.unlink(path);
    expect(await fs.readdir(dir)).toEqual(['c', 'sub']);
    expect(await fsErrorCode(fs.unlink(path))).toBe('ENOENT');
  });

  it('records mutating operations', async () => {
    const fs = await fresh();
    const file = await fs.open(path, 'create');
    await file.write(0, Buffer.from('abc'));
    await file.datasync();
    await fs.syncDir(dir);
    await file.read(0, 3);
    expect(fs.operations.map((o) => o.op)).toEqual(['create', 'write', 'datasync', 'syncDir']);
    expect(fs.operations[1]).toMatchObject({ positionBytes: 0, lengthBytes: 3 });
  });
});

describe('SimFileSystem crashes', () => {
  it('loses unsynced writes and keeps synced ones', async () => {
    const fs = await fresh();
    await durableFile(fs, path, 'synced');
    const file = await fs.open(path, 'write');
    await file.write(6, Buffer.from('-lost'));
    expect(await readAll(fs, path)).toBe('synced-lost');
    fs.crash('none');
    expect(await readAll(fs, path)).toBe('synced');
  });

  it('keeps only a prefix of the last unsynced write when it tears', async () => {
    const fs = await fresh();
    await durableFile(fs, path, 'base');
    const file = await fs.open(path, 'write');
    await file.write(4, Buffer.from('-first'));
    await file.write(10, Buffer.from('-second'));
    fs.crash((bytes) => bytes - 3);
    // The earlier unsynced write is lost, leaving zeros where it was.
    expect(await readAll(fs, path)).toBe(`base${'\0'.repeat(6)}-sec`);
  });

  it('keeps whole sectors of a torn write over old bytes, and the old bytes elsewhere', async () => {
    const fs = await fresh();
    const sector = simSectorBytes;
    await durableFile(fs, path, 'o'.repeat(4 * sector));
    const file = await fs.open(path, 'write');
    // From the middle of sector 0 to the middle of sector 3: four sectors touched.
    await file.write(sector / 2, Buffer.alloc(3 * sector, 'n'));
    fs.crash({ sectors: (i, sectors) => i !== 1 && sectors === 4 });
    const after = Buffer.from(await readAll(fs, path), 'latin1');
    const expected = Buffer.concat([
      Buffer.alloc(sector / 2, 'o'),
      Buffer.alloc(sector / 2, 'n'),
      Buffer.alloc(sector, 'o'),
      Buffer.alloc(sector + sector / 2, 'n'),
      Buffer.alloc(sector / 2, 'o'),
    ]);
    expect(after.equals(expected)).toBe(true);
  });

  it('tears by the seeded PRNG, the same way for the same seed', async () => {
    const outcomes: string[][] = [];
    for (const seed of [7, 7, 8]) {
      const fs = await fresh(seed);
      const results: string[] = [];
      for (let round = 0; round < 8; round++) {
        const p = `/data/r${round}`;
        await durableFile(fs, p, '');
        const file = await fs.open(p, 'write');
        await file.write(0, Buffer.from('0123456789abcdef'));
        fs.crash('prng');
        results.push(await readAll(fs, p));
      }
      outcomes.push(results);
      for (const r of results) expect('0123456789abcdef'.startsWith(r)).toBe(true);
    }
    expect(outcomes[0]).toEqual(outcomes[1]);
    expect(outcomes[0]).not.toEqual(outcomes[2]);
  });

  it('makes the whole content durable on sync, whatever came before', async () => {
    const fs = await fresh();
    await durableFile(fs, path, 'abcdef');
    const file = await fs.open(path, 'write');
    await file.truncate(2);
    await file.write(2, Buffer.from('XY'));
    await file.sync();
    fs.crash('all');
    expect(await readAll(fs, path)).toBe('abXY');
  });

  it('does not make a new file durable until its directory is synced', async () => {
    const fs = await fresh();
    const file = await fs.open(path, 'create');
    await file.write(0, Buffer.from('data'));
    await file.datasync();
    fs.crash('all');
    expect(await fs.exists(path)).toBe(false);

    await durableFile(fs, path, 'data');
    fs.crash('none');
    expect(await readAll(fs, path)).toBe('data');
  });

  it('does not make a rename or unlink durable until syncDir', async () => {
    const fs = await fresh();
    await durableFile(fs, '/data/old', 'old');
    await durableFile(fs, '/data/tmp', 'new');
    await fs.rename('/data/tmp', '/data/old');
    fs.crash('none');
    expect(await readAll(fs, '/data/old')).toBe('old');
    expect(await readAll(fs, '/data/tmp')).toBe('new');

    await fs.rename('/data/tmp', '/data/old');
    await fs.syncDir(dir);
    fs.crash('none');
    expect(await readAll(fs, '/data/old')).toBe('new');
    expect(await fs.exists('/data/tmp')).toBe(false);

    await fs.unlink('/data/old');
    fs.crash('none');
    expect(await fs.exists('/data/old')).toBe(true);
    await fs.unlink('/data/old');
    await fs.syncDir(dir);
    fs.crash('none');
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('keeps an in-order prefix of unsynced directory operations when asked', async () => {
    const fs = await fresh();
    await durableFile(fs, '/data/a', 'a');
    await (await fs.open('/data/b', 'create')).close();
    await fs.rename('/data/a', '/data/c');
    await fs.unlink('/data/b');
    expect(fs.unsyncedDirOps).toBe(3);
    fs.crash('none', 1);
    expect(await fs.readdir(dir)).toEqual(['a', 'b']);
    expect(fs.unsyncedDirOps).toBe(0);

    await fs.rename('/data/a', '/data/c');
    await fs.unlink('/data/b');
    fs.crash('none', 1);
    expect(await fs.readdir(dir)).toEqual(['b', 'c']);
    expect(await readAll(fs, '/data/c')).toBe('a');

    await fs.unlink('/data/b');
    await fs.syncDir(dir);
    expect(fs.unsyncedDirOps).toBe(0);
    await fs.unlink('/data/c');
    fs.crash('none', 5);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('kills handles and releases locks', async () => {
    const fs = await fresh();
    await durableFile(fs, path, 'x');
    const file = await fs.open(path, 'write');
    const lock = await fs.lock(dir);
    expect(await fsErrorCode(fs.lock(dir))).toBe('ELOCKED');
    fs.crash('none');
    expect(await fsErrorCode(file.read(0, 1))).toBe('EUNKNOWN');
    const again = await fs.lock(dir);
    await lock.release(); // stale: must not release the new holder's lock
    expect(await fsErrorCode(fs.lock(dir))).toBe('ELOCKED');
    await again.release();
    await (await fs.lock(dir)).release();
  });

  it('halts after a given number of mutations', async () => {
    const fs = await fresh();
    fs.haltAfter(2);
    const file = await fs.open(path, 'create'); // 1
    await file.write(0, Buffer.from('a')); // 2
    expect(fs.halted).toBe(true);
    expect(await fsErrorCode(file.datasync())).toBe('EUNKNOWN');
    expect(await fsErrorCode(fs.readdir(dir))).toBe('EUNKNOWN');
    expect(fs.mutationCount).toBe(2);
    fs.crash('all');
    expect(fs.halted).toBe(false);
    expect(await fs.readdir(dir)).toEqual([]);
  });
});

describe('SimFileSystem faults', () => {
  it('fails the next write with ENOSPC without writing anything', async () => {
    const fs = await fresh();
    const file = await fs.open(path, 'create');
    fs.failNext('write', 'ENOSPC');
    expect(await fsErrorCode(file.write(0, Buffer.from('abc')))).toBe('ENOSPC');
    expect(await file.size()).toBe(0);
    await file.write(0, Buffer.from('abc'));
    expect(await file.size()).toBe(3);
  });

  it('fails the next datasync with EIO, and a later sync does not save the lost pages', async () => {
    const fs = await fresh();
    await durableFile(fs, path, 'base');
    const file = await fs.open(path, 'write');
    await file.write(4, Buffer.from('-dropped'));
    fs.failNext('datasync', 'EIO', path);
    const error = await file.datasync().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FsError);
    expect(error).toMatchObject({ code: 'EIO', operation: 'datasync', path });
    expect(await readAll(fs, path)).toBe('base-dropped'); // still in the cache
    await file.datasync(); // succeeds, but the pages were marked clean
    fs.crash('all');
    expect(await readAll(fs, path)).toBe('base');
  });

  it('targets a fault at one path and fails syncDir too', async () => {
    const fs = await fresh();
    const other = await fs.open('/data/other', 'create');
    const file = await fs.open(path, 'create');
    fs.failNext('write', 'EIO', path);
    await other.write(0, Buffer.from('ok'));
    expect(await fsErrorCode(file.write(0, Buffer.from('no')))).toBe('EIO');
    fs.failNext('syncDir', 'EIO');
    expect(await fsErrorCode(fs.syncDir(dir))).toBe('EIO');
    fs.crash('all');
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('fails with ENOSPC past its capacity', async () => {
    const fs = new SimFileSystem({ prng: new Prng(3), capacityBytes: 10 });
    await fs.mkdir(dir);
    const file = await fs.open(path, 'create');
    await file.write(0, Buffer.alloc(8));
    expect(await fsErrorCode(file.write(8, Buffer.alloc(3)))).toBe('ENOSPC');
    await file.write(0, Buffer.alloc(10)); // overwriting and growing to the limit is fine
    expect(await file.size()).toBe(10);
  });

  it('corrupts a sector stickily: every later read flips bits, across crashes', async () => {
    const fs = await fresh();
    await durableFile(fs, path, 'abcdefghij');
    fs.corrupt(path, 3, 2);
    const readBytes = async (position: number, length: number): Promise<Buffer> => {
      const file = await fs.open(path, 'read');
      const data = await file.read(position, length);
      await file.close();
      return data;
    };
    const first = await readBytes(0, 10);
    expect(first.subarray(0, 3).toString()).toBe('abc');
    expect(first.subarray(5).toString()).toBe('fghij');
    expect(first[3]).not.toBe('d'.charCodeAt(0));
    expect(first[4]).not.toBe('e'.charCodeAt(0));
    expect(await readBytes(4, 3)).toEqual(first.subarray(4, 7));
    expect(await readBytes(0, 10)).toEqual(first);
    fs.crash('none');
    expect(await readBytes(0, 10)).toEqual(first);
    expect(fs.contentOf(path).toString()).toBe('abcdefghij');
  });

  it('delivers completions through a scheduler with the latency hook', async () => {
    const queue: Array<{ at: number; callback: () => void }> = [];
    const seen: string[] = [];
    const fs = new SimFileSystem({
      prng: new Prng(5),
      latency: (op) => (op === 'datasync' ? 10 : 1),
      scheduler: (delayMs, callback) => queue.push({ at: delayMs, callback }),
    });
    const made = fs.mkdir(dir);
    expect(queue.map((q) => q.at)).toEqual([1]);
    queue.shift()?.callback();
    await made;
    const file = fs.open(path, 'create').then((f) => {
      seen.push('open');
      return f;
    });
    expect(seen).toEqual([]);
    queue.shift()?.callback();
    const f = await file;
    const synced = f.datasync().then(() => seen.push('datasync'));
    expect(queue.map((q) => q.at)).toEqual([10]);
    queue.shift()?.callback();
    await synced;
    expect(seen).toEqual(['open', 'datasync']);
  });
});
