import { describe, expect, it } from 'vitest';
import { bootstrapState } from '../src/raft/config.js';
import type { Ready } from '../src/raft/ready.js';
import type { Entry } from '../src/raft/types.js';
import { logIndex, nodeId, term } from '../src/raft/types.js';
import { DurableStore } from './durable-store.js';

const e = (index: number, t: number): Entry => ({
  kind: 'normal',
  index: logIndex(index),
  term: term(t),
  data: Uint8Array.of(index),
});

function ready(entries: Entry[], commit: number | null = null): Ready {
  return {
    softState: null,
    hardState:
      commit === null ? null : { term: term(1), vote: nodeId('n1'), commit: logIndex(commit) },
    snapshot: null,
    entries,
    mustSync: true,
    messages: [],
    messagesAfterPersist: [],
    committedEntries: [],
    readStates: [],
  };
}

const terms = (s: DurableStore): number[] => s.recover().entries.map((x) => x.term);

describe('DurableStore', () => {
  it('appends, truncates a conflicting suffix, and records the hard state', () => {
    const s = new DurableStore(bootstrapState([nodeId('n1')]), new Uint8Array());
    expect(s.persist(ready([e(1, 1), e(2, 1), e(3, 1)], 1), null)).toBeNull();
    expect(s.persist(ready([e(2, 2)]), null)).toBeNull();
    expect(terms(s)).toEqual([1, 2]);
    expect(s.hardState.commit).toBe(1);
    expect(s.persist(ready([e(5, 2)]), null)).toMatch(/gap/);
  });

  it('compacts to a snapshot and replaces the log when one is installed', () => {
    const s = new DurableStore(bootstrapState([nodeId('n1')]), new Uint8Array());
    s.persist(ready([e(1, 1), e(2, 1), e(3, 1), e(4, 1)], 3), null);
    const membership = { voters: [nodeId('n1')], learners: [] };
    s.compact({ index: logIndex(2), term: term(1), membership }, Uint8Array.of(7));
    expect(s.recover().entries.map((x) => x.index)).toEqual([3, 4]);
    expect(s.recover().snapshot.index).toBe(2);
    // Entries a newer snapshot already covers are not stored again.
    s.persist(ready([e(2, 1), e(3, 1), e(4, 1), e(5, 1)]), null);
    expect(s.recover().entries.map((x) => x.index)).toEqual([3, 4, 5]);
    s.installSnapshot({ index: logIndex(9), term: term(3), membership }, Uint8Array.of(9));
    expect(s.recover().entries).toEqual([]);
    expect(s.hardState.commit).toBe(9);
    expect(s.snapshotBytes).toEqual(Uint8Array.of(9));
  });
});
