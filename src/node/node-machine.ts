/**
 * The node's state machine: what the Raft driver applies committed entries
 * to. Kv entries go to the keyspace (src/kv), member entries to the member
 * registry (member-registry.ts), file entries to the file table and blob
 * store (src/files); snapshots carry all three (the file table's manifests,
 * not the blobs: see file-service.ts for how missing chunks are fetched).
 */

import { BlobStore } from '../files/blob-store.js';
import { decodeFileEntry, isFileEntry } from '../files/file-entry.js';
import { encodeFilesSection, FileTable, readFilesSection } from '../files/file-table.js';
import { type ApplyResult, KvStateMachine, type SnapshotChunks } from '../kv/index.js';
import { error, simple } from '../kv/reply.js';
import type { LogIndex } from '../raft/types.js';
import {
  applyMemberEntry,
  decodeMemberEntry,
  encodeSnapshotHeader,
  isMemberEntry,
  MemberRegistry,
  readSnapshotHeader,
} from './member-registry.js';
import type { StateMachine } from './raft-driver.js';

const ok = simple('OK');

/**
 * The node's state machine behind the driver's interface: the kv keyspace,
 * and the member registry (member-registry.ts) whose entries share the log.
 * Restore swaps both.
 */
export class NodeMachine implements StateMachine<ApplyResult> {
  kv = new KvStateMachine();
  registry = new MemberRegistry();
  files: FileTable;
  /** Called after the registry changed (an applied member entry, a restore). */
  onMembersChanged: () => void = () => undefined;
  /** Called after a snapshot replaced the file table, or a manifest applied, whose chunks may be missing here. */
  onFilesRestored: () => void = () => undefined;

  /** `blobDir`: where file chunks are kept (created if needed). */
  constructor(readonly blobDir: string) {
    this.files = new FileTable(BlobStore.openSync(blobDir));
  }

  apply(index: LogIndex, data: Uint8Array): ApplyResult {
    if (isFileEntry(data)) {
      const entry = decodeFileEntry(data);
      const result = this.files.apply(index, entry);
      // A node that installed a snapshot mid-upload lacks the chunks before it.
      if (entry.kind === 'manifest' && result.ok) {
        if (entry.chunks.some((c) => !this.files.blobs.has(c.hash))) this.onFilesRestored();
      }
      // The reply carries the etag, or the refusal with its code first.
      return { reply: result.ok ? simple(result.etag) : error(`${result.code} ${result.message}`) };
    }
    if (!isMemberEntry(data)) return this.kv.apply(index, data);
    applyMemberEntry(this.registry, decodeMemberEntry(data));
    this.onMembersChanged();
    return { reply: ok };
  }

  /** Captures the image now (copy-on-write); the chunks are produced as they are pulled. */
  snapshot(chunks: SnapshotChunks): AsyncIterable<Uint8Array> {
    const header = encodeSnapshotHeader(this.registry);
    const blobs = this.files.blobs;
    // Records are immutable: a copy of the list is the table as of now.
    const files = encodeFilesSection([...this.files.all()]);
    const image = this.kv.snapshot(chunks);
    return (async function* () {
      try {
        // The snapshot lets the WAL drop chunk entries: their blobs must be durable first.
        await blobs.syncPending();
        yield header;
        yield* files;
        for (const chunk of image) {
          yield chunk;
          // Let the event loop breathe between chunks; the image stays as of the capture.
          await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        image.close();
      }
    })();
  }

  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    // Blobs this node applied itself lose their log entries with this install.
    await this.files.blobs.syncPending();
    const { registry, rest } = await readSnapshotHeader(chunks);
    const files = new FileTable(this.files.blobs);
    const kvImage = await readFilesSection(rest, files);
    this.kv = await KvStateMachine.restoreAsync(kvImage);
    this.registry = registry;
    this.files = files;
    this.onMembersChanged();
    this.onFilesRestored();
  }
}
