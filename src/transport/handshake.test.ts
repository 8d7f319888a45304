import { describe, expect, it } from 'vitest';
import { nodeId } from '../raft/types.js';
import { checkHello, type HelloPolicy } from './handshake.js';
import { type Hello, protocolVersion } from './protocol.js';

const n1 = nodeId('n1');
const n2 = nodeId('n2');
const n3 = nodeId('n3');

const known = 'a'.repeat(32);
const policy: HelloPolicy = {
  self: n2,
  clusterId: 'c',
  isMember: (id) => id === n1 || id === n3,
  expectedIncarnation: (id) => (id === n1 ? known : ''),
};
const good: Hello = {
  version: protocolVersion,
  clusterId: 'c',
  from: n1,
  to: n2,
  incarnation: known,
};

describe('checkHello', () => {
  it('accepts a member with a lower id that means to reach us', () => {
    expect(checkHello(policy, good)).toBeNull();
  });

  it.each<[string, Partial<Hello>]>([
    ['version', { version: protocolVersion + 1 }],
    ['clusterId', { clusterId: 'other' }],
    ['wrongReceiver', { to: n3 }],
    ['unknownMember', { from: nodeId('n0') }],
    ['direction', { from: n3 }],
    ['incarnation', { incarnation: 'b'.repeat(32) }],
  ])('refuses with %s', (code, change) => {
    expect(checkHello(policy, { ...good, ...change })?.code).toBe(code);
  });

  it('reports the first problem: version before cluster id before receiver', () => {
    const h: Hello = {
      version: protocolVersion + 1,
      clusterId: 'other',
      from: n3,
      to: n3,
      incarnation: '',
    };
    expect(checkHello(policy, h)?.code).toBe('version');
    expect(checkHello(policy, { ...h, version: protocolVersion })?.code).toBe('clusterId');
  });

  it('accepts any incarnation from a member whose incarnation is not known yet', () => {
    const n0 = nodeId('n0');
    const open: HelloPolicy = { ...policy, self: n3, isMember: () => true };
    expect(checkHello(open, { ...good, from: n0, to: n3, incarnation: 'c'.repeat(32) })).toBeNull();
    const refusal = checkHello(policy, { ...good, incarnation: '' });
    expect(refusal?.reason).toMatch(/data directory was replaced .* add it again as a new member/);
  });
});
