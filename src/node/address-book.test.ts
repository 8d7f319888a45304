import { describe, expect, it } from 'vitest';
import { nodeId } from '../raft/types.js';
import { peerAddressBook } from './address-book.js';
import type { MemberRecord } from './member-registry.js';

const at = (port: number) => ({ host: '127.0.0.1', port });

function record(id: string, peer: string): MemberRecord {
  return { id, peer, resp: '', http: '', incarnation: '' };
}

describe('peerAddressBook', () => {
  const configured = new Map([
    ['n1', at(7001)],
    ['n2', at(7002)],
    ['n3', at(7003)],
  ]);

  it('lists the registered address first, then the configured one, never itself', () => {
    const unusable: MemberRecord[] = [];
    const book = peerAddressBook({
      self: 'n1',
      configured,
      records: [
        record('n1', '127.0.0.1:8001'),
        record('n2', '127.0.0.1:8002'),
        record('n3', '127.0.0.1:7003'),
        record('n4', '127.0.0.1:8004'),
      ],
      onUnusable: (r) => unusable.push(r),
    });
    expect(book).toEqual(
      new Map([
        [nodeId('n2'), [at(8002), at(7002)]],
        [nodeId('n3'), [at(7003)]], // registered where it was configured: listed once
        [nodeId('n4'), [at(8004)]], // joined later: known only from the registry
      ]),
    );
    expect(unusable).toEqual([]);
  });

  it('lets a later record win over an earlier one, and skips one that does not parse', () => {
    const unusable: MemberRecord[] = [];
    const book = peerAddressBook({
      self: 'n1',
      configured,
      records: [record('n2', '127.0.0.1:9002'), record('n2', '127.0.0.1:8002'), record('n3', 'x')],
      onUnusable: (r) => unusable.push(r),
    });
    expect(book.get(nodeId('n2'))).toEqual([at(8002), at(7002)]);
    expect(book.get(nodeId('n3'))).toEqual([at(7003)]);
    expect(unusable).toEqual([record('n3', 'x')]);
  });
});
