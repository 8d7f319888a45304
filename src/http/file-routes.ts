/**
 * The file API (issue 6) on every node's admin HTTP server:
 *
 * - `PUT /v1/files/<path>`: streamed upload (Content-Type kept; If-Match,
 *   If-None-Match: *, X-Checksum-Sha256 or Content-Digest checked);
 * - `GET`/`HEAD /v1/files/<path>`: streamed download with Range, ETag,
 *   If-None-Match; `?linearizable=1` waits for a read barrier first;
 * - `DELETE /v1/files/<path>` (If-Match);
 * - `GET /v1/files?prefix=&after=&limit=`: a page of files in path order;
 * - `GET /v1/internal/chunks/<sha256>`: a verified chunk, for peers.
 *
 * Writes sent to a follower are proxied to the leader's admin server, body
 * streamed through, so clients need not know which node leads.
 */

import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  CorruptBlobError,
  FileError,
  type FileRecord,
  type FileService,
  isBlobHash,
  listLimitMax,
  MissingBlobError,
  normalizePath,
  type Precondition,
  uploadBytesMaxDefault,
} from '../node/file-service.js';
import { parseHostPort } from '../node/host-port.js';

/** What the file routes need from a node (TandemNode provides it). */
export interface FilesNode {
  readonly files: FileService;
  readonly isLeader: boolean;
  /** The leader's admin HTTP address, or null if unknown or this node leads. */
  leaderHttp(): string | null;
}

export interface FileRoutesOptions {
  readonly node: FilesNode;
  /** Largest upload accepted (bytes); default 5 GiB. */
  readonly uploadBytesMax?: number;
}

const contentTypeBytesMax = 256;
/** An upload (or a forwarded one) that sends nothing for this long is abandoned. */
const uploadIdleMs = 60_000;
const forwardedHeader = 'x-tandem-forwarded';
const prefix = '/v1/files/';

class BadRequest extends FileError {
  constructor(message: string) {
    super(400, message);
  }
}

