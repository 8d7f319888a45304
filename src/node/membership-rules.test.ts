import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type NodeId, nodeId } from '../raft/types.js';
import { learnerToPromote, quorumProblem } from './membership-rules.js';

const ids = (...names: string[]): NodeId[] => names.map(nodeId);

describe('quorumProblem', () => {
  it('allows removing a voter when the rest still has a healthy majority', () => {
    const health = { voters: ids('n1', 'n2', 'n3'), healthy: new Set(ids('n1', 'n2', 'n3')) };
    expect(quorumProblem(health, { type: 'removeNode', node: nodeId('n3') })).toBeNull();
  });

  it('refuses removing a healthy voter while another is down', () => {
    const health = { voters: ids('n1', 'n2', 'n3'), healthy: new Set(ids('n1', 'n2')) };
    const problem = quorumProblem(health, { type: 'removeNode', node: nodeId('n2') });
    expect(problem).toMatch(/2 voters of which 1 are reachable .* the 2 a quorum needs.*--force/);
    // Removing the one that is down is what the operator should do.
    expect(quorumProblem(health, { type: 'removeNode', node: nodeId('n3') })).toBeNull();
  });

  it('refuses adding a voter that is not caught up when it would break the quorum', () => {
    const health = { voters: ids('n1', 'n2'), healthy: new Set(ids('n1')) };
    expect(quorumProblem(health, { type: 'addVoter', node: nodeId('n3') })).toMatch(/adding n3/);
    const healthy = { voters: ids('n1', 'n2', 'n3'), healthy: new Set(ids('n1', 'n2', 'n3')) };
    expect(quorumProblem(healthy, { type: 'addVoter', node: nodeId('n4') })).toBeNull();
  });

  it('never allows a change that leaves fewer healthy voters than a majority (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 7 }),
        fc.func(fc.boolean()),
        fc.integer({ min: 1, max: 10 }),
        fc.boolean(),
        (numbers, isHealthy, target, add) => {
          const voters = numbers.map((n) => nodeId(`n${n}`));
          const healthy = new Set(voters.filter((v) => isHealthy(v)));
          const node = nodeId(`n${target}`);
          const change = add
            ? ({ type: 'addVoter', node } as const)
            : ({ type: 'removeNode', node } as const);
          const after = add ? [...new Set([...voters, node])] : voters.filter((v) => v !== node);
          const ok = quorumProblem({ voters, healthy }, change) === null;
          const healthyAfter = after.filter((v) => healthy.has(v)).length;
          expect(ok).toBe(after.length > 0 && healthyAfter > after.length / 2);
        },
      ),
    );
  });
});

describe('learnerToPromote', () => {
  const learners = [
    { id: nodeId('n4'), match: 90, active: true },
    { id: nodeId('n5'), match: 100, active: false },
    { id: nodeId('n6'), match: 99, active: true },
  ];
  it('picks an active learner within the lag bound', () => {
    expect(learnerToPromote(learners, 100, 5, () => false)).toBe('n6');
    expect(learnerToPromote(learners, 100, 10, () => false)).toBe('n4');
  });
  it('skips learners asked to stay learners, and returns null when none qualifies', () => {
    expect(learnerToPromote(learners, 100, 10, (id) => id !== 'n5')).toBeNull();
    expect(learnerToPromote(learners, 200, 10, () => false)).toBeNull();
  });
});
