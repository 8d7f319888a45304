import { type AddressInfo, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  classify,
  classifyFetchFailure,
  classifyHttp,
  fileContent,
  sha256Hex,
} from './workloads.js';

describe('classify', () => {
  it('counts only refusals that promise "not applied" as failed', () => {
    expect(classify(new Error('TRYAGAIN no leader: an election is in progress'))).toBe('fail');
    expect(classify(new Error('NOSPACE n3 has 0 bytes free'))).toBe('fail');
    expect(
      classify(new Error("Stream isn't writeable and enableOfflineQueue options is false")),
    ).toBe('fail');
  });

  it('treats timeouts, lost connections and anything else as unknown', () => {
    expect(classify(new Error('Command timed out'))).toBe('unknown');
    expect(classify(new Error('Connection is closed.'))).toBe('unknown');
    expect(classify(new Error('ERR the write may or may not have been applied: x'))).toBe(
      'unknown',
    );
    expect(classify('something odd')).toBe('unknown');
  });
});

describe('files workload helpers', () => {
  it('derives each version content from its number: same bytes again, others differ', () => {
    const a = fileContent(7, 3 * 1024 * 1024 + 5);
    expect(a.length).toBe(3 * 1024 * 1024 + 5);
    expect(sha256Hex(fileContent(7, a.length))).toBe(sha256Hex(a));
    expect(sha256Hex(fileContent(8, a.length))).not.toBe(sha256Hex(a));
    expect(fileContent(0, 4096).some((b) => b !== 0)).toBe(true);
  });

  it('counts definite 4xx refusals as failed, 408 and 5xx as unknown', () => {
    expect(classifyHttp(400)).toBe('fail');
    expect(classifyHttp(413)).toBe('fail');
    expect(classifyHttp(408)).toBe('unknown');
    expect(classifyHttp(503)).toBe('unknown');
    expect(classifyHttp(502)).toBe('unknown');
  });

  it('counts a refused connection as failed (nothing was sent), other fetch failures as unknown', async () => {
    // A port nobody listens on any more: connect is refused.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const refused = await fetch(`http://127.0.0.1:${port}/`, {
      signal: AbortSignal.timeout(2_000),
    }).catch((failure: unknown) => failure);
    expect(classifyFetchFailure(refused)).toBe('fail');
    expect(classifyFetchFailure(new DOMException('timed out', 'TimeoutError'))).toBe('unknown');
    expect(
      classifyFetchFailure(new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } })),
    ).toBe('unknown');
  });
});