/** Registers the routes in an encapsulated context (its raw-body parser stays here). */
export async function fileRoutes(app: FastifyInstance, options: FileRoutesOptions): Promise<void> {
  const node = options.node;
  const bytesMax = options.uploadBytesMax ?? uploadBytesMaxDefault;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  app.setErrorHandler((failure, _request, reply) => {
    reply.removeHeader('content-range').removeHeader('content-length').type('application/json');
    if (failure instanceof FileError) {
      return reply.code(failure.status).send({ error: failure.message });
    }
    const status = (failure as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return reply.code(status).send({ error: (failure as Error).message });
    }
    reply.log.error({ err: failure }, 'file request failed');
    return reply.code(500).send({ error: `internal error: ${(failure as Error).message}` });
  });

  app.put('/v1/files/*', async (request, reply) => {
    request.raw.setTimeout(uploadIdleMs, () =>
      request.raw.destroy(new Error(`the upload sent nothing for ${uploadIdleMs} ms`)),
    );
    const path = pathOf(request);
    if (!node.isLeader) return await forward(request, reply, node);
    const declared = contentLength(request);
    if (declared !== null && declared > bytesMax) {
      throw new FileError(413, `the upload is ${declared} bytes; the limit is ${bytesMax}`);
    }
    const contentType = request.headers['content-type'] ?? 'application/octet-stream';
    if (Buffer.byteLength(contentType) > contentTypeBytesMax) {
      throw new BadRequest(`the Content-Type is longer than ${contentTypeBytesMax} bytes`);
    }
    const precondition = writePrecondition(request);
    const expectedSha256 = clientChecksum(request);
    const body = (request.body as Readable | undefined) ?? Readable.from([]);
    const result = await node.files.upload(path, counted(body, declared), {
      contentType,
      precondition,
      expectedSha256,
      bytesMax,
      nowMs: Date.now(),
    });
    return reply
      .code(201)
      .header('etag', `"${result.etag}"`)
      .send({ path, size: result.size, sha256: result.sha256, etag: result.etag });
  });

  app.delete('/v1/files/*', async (request, reply) => {
    const path = pathOf(request);
    if (!node.isLeader) return await forward(request, reply, node);
    const precondition = writePrecondition(request);
    await node.files.remove(path, precondition, Date.now());
    return reply.code(204).send();
  });

  const download = async (request: FastifyRequest, reply: FastifyReply, head: boolean) => {
    const path = pathOf(request);
    const record = await node.files.stat(path, linearizable(request));
    if (record === undefined) throw new FileError(404, `no file ${path}`);
    reply
      .header('etag', `"${record.etag}"`)
      .header('last-modified', new Date(record.mtimeMs).toUTCString())
      .header('accept-ranges', 'bytes')
      .header('x-checksum-sha256', record.sha256)
      .type(record.contentType);
    if (noneMatch(request.headers['if-none-match'], record.etag)) return reply.code(304).send();
    const range = parseRange(request.headers.range, record.size);
    if (range === 'unsatisfiable') {
      return reply
        .code(416)
        .type('application/json')
        .header('content-range', `bytes */${record.size}`)
        .send({ error: `the range is outside the file's ${record.size} bytes` });
    }
    const [start, end] = range ?? [0, record.size];
    if (range !== null) {
      reply.code(206).header('content-range', `bytes ${start}-${end - 1}/${record.size}`);
    }
    reply.header('content-length', String(end - start));
    if (head) return reply.send();
    // Missing chunks are fetched before the headers go out, so a failure is a status.
    await node.files.prepareRead(record, start, end);
    return reply.send(Readable.from(node.files.read(record, start, end)));
  };
  app.get('/v1/files/*', { exposeHeadRoute: false }, (request, reply) =>
    download(request, reply, false),
  );
  app.head('/v1/files/*', (request, reply) => download(request, reply, true));

  app.get<{ Querystring: { prefix?: string; after?: string; limit?: string } }>(
    '/v1/files',
    async (request) => {
      const q = request.query;
      const limit = q.limit === undefined ? 100 : Number(q.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > listLimitMax) {
        throw new BadRequest(`limit must be an integer from 1 to ${listLimitMax}`);
      }
      const files = await node.files.list(
        q.prefix ?? '',
        q.after ?? '',
        limit,
        linearizable(request),
      );
      const last = files[files.length - 1];
      return {
        files: files.map(describe),
        next: files.length === limit && last !== undefined ? last.path : null,
      };
    },
  );

  app.get<{ Params: { hash: string } }>('/v1/internal/chunks/:hash', async (request, reply) => {
    const hash = request.params.hash;
    if (!isBlobHash(hash)) throw new BadRequest('a chunk is named by its sha256 in hex');
    try {
      const bytes = await node.files.localChunk(hash);
      return reply.type('application/octet-stream').send(bytes);
    } catch (failure) {
      if (failure instanceof MissingBlobError) throw new FileError(404, failure.message);
      if (failure instanceof CorruptBlobError) throw new FileError(409, failure.message);
      throw failure;
    }
  });
}

function describe(r: FileRecord) {
  return {
    path: r.path,
    size: r.size,
    sha256: r.sha256,
    contentType: r.contentType,
    modified: new Date(r.mtimeMs).toISOString(),
    etag: r.etag,
  };
}

/** The normalized file path of the request URL, or a 400 saying what is wrong with it. */
function pathOf(request: FastifyRequest): string {
  const url = request.raw.url ?? '';
  const raw = url.slice(prefix.length).split('?')[0] ?? '';
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new BadRequest('the path is not valid percent-encoded UTF-8');
  }
  const checked = normalizePath(decoded);
  if (!checked.ok) throw new BadRequest(`bad file path: ${checked.reason}`);
  return checked.path;
}

function linearizable(request: FastifyRequest): boolean {
  const q = request.query as Record<string, string | undefined>;
  return (
    q.linearizable === '1' ||
    q.linearizable === 'true' ||
    request.headers['x-tandem-read'] === 'linearizable'
  );
}

function contentLength(request: FastifyRequest): number | null {
  const text = request.headers['content-length'];
  if (text === undefined) return null;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new BadRequest('bad Content-Length');
  return n;
}

/** Fails the upload if the body ends before its declared Content-Length. */
async function* counted(body: AsyncIterable<Uint8Array>, declared: number | null) {
  let received = 0;
  for await (const piece of body) {
    received += piece.length;
    yield piece as Uint8Array;
  }
  if (declared !== null && received !== declared) {
    throw new BadRequest(
      `the body ended after ${received} of ${declared} bytes; nothing was stored`,
    );
  }
}

