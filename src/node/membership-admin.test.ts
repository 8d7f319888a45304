import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { simple } from '../kv/reply.js';
import { type ConfChange, type NodeId, nodeId } from '../raft/types.js';
import { applyMemberEntry, type MemberEntry, MemberRegistry } from './member-registry.js';
import { addMember, type MembershipHost, removeMember } from './membership-admin.js';

/** The leader's side of the operations over an in-memory registry and membership. */
function leaderHost(voters: string[], learners: string[] = []) {
  const registry = new MemberRegistry();
  const changes: ConfChange[] = [];
  const state = { voters: voters.map(nodeId), learners: learners.map(nodeId) };
  const host: MembershipHost = {
    id: nodeId(voters[0] ?? 'n1'),
    isLeader: true,
    registry,
    view: () => ({
      leader: nodeId(voters[0] ?? 'n1'),
      voters: state.voters,
      learners: state.learners,
      lastIndex: 10,
      followers: [...state.voters, ...state.learners]
        .filter((v) => v !== voters[0])
        .map((id: NodeId) => ({ id, match: 10, active: true })),
    }),
    proposeMember: async (entry: MemberEntry) => {
      applyMemberEntry(registry, entry);
      return simple('OK');
    },
    proposeConfChange: async (change: ConfChange) => {
      changes.push(change);
      if (change.type === 'addLearner') state.learners = [...state.learners, change.node];
      if (change.type === 'removeNode') {
        state.voters = state.voters.filter((v) => v !== change.node);
        state.learners = state.learners.filter((v) => v !== change.node);
      }
    },
    log: pino({ level: 'silent' }),
  };
  return { host, registry, changes };
}

const record = (id: string, incarnation: string) => ({
  id,
  peer: `10.0.0.9:9379`,
  resp: '',
  http: '',
  incarnation,
});

describe('membership operations on the leader', () => {
  it('adds a node as a learner once; repeating it is harmless', async () => {
    const { host, registry, changes } = leaderHost(['n1', 'n2', 'n3']);
    expect(await addMember(host, record('n4', 'a'.repeat(32)))).toMatchObject({ ok: true });
    expect(changes).toEqual([{ type: 'addLearner', node: 'n4' }]);
    expect(await addMember(host, record('n4', 'a'.repeat(32)))).toMatchObject({
      ok: true,
      message: expect.stringMatching(/already a member/),
    });
    expect(changes).toHaveLength(1);
    // An operator's re-add names no incarnation: the known one stays.
    expect(await addMember(host, record('n4', ''))).toMatchObject({ ok: true });
    expect(registry.get('n4')?.incarnation).toBe('a'.repeat(32));
  });

  it('refuses a member under another data directory until it is removed', async () => {
    const { host } = leaderHost(['n1', 'n2', 'n3']);
    await addMember(host, record('n4', 'a'.repeat(32)));
    const refused = await addMember(host, record('n4', 'b'.repeat(32)));
    expect(refused).toMatchObject({ ok: false, status: 409 });
    expect(await removeMember(host, nodeId('n4'), false)).toMatchObject({ ok: true });
    expect(await addMember(host, record('n4', 'b'.repeat(32)))).toMatchObject({ ok: true });
  });

  it('does not remove itself, and says who to ask when not the leader', async () => {
    const { host } = leaderHost(['n1', 'n2', 'n3']);
    expect(await removeMember(host, nodeId('n1'), false)).toMatchObject({ ok: false, status: 409 });
    const follower = { ...host, isLeader: false };
    expect(await addMember(follower, record('n5', ''))).toMatchObject({ ok: false, status: 421 });
  });
});
