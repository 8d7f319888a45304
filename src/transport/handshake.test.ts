import { describe, expect, it } from 'vitest';
import { nodeId } from '../raft/types.js';
import { checkHello, type HelloPolicy } from './handshake.js';
import { type Hello, protocolVersion } from './protocol.js';

const n1 = nodeId('n1');
const n2 = nodeId('n2');
const n3 = nodeId('n3');

const policy: HelloPolicy = { self: n2, clusterId: 'c', isMember: (id) => id === n1 || id === n3 };
const good: Hello = { version: protocolVersion, clusterId: 'c', from: n1, to: n2 };

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
  ])('refuses with %s', (code, change) => {
    expect(checkHello(policy, { ...good, ...change })?.code).toBe(code);
  });

  it('reports the first problem: version before cluster id before receiver', () => {
    const h: Hello = { version: protocolVersion + 1, clusterId: 'other', from: n3, to: n3 };
    expect(checkHello(policy, h)?.code).toBe('version');
    expect(checkHello(policy, { ...h, version: protocolVersion })?.code).toBe('clusterId');
  });
});
