/**
 * Builders shared by the storage tests (here and in sim/disk/): entries,
 * hard states, snapshot metas and Readys from plain numbers.
 */

import type { Ready } from '../raft/ready.js';
import type { Entry, HardState, SnapshotMeta } from '../raft/types.js';
import { logIndex, nodeId, term } from '../raft/types.js';

/** A normal entry whose payload names its index and term. */
export function entry(index: number, entryTerm: number): Entry {
  const data = Buffer.from(`entry ${index}/${entryTerm}`);
  return { kind: 'normal', index: logIndex(index), term: term(entryTerm), data };
}

export function entries(from: number, to: number, entryTerm: number): Entry[] {
  const list: Entry[] = [];
  for (let i = from; i <= to; i++) list.push(entry(i, entryTerm));
  return list;
}

export function hs(hsTerm: number, vote: string, commit: number): HardState {
  return { term: term(hsTerm), vote: nodeId(vote), commit: logIndex(commit) };
}

export function snap(index: number, snapTerm: number): SnapshotMeta {
  return {
    index: logIndex(index),
    term: term(snapTerm),
    membership: { voters: [nodeId('a'), nodeId('b')], learners: [nodeId('c')] },
  };
}

/** A Ready with the given fields; it must sync when it carries entries or a hard state. */
export function ready(fields: Partial<Ready>): Ready {
  const list = fields.entries ?? [];
  const hardState = fields.hardState ?? null;
  return {
    softState: null,
    hardState,
    snapshot: null,
    entries: list,
    mustSync: list.length > 0 || hardState !== null,
    messages: [],
    messagesAfterPersist: [],
    committedEntries: [],
    readStates: [],
    ...fields,
  };
}

/** Entries as `index/term`, for readable assertions. */
export function brief(list: readonly Entry[]): string[] {
  return list.map((e) => `${e.index}/${e.term}`);
}
