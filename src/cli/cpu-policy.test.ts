import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  applyCpuPolicy,
  type CommandResult,
  chrtAvailable,
  schedBatch,
  threadPolicies,
} from './cpu-policy.js';
import { statField } from './proc-stat.js';

// Without util-linux's chrt the node runs as started, and says so; the real-process test skips.
const withChrt = process.platform === 'linux' && chrtAvailable();
if (!withChrt)
  console.warn(
    'cpu-policy: no chrt (util-linux) here, or not Linux: the real-process test is skipped',
  );
const schedOther = 0;

function depsRunning(result: CommandResult) {
  const calls: string[][] = [];
  return {
    calls,
    deps: {
      platform: 'linux' as const,
      run: (command: string, args: readonly string[]) => {
        calls.push([command, ...args]);
        return result;
      },
    },
  };
}

describe('applyCpuPolicy', () => {
  it('runs chrt for every thread of the process, and leaves it alone for inherit', () => {
    const { calls, deps } = depsRunning({ status: 0, output: '' });
    expect(applyCpuPolicy('batch', 42, deps)).toEqual({ kind: 'applied' });
    expect(calls).toEqual([['chrt', '--batch', '--all-tasks', '--pid', '0', '42']]);
    expect(applyCpuPolicy('inherit', 42, deps)).toEqual({ kind: 'inherited' });
    expect(calls).toHaveLength(1);
  });

  it('says why it failed: chrt missing, chrt refusing, or not Linux', () => {
    const missing = depsRunning({
      status: null,
      output: '',
      error: new Error('spawnSync chrt ENOENT'),
    });
    expect(applyCpuPolicy('batch', 42, missing.deps)).toEqual({
      kind: 'failed',
      reason: 'chrt could not run (spawnSync chrt ENOENT); it is in util-linux',
    });
    const refused = depsRunning({
      status: 1,
      output: 'chrt: failed to set pid 42: Operation not permitted',
    });
    expect(applyCpuPolicy('batch', 42, refused.deps)).toEqual({
      kind: 'failed',
      reason: 'chrt exited with 1: chrt: failed to set pid 42: Operation not permitted',
    });
    const mac = { ...refused.deps, platform: 'darwin' as const };
    expect(applyCpuPolicy('batch', 42, mac)).toEqual({
      kind: 'failed',
      reason: "SCHED_BATCH is Linux's; this is darwin",
    });
  });

  it.runIf(withChrt)(
    'puts every thread of a real process under SCHED_BATCH, and threads started later inherit it',
    async () => {
      // The child starts libuv's pool threads, then, when told, a worker thread.
      const script = [
        "const { Worker } = require('worker_threads');",
        "require('fs').stat('.', () => process.stdout.write('pool '));",
        "process.stdin.once('data', () => {",
        "  const w = new Worker('require(\\'worker_threads\\').parentPort.postMessage(1); setTimeout(() => {}, 60000)', { eval: true });",
        "  w.once('message', () => process.stdout.write('worker '));",
        '});',
        'setTimeout(() => {}, 60000);',
      ].join('\n');
      const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
      const said = (word: string) =>
        new Promise<void>((resolve) => {
          let out = '';
          const onData = (chunk: Buffer) => {
            out += chunk.toString();
            if (out.includes(word)) {
              child.stdout.off('data', onData);
              resolve();
            }
          };
          child.stdout.on('data', onData);
        });
      try {
        const pid = child.pid as number;
        await said('pool');
        // Normal first, whatever this test runs under, so the checks below can fail.
        const other = spawnSync('chrt', ['--other', '--all-tasks', '--pid', '0', String(pid)]);
        expect(other.status).toBe(0);
        const before = threadPolicies(pid);
        expect(before.length).toBeGreaterThan(1);
        expect(before.every((p) => p === schedOther)).toBe(true);
        expect(applyCpuPolicy('batch', pid)).toEqual({ kind: 'applied' });
        expect(threadPolicies(pid).every((p) => p === schedBatch)).toBe(true);
        const worker = said('worker');
        child.stdin.write('go\n');
        await worker;
        const after = threadPolicies(pid);
        expect(after.length).toBeGreaterThan(before.length);
        expect(after.every((p) => p === schedBatch)).toBe(true);
      } finally {
        child.kill('SIGKILL');
      }
    },
  );
});

describe('statField', () => {
  it('reads field 41 even when the name holds spaces and parentheses', () => {
    const after = Array.from({ length: 50 }, (_, i) => String(i + 3));
    after[41 - 3] = '3';
    expect(statField(`1234 (a (b) c) ${after.join(' ')}`, 41)).toBe(3);
    expect(() => statField('1234 (x) S 1', 41)).toThrow('no field 41');
  });
});
