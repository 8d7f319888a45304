/**
 * A small client of the admin HTTP API, for `tandem start`, `status` and
 * `failover`. Every request has a timeout: an unreachable node is an answer.
 */

export interface NodeStatus {
  readonly id: string;
  readonly role: string;
  readonly leader: string;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly followers: readonly { id: string; match: number; lag: number; active: boolean }[];
}

export type Probe =
  | {
      readonly endpoint: string;
      readonly ok: true;
      readonly status: NodeStatus;
      readonly ready: boolean;
    }
  | { readonly endpoint: string; readonly ok: false; readonly error: string };

const requestTimeoutMs = 2_000;

export const defaultEndpoints = [
  'http://127.0.0.1:8379',
  'http://127.0.0.1:8380',
  'http://127.0.0.1:8381',
];

/** Splits `--endpoints a,b` and checks each is an http(s) URL. */
export function parseEndpoints(text: string | undefined): string[] {
  if (text === undefined) return defaultEndpoints;
  const endpoints = text
    .split(',')
    .map((s) => s.trim().replace(/\/+$/, ''))
    .filter((s) => s !== '');
  for (const endpoint of endpoints) {
    let url: URL | null = null;
    try {
      url = new URL(endpoint);
    } catch {
      url = null;
    }
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new Error(
        `--endpoints must be http://HOST:PORT URLs separated by commas, got '${endpoint}'`,
      );
    }
  }
  if (endpoints.length === 0) throw new Error('--endpoints is empty');
  return endpoints;
}

/** `parseEndpoints`, printing the problem and returning null if the text is bad. */
export function endpointsOrExit(text: string | undefined): string[] | null {
  try {
    return parseEndpoints(text);
  } catch (failure) {
    process.stderr.write(`tandem: ${(failure as Error).message}\n`);
    return null;
  }
}

function describe(failure: unknown): string {
  const cause = (failure as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message;
  if (detail !== undefined) return detail;
  return failure instanceof Error ? failure.message : String(failure);
}

export async function probe(endpoint: string): Promise<Probe> {
  try {
    const [statusResponse, readyResponse] = await Promise.all([
      fetch(`${endpoint}/status`, { signal: AbortSignal.timeout(requestTimeoutMs) }),
      fetch(`${endpoint}/ready`, { signal: AbortSignal.timeout(requestTimeoutMs) }),
    ]);
    await readyResponse.body?.cancel();
    if (!statusResponse.ok) return { endpoint, ok: false, error: `HTTP ${statusResponse.status}` };
    const status = (await statusResponse.json()) as NodeStatus;
    return { endpoint, ok: true, status, ready: readyResponse.status === 200 };
  } catch (failure) {
    return { endpoint, ok: false, error: describe(failure) };
  }
}

export function probeAll(endpoints: readonly string[]): Promise<Probe[]> {
  return Promise.all(endpoints.map(probe));
}

/** The node that reports itself leader with the highest term, if any. */
export function findLeader(probes: readonly Probe[]): (Probe & { ok: true }) | undefined {
  let best: (Probe & { ok: true }) | undefined;
  for (const p of probes) {
    if (!p.ok || p.status.role !== 'leader') continue;
    if (best === undefined || p.status.term > best.status.term) best = p;
  }
  return best;
}

export async function transferLeadership(
  endpoint: string,
  to: string | undefined,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const query = to === undefined ? '' : `?to=${encodeURIComponent(to)}`;
  const response = await fetch(`${endpoint}/v1/admin/transfer-leadership${query}`, {
    method: 'POST',
    signal: AbortSignal.timeout(requestTimeoutMs),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** A JSON request with a timeout; the body of any answer (an error's too). */
export async function requestJson<T>(
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  body: unknown,
): Promise<{ status: number; body: T & Record<string, unknown> }> {
  const response = await fetch(url, {
    method,
    headers: body === null ? {} : { 'content-type': 'application/json' },
    body: body === null ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(requestTimeoutMs),
  });
  return { status: response.status, body: (await response.json()) as T & Record<string, unknown> };
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));
