/**
 * `tandem put LOCAL [REMOTE]`, `tandem get REMOTE [LOCAL]`, `tandem ls
 * [PREFIX]`, `tandem rm REMOTE` (issue 6): the file API of the admin HTTP
 * server (src/http/file-routes.ts), from any node (followers forward writes
 * to the leader). Uploads send the file's sha256 so the server checks it;
 * downloads are verified against the sha256 the server reports, written to
 * a temporary file and renamed, so LOCAL is complete or absent.
 */

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { basename } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { endpointsOrExit } from './admin-client.js';

/** A transfer idle for this long is abandoned (a limit on everything). */
const idleTimeoutMs = 60_000;
/** Uploads refused for a retryable reason (503: an election, a busy disk) are sent again. */
const putAttemptsMax = 5;
const putRetryDelayMs = 1_000;
const listPageFiles = 1000;
/** Most files `ls` prints (pages of listPageFiles). */
const listFilesMax = 10_000_000;

export function registerFileCommands(program: Command): void {
  const endpointsOption = ['--endpoints <urls>', 'admin HTTP endpoints to try, comma-separated'];
  program
    .command('put')
    .description('upload a local file (REMOTE defaults to its name)')
    .argument('<local>', 'the file to upload')
    .argument('[remote]', 'its path in Tandem')
    .option('--content-type <type>', 'the Content-Type to keep', 'application/octet-stream')
    .option('--if-match <etag>', 'replace only the version with this etag')
    .option(endpointsOption[0] as string, endpointsOption[1])
    .action(async (local: string, remote: string | undefined, o: PutOptions) => {
      process.exitCode = await put(local, remote ?? basename(local), o);
    });
  program
    .command('get')
    .description("download a file (LOCAL defaults to its name; '-' writes to stdout)")
    .argument('<remote>', 'its path in Tandem')
    .argument('[local]', 'where to write it')
    .option('--linearizable', 'read the latest committed version (a read barrier)')
    .option(endpointsOption[0] as string, endpointsOption[1])
    .action(async (remote: string, local: string | undefined, o: GetOptions) => {
      process.exitCode = await get(remote, local ?? basename(remote), o);
    });
  program
    .command('ls')
    .description('list files (size, modified, sha256, path)')
    .argument('[prefix]', 'only paths starting with it', '')
    .option(endpointsOption[0] as string, endpointsOption[1])
    .action(async (prefix: string, o: { endpoints?: string }) => {
      process.exitCode = await list(prefix, o.endpoints);
    });
  program
    .command('rm')
    .description('delete a file')
    .argument('<remote>', 'its path in Tandem')
    .option(endpointsOption[0] as string, endpointsOption[1])
    .action(async (remote: string, o: { endpoints?: string }) => {
      process.exitCode = await remove(remote, o.endpoints);
    });
}

interface PutOptions {
  readonly contentType: string;
  readonly ifMatch?: string;
  readonly endpoints?: string;
}

interface GetOptions {
  readonly linearizable?: boolean;
  readonly endpoints?: string;
}

/** The URL path of a remote file: each segment percent-encoded, '/' kept. */
export function filePath(remote: string): string {
  return `/v1/files/${remote.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/')}`;
}

/** A progress line on stderr when it is a terminal, redrawn at most 10 times a second. */
class Progress extends Transform {
  private done = 0;
  private drawnAt = 0;
  private readonly started = Date.now();
  private readonly tty = process.stderr.isTTY === true;

  constructor(
    private readonly what: string,
    private readonly total: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
    this.done += chunk.length;
    const now = Date.now();
    if (this.tty && now - this.drawnAt >= 100) {
      this.drawnAt = now;
      this.draw(now);
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.tty) {
      this.draw(Date.now());
      process.stderr.write('\n');
    }
    callback();
  }

  private draw(now: number): void {
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const rate = this.done / seconds / 1e6;
    const width = 30;
    const fraction = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, '.');
    process.stderr.write(
      `\r${this.what} [${bar}] ${mib(this.done)}/${mib(this.total)} MiB ${rate.toFixed(1)} MB/s `,
    );
  }
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

function send(
  endpoint: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: ((out: NodeJS.WritableStream) => Promise<void>) | null,
): Promise<IncomingMessage> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const out = httpRequest(
      { host: url.hostname, port: url.port, method, path, headers, timeout: idleTimeoutMs },
      resolve,
    );
    out.on('timeout', () => out.destroy(new Error(`no progress for ${idleTimeoutMs} ms`)));
    out.on('error', reject);
    if (body === null) out.end();
    else body(out).catch((failure: unknown) => out.destroy(failure as Error));
  });
}

async function readAll(response: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of response) text += (chunk as Buffer).toString('utf8');
  return text;
}

function errorOf(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: string };
    return parsed.error ?? text;
  } catch {
    return text;
  }
}

/** Tries each endpoint until one answers (a refused connection moves on). */
async function firstAnswer(
  endpoints: readonly string[],
  attempt: (endpoint: string) => Promise<IncomingMessage>,
  command: string,
): Promise<{ endpoint: string; response: IncomingMessage } | null> {
  for (const endpoint of endpoints) {
    try {
      return { endpoint, response: await attempt(endpoint) };
    } catch (failure) {
      process.stderr.write(
        `tandem ${command}: ${endpoint}: ${(failure as Error).message}; trying the next\n`,
      );
    }
  }
  process.stderr.write(`tandem ${command}: no node answered\n`);
  return null;
}

