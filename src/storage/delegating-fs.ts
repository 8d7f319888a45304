/**
 * A FileSystem that forwards every call to another one. Subclass it and
 * override only what should differ: counting or failing syncs, gating them,
 * recording directory operations (tests, benchmarks, later metrics).
 */
import type { DirLock, FileSystem, FsFile, OpenMode, OpenOptions } from './fs.js';

export class DelegatingFileSystem implements FileSystem {
  constructor(protected readonly inner: FileSystem) {}

  async open(path: string, mode: OpenMode, options?: OpenOptions): Promise<FsFile> {
    return this.wrapFile(await this.inner.open(path, mode, options));
  }
  /** Hook for subclasses: wrap each opened file (default: unchanged). */
  protected wrapFile(file: FsFile): FsFile {
    return file;
  }
  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }
  unlink(path: string): Promise<void> {
    return this.inner.unlink(path);
  }
  readdir(path: string): Promise<string[]> {
    return this.inner.readdir(path);
  }
  mkdir(path: string): Promise<void> {
    return this.inner.mkdir(path);
  }
  exists(path: string): Promise<boolean> {
    return this.inner.exists(path);
  }
  syncDir(path: string): Promise<void> {
    return this.inner.syncDir(path);
  }
  lock(dir: string): Promise<DirLock> {
    return this.inner.lock(dir);
  }
}

/**
 * `file` with some of its methods replaced; the rest forward to it. Unless
 * replaced itself, `writeDurable` becomes the replaced `write` then the
 * replaced `datasync` when either of those is replaced, so a wrapper that
 * fails or slows syncs also fails or slows durable writes.
 */
export function overrideFile(file: FsFile, overrides: Partial<Omit<FsFile, 'path'>>): FsFile {
  const wrapped: FsFile = {
    path: file.path,
    read: (at, length) => file.read(at, length),
    write: (at, data) => file.write(at, data),
    writeDurable: (at, data) => file.writeDurable(at, data),
    append: (data) => file.append(data),
    size: () => file.size(),
    truncate: (sizeBytes) => file.truncate(sizeBytes),
    datasync: () => file.datasync(),
    sync: () => file.sync(),
    close: () => file.close(),
    ...overrides,
  };
  if (overrides.writeDurable !== undefined) return wrapped;
  if (overrides.write === undefined && overrides.datasync === undefined) return wrapped;
  return {
    ...wrapped,
    writeDurable: async (at, data) => {
      await wrapped.write(at, data);
      await wrapped.datasync();
    },
  };
}
