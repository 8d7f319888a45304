import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('ProcessCluster', () => {
  // Without the early exit check this waits out the 60 s settle timeout and
  // fails on the test's own timeout instead.
  it("fails as soon as a node exits, with the node's own message", {
    timeout: 20_000,
  }, async () => {
    // Read when the module loads: run the sources, not a possibly stale dist/.
    vi.stubEnv('TANDEM_BENCH_ENTRY', 'src/cli/main.ts');
    vi.stubEnv('TANDEM_BENCH_NODE_FLAGS', '--import tsx');
    const { ProcessCluster } = await import('./process-cluster.js');
    const root = await mkdtemp(join(tmpdir(), 'tandem-process-cluster-'));
    const cluster = await ProcessCluster.plan(root, 1, ['--snapshot-mb', '100000']);
    try {
      await expect(cluster.start()).rejects.toThrow(
        "node n1 exited (code 2) before the cluster settled; its last output:\ntandem node: --snapshot-mb must be an integer from 1 to 65536, got '100000'",
      );
    } finally {
      await cluster.stop();
      await rm(root, { recursive: true, force: true });
    }
  });
});
