/**
 * How the simulated clients' operations run on the real key-value state
 * machine (src/kv), the way a Redis client would issue them:
 * - put k v: `SET k v`; append k v: `APPEND k v` (entries from `prepareWrite`);
 * - get k: `GET k` through `read`, after the node's read barrier;
 * - cas k expected v: WATCH-style optimistic concurrency. After a read
 *   barrier, read the value and the key's revision; a different value fails
 *   the cas at once (nothing is proposed); otherwise propose
 *   `MULTI; SET k v; EXEC` watching that revision. Its apply replies an array
 *   (it swapped) or nullArray (the key was modified since: no swap).
 *
 * Why a cas that fails is a definite `{ ok: false }` for the checker: a
 * mismatch at the read is what a get would observe at its read point; an
 * aborted EXEC means the key was modified after the read, and the clients
 * never write a value twice nor delete a key (every put/cas value is a fresh
 * tag, every append adds a fresh tag), so the value at the EXEC's log
 * position differs from `expected`.
 *
 * Byte strings are latin1 binary strings; the clients' keys and values are ASCII.
 */

import { decodeEntry } from '../src/kv/entry-codec.js';
import { KvStateMachine, type Reply } from '../src/kv/index.js';
import { assert } from '../src/raft/assert.js';
import type { KvInput, KvOutput } from './checker/history.js';

export type KvWrite = Exclude<KvInput, { readonly op: 'get' }>;
export type KvCas = Extract<KvInput, { readonly op: 'cas' }>;

/** The simulator's clients use one database. */
export const simDb = 0;

/** The command a put or append proposes. */
export function writeArgv(input: Exclude<KvWrite, KvCas>): string[] {
  return input.op === 'put' ? ['SET', input.key, input.value] : ['APPEND', input.key, input.value];
}

/** GET's reply as a value (null: absent), or undefined for a reply GET never gives. */
export function getValue(reply: Reply): string | null | undefined {
  if (reply.kind === 'bulk') return reply.value;
  if (reply.kind === 'null') return null;
  return undefined;
}

/**
 * The MULTI/SET/EXEC entry of a cas whose value matched, watching the key at
 * `revision` (read with the value, from the same applied state).
 */
export function prepareCas(
  sm: KvStateMachine,
  input: KvCas,
  revision: number,
  nowMs: number,
  seed: number,
): Uint8Array {
  const data = sm.prepareExec(
    simDb,
    [['SET', input.key, input.value]],
    [{ db: simDb, key: input.key, revision }],
    nowMs,
    seed,
  );
  if (!(data instanceof Uint8Array)) assert(false, `prepareExec refused a cas: ${describe(data)}`);
  return data;
}

/** The client's output for a write's apply reply, or null for a reply it can never give. */
export function writeOutput(input: KvWrite, reply: Reply): KvOutput | null {
  switch (input.op) {
    case 'put':
      return reply.kind === 'simple' && reply.value === 'OK' ? { ok: true } : null;
    case 'append':
      return reply.kind === 'integer' ? { ok: true } : null;
    case 'cas':
      if (reply.kind === 'nullArray') return { ok: false };
      if (reply.kind === 'array' && reply.items.length === 1) {
        const set = reply.items[0];
        if (set?.kind === 'simple' && set.value === 'OK') return { ok: true };
      }
      return null;
  }
}

/** The state machine's whole snapshot image (taken synchronously, so as of now). */
export function snapshotBytes(sm: KvStateMachine): Uint8Array {
  const chunks = [...sm.snapshot()];
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export function restoreKv(bytes: Uint8Array): KvStateMachine {
  return KvStateMachine.restore([bytes]);
}

/** A kv log entry for traces: its command(s), long values shortened. */
export function formatKvEntry(data: Uint8Array): string {
  const entry = decodeEntry(data);
  switch (entry.tag) {
    case 'command':
      return formatArgv(entry.argv);
    case 'exec': {
      const watched = entry.watched.map((w) => ` ${w.key}@${w.revision}`).join('');
      const commands = entry.commands.map((argv) => formatArgv(argv)).join('; ');
      return `EXEC [${commands}]${watched === '' ? '' : ` watching${watched}`}`;
    }
    case 'expire':
      return `EXPIRE ${entry.keys.map((k) => k.key).join(' ')}`;
  }
}

function formatArgv(argv: readonly string[]): string {
  return argv
    .map((a, i) => {
      if (i === 0) return a;
      const short = a.length > 24 ? `…${a.slice(-24)}` : a;
      return /^[!-~]+$/.test(short) ? short : JSON.stringify(short);
    })
    .join(' ');
}

function describe(reply: Reply): string {
  return reply.kind === 'error' ? reply.message : reply.kind;
}