function unquote(etag: string): string {
  const t = etag.trim().replace(/^W\//, '');
  return t.startsWith('"') && t.endsWith('"') && t.length >= 2 ? t.slice(1, -1) : t;
}

function writePrecondition(request: FastifyRequest): Precondition {
  const ifMatch = request.headers['if-match'];
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw new BadRequest('send If-Match or If-None-Match, not both');
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*') {
      throw new BadRequest('on writes If-None-Match supports only "*" (create only)');
    }
    return { kind: 'absent' };
  }
  if (ifMatch === undefined) return { kind: 'none' };
  if (ifMatch.trim() === '*') return { kind: 'exists' };
  if (ifMatch.includes(',')) throw new BadRequest('If-Match supports a single etag');
  return { kind: 'etag', etag: unquote(ifMatch) };
}

/** The sha256 (hex) the client sent in X-Checksum-Sha256 (hex or base64) or Content-Digest. */
function clientChecksum(request: FastifyRequest): string | null {
  const header = request.headers['x-checksum-sha256'];
  if (typeof header === 'string') {
    const text = header.trim();
    if (/^[0-9a-fA-F]{64}$/.test(text)) return text.toLowerCase();
    const bytes = Buffer.from(text, 'base64');
    if (bytes.length === 32) return bytes.toString('hex');
    throw new BadRequest('X-Checksum-Sha256 must be a sha256 in hex (64 digits) or base64');
  }
  const digest = request.headers['content-digest'];
  if (typeof digest === 'string') {
    const match = /(?:^|,)\s*sha-256=:([A-Za-z0-9+/=]+):/.exec(digest);
    const bytes = match?.[1] === undefined ? null : Buffer.from(match[1], 'base64');
    if (bytes === null || bytes.length !== 32) {
      throw new BadRequest('Content-Digest must hold sha-256=:BASE64: (RFC 9530)');
    }
    return bytes.toString('hex');
  }
  return null;
}

function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => unquote(t) === etag);
}

/** One byte range [start, end) of a `size`-byte file, null for the whole file. */
export function parseRange(
  header: string | undefined,
  size: number,
): [number, number] | null | 'unsatisfiable' {
  if (header === undefined) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges or another unit: RFC 9110 lets a server ignore Range.
  if (match === null) return null;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return null;
  if (first === '') {
    const n = Number(last);
    if (n === 0) return 'unsatisfiable';
    return [Math.max(0, size - n), size];
  }
  const start = Number(first);
  if (start >= size) return 'unsatisfiable';
  const end = last === '' ? size : Math.min(size, Number(last) + 1);
  if (end <= start) return 'unsatisfiable';
  return [start, end];
}

/** How long a follower waits to learn the leader's admin address (an election, a registration). */
const leaderWaitMs = 5_000;

/** Proxies a write to the leader's admin server, body and answer streamed through. */
async function forward(request: FastifyRequest, reply: FastifyReply, node: FilesNode) {
  if (request.headers[forwardedHeader] !== undefined) {
    throw new FileError(503, 'the node this was forwarded to is not the leader either; retry');
  }
  // Right after an election (or a start) the leader's address may not be registered yet.
  const deadline = Date.now() + leaderWaitMs;
  let leader = node.leaderHttp();
  while (leader === null && !node.isLeader && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    leader = node.leaderHttp();
  }
  if (node.isLeader) throw new FileError(503, 'this node became the leader meanwhile; retry');
  const address = leader === null ? null : parseHostPort(leader);
  if (address === null) {
    throw new FileError(
      503,
      `no leader's address is known after ${leaderWaitMs} ms (an election in progress?); retry shortly`,
    );
  }
  reply.hijack();
  const headers = { ...request.headers, [forwardedHeader]: '1' };
  delete headers.expect;
  const out = httpRequest(
    {
      host: address.host,
      port: address.port,
      method: request.method,
      path: request.raw.url,
      headers,
    },
    (answer) => {
      reply.raw.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(reply.raw);
    },
  );
  out.on('error', (failure) => {
    if (reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    reply.raw.writeHead(502, { 'content-type': 'application/json' });
    reply.raw.end(
      JSON.stringify({
        error: `forwarding to the leader at ${leader} failed (${failure.message}); retry`,
      }),
    );
  });
  out.setTimeout(uploadIdleMs, () =>
    out.destroy(new Error(`the leader answered nothing for ${uploadIdleMs} ms`)),
  );
  // A client gone half way: the leader must see the upload end badly, not wait for the rest.
  request.raw.on('close', () => {
    if (!request.raw.complete) out.destroy(new Error('the client went away'));
  });
  const body = request.body as Readable | undefined;
  if (body === undefined) out.end();
  else {
    body.on('error', () => out.destroy());
    body.pipe(out);
  }
}