async function put(local: string, remote: string, o: PutOptions): Promise<number> {
  const endpoints = endpointsOrExit(o.endpoints);
  if (endpoints === null) return 2;
  let size: number;
  try {
    const s = await stat(local);
    if (!s.isFile()) throw new Error('not a regular file');
    size = s.size;
  } catch (failure) {
    process.stderr.write(`tandem put: cannot read ${local}: ${(failure as Error).message}\n`);
    return 2;
  }
  const sha256 = await sha256OfFile(local);
  const headers: Record<string, string> = {
    'content-type': o.contentType,
    'content-length': String(size),
    'x-checksum-sha256': sha256,
  };
  if (o.ifMatch !== undefined) headers['if-match'] = `"${o.ifMatch.replace(/"/g, '')}"`;
  for (let attempt = 1; ; attempt++) {
    const answer = await firstAnswer(
      endpoints,
      (endpoint) =>
        send(endpoint, 'PUT', filePath(remote), headers, (out) =>
          pipeline(
            createReadStream(local, { highWaterMark: 1024 * 1024 }),
            new Progress(`put ${remote}`, size),
            out,
          ),
        ),
      'put',
    );
    if (answer === null) return 1;
    const text = await readAll(answer.response);
    const status = answer.response.statusCode ?? 0;
    if (status === 201) return printPut(text, sha256);
    // 503 and 502 mean nothing was stored (the server says so): the whole file goes again.
    if ((status === 503 || status === 502) && attempt < putAttemptsMax) {
      process.stderr.write(`tandem put: ${status}: ${errorOf(text)}; sending it again\n`);
      await new Promise((resolve) => setTimeout(resolve, putRetryDelayMs * attempt));
      continue;
    }
    process.stderr.write(`tandem put: ${status}: ${errorOf(text)}\n`);
    return 1;
  }
}

function printPut(text: string, sha256: string): number {
  const result = JSON.parse(text) as { path: string; size: number; etag: string };
  process.stdout.write(
    `${result.path}: ${result.size} bytes, sha256 ${sha256}, etag ${result.etag}\n`,
  );
  return 0;
}

async function get(remote: string, local: string, o: GetOptions): Promise<number> {
  const endpoints = endpointsOrExit(o.endpoints);
  if (endpoints === null) return 2;
  const query = o.linearizable === true ? '?linearizable=1' : '';
  const answer = await firstAnswer(
    endpoints,
    (endpoint) => send(endpoint, 'GET', `${filePath(remote)}${query}`, {}, null),
    'get',
  );
  if (answer === null) return 1;
  const { response } = answer;
  if (response.statusCode !== 200) {
    process.stderr.write(
      `tandem get: ${response.statusCode}: ${errorOf(await readAll(response))}\n`,
    );
    return 1;
  }
  const expected = String(response.headers['x-checksum-sha256'] ?? '');
  const size = Number(response.headers['content-length'] ?? 0);
  const hash = createHash('sha256');
  const hasher = new Transform({
    transform(chunk: Buffer, _e, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  const toStdout = local === '-';
  const temp = `${local}.${process.pid}.tmp`;
  try {
    await pipeline(
      response,
      new Progress(`get ${remote}`, size),
      hasher,
      toStdout ? process.stdout : createWriteStream(temp, { flush: true }),
    );
  } catch (failure) {
    if (!toStdout) await rm(temp, { force: true });
    process.stderr.write(`tandem get: the download failed: ${(failure as Error).message}\n`);
    return 1;
  }
  const got = hash.digest('hex');
  if (expected !== '' && got !== expected) {
    if (!toStdout) await rm(temp, { force: true });
    process.stderr.write(
      `tandem get: the content received hashes to ${got}, the server said ${expected}; retry\n`,
    );
    return 1;
  }
  if (!toStdout) {
    await rename(temp, local);
    process.stderr.write(`${remote} -> ${local}: ${size} bytes, sha256 ${got}\n`);
  }
  return 0;
}

interface ListPage {
  readonly files: readonly { path: string; size: number; sha256: string; modified: string }[];
  readonly next: string | null;
}

async function list(prefix: string, endpointsText: string | undefined): Promise<number> {
  const endpoints = endpointsOrExit(endpointsText);
  if (endpoints === null) return 2;
  let after = '';
  for (let printed = 0; printed < listFilesMax; ) {
    const query = new URLSearchParams({ prefix, after, limit: String(listPageFiles) });
    const answer = await firstAnswer(
      endpoints,
      (endpoint) => send(endpoint, 'GET', `/v1/files?${query}`, {}, null),
      'ls',
    );
    if (answer === null) return 1;
    const text = await readAll(answer.response);
    if (answer.response.statusCode !== 200) {
      process.stderr.write(`tandem ls: ${answer.response.statusCode}: ${errorOf(text)}\n`);
      return 1;
    }
    const page = JSON.parse(text) as ListPage;
    for (const f of page.files) {
      process.stdout.write(
        `${String(f.size).padStart(12)}  ${f.modified}  ${f.sha256}  ${f.path}\n`,
      );
    }
    printed += page.files.length;
    if (page.next === null) return 0;
    after = page.next;
  }
  return 0;
}

async function remove(remote: string, endpointsText: string | undefined): Promise<number> {
  const endpoints = endpointsOrExit(endpointsText);
  if (endpoints === null) return 2;
  const answer = await firstAnswer(
    endpoints,
    (endpoint) => send(endpoint, 'DELETE', filePath(remote), {}, null),
    'rm',
  );
  if (answer === null) return 1;
  const text = await readAll(answer.response);
  if (answer.response.statusCode !== 204) {
    process.stderr.write(`tandem rm: ${answer.response.statusCode}: ${errorOf(text)}\n`);
    return 1;
  }
  process.stdout.write(`removed ${remote}\n`);
  return 0;
}
