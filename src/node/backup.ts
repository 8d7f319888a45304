/**
 * Backup files (issue 5): a node's state machine image as of a committed
 * index, checksummed, streamed (never whole in memory).
 *
 *   "TNDMBAK1"  u32 meta length  meta (JSON: index, term, membership, cluster, node, time)
 *   data        the state machine snapshot (member registry header, kv image)
 *   "TNDMEND1"  u64 data length  sha256 of everything before the trailer
 *
 * `readBackup` verifies as it streams: the data it yields is only known good
 * once the iteration ends without throwing, so a restore must not make
 * anything durable before that (the snapshot writer renames into place only
 * after its last chunk).
 */

import { createHash } from 'node:crypto';
import type { SnapshotMeta } from '../raft/types.js';

const headMagic = Buffer.from('TNDMBAK1', 'latin1');
const tailMagic = Buffer.from('TNDMEND1', 'latin1');
const trailerBytes = tailMagic.length + 8 + 32;
const metaBytesMax = 64 * 1024;

export interface BackupMeta {
  readonly snapshot: SnapshotMeta;
  readonly clusterId: string;
  /** The node that wrote it. */
  readonly node: string;
  readonly createdAt: string;
}

/** The backup file is damaged or not a backup; the message says where. */
export class BackupError extends Error {
  override readonly name = 'BackupError';
}

export async function* writeBackup(
  meta: BackupMeta,
  data: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256');
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const head = Buffer.alloc(headMagic.length + 4);
  headMagic.copy(head, 0);
  head.writeUInt32BE(json.length, headMagic.length);
  hash.update(head).update(json);
  yield head;
  yield json;
  let dataBytes = 0;
  for await (const chunk of data) {
    hash.update(chunk);
    dataBytes += chunk.length;
    yield chunk;
  }
  const trailer = Buffer.alloc(trailerBytes);
  tailMagic.copy(trailer, 0);
  trailer.writeBigUInt64BE(BigInt(dataBytes), tailMagic.length);
  hash.digest().copy(trailer, tailMagic.length + 8);
  yield trailer;
}

/**
 * Reads a backup stream: the meta at once, the data as it streams. The
 * data iterator throws `BackupError` at its end if the checksum or the
 * length does not match.
 */
export async function readBackup(
  chunks: AsyncIterable<Uint8Array>,
): Promise<{ meta: BackupMeta; data: AsyncIterable<Uint8Array> }> {
  const iterator = chunks[Symbol.asyncIterator]();
  let buffered = Buffer.alloc(0);
  let ended = false;
  const fill = async (bytes: number): Promise<void> => {
    while (buffered.length < bytes && !ended) {
      const next = await iterator.next();
      if (next.done === true) ended = true;
      else buffered = Buffer.concat([buffered, next.value]);
    }
  };
  await fill(headMagic.length + 4);
  if (buffered.length < headMagic.length + 4 || !buffered.subarray(0, 8).equals(headMagic)) {
    throw new BackupError('not a Tandem backup file (wrong magic bytes at offset 0)');
  }
  const metaLength = buffered.readUInt32BE(headMagic.length);
  if (metaLength > metaBytesMax)
    throw new BackupError(`backup meta of ${metaLength} bytes: damaged`);
  await fill(headMagic.length + 4 + metaLength);
  if (buffered.length < headMagic.length + 4 + metaLength) {
    throw new BackupError('the backup file ends inside its header: truncated');
  }
  const hash = createHash('sha256');
  hash.update(buffered.subarray(0, headMagic.length + 4 + metaLength));
  let meta: BackupMeta;
  try {
    meta = JSON.parse(
      buffered.subarray(headMagic.length + 4, headMagic.length + 4 + metaLength).toString('utf8'),
    );
  } catch {
    throw new BackupError('the backup meta is not JSON: damaged');
  }
  checkMeta(meta);
  buffered = buffered.subarray(headMagic.length + 4 + metaLength);
  const data = (async function* () {
    let dataBytes = 0;
    for (;;) {
      // Hold back what may be the trailer; pass the rest on.
      if (buffered.length > trailerBytes) {
        const out = buffered.subarray(0, buffered.length - trailerBytes);
        buffered = buffered.subarray(buffered.length - trailerBytes);
        hash.update(out);
        dataBytes += out.length;
        yield out;
      }
      if (ended) break;
      const next = await iterator.next();
      if (next.done === true) ended = true;
      else buffered = Buffer.concat([buffered, next.value]);
    }
    if (buffered.length !== trailerBytes || !buffered.subarray(0, 8).equals(tailMagic)) {
      throw new BackupError('the backup file has no trailer: truncated');
    }
    const length = Number(buffered.readBigUInt64BE(tailMagic.length));
    const digest = buffered.subarray(tailMagic.length + 8);
    if (length !== dataBytes || !hash.digest().equals(digest)) {
      throw new BackupError(
        `the backup file's checksum does not match (${dataBytes} data bytes read, ${length} ` +
          'written): it is damaged; use another backup',
      );
    }
  })();
  return { meta, data };
}

function checkMeta(meta: BackupMeta): void {
  const s = meta?.snapshot;
  const ok =
    s !== undefined &&
    Number.isSafeInteger(s.index) &&
    s.index > 0 &&
    Number.isSafeInteger(s.term) &&
    Array.isArray(s.membership?.voters) &&
    Array.isArray(s.membership?.learners) &&
    typeof meta.clusterId === 'string';
  if (!ok) throw new BackupError('the backup meta lacks a snapshot index, term or membership');
}
