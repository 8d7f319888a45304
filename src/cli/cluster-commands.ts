/**
 * `tandem status` and `tandem failover`: cluster tools over the admin HTTP API.
 */

import type { Command } from 'commander';
import {
  endpointsOrExit,
  findLeader,
  type Probe,
  probeAll,
  sleep,
  transferLeadership,
} from './admin-client.js';

const failoverTimeoutMs = 15_000;

export function registerClusterCommands(program: Command): void {
  program
    .command('status')
    .description('show every node: role, term, commit, applied, lag, health')
    .option(
      '--endpoints <urls>',
      'admin HTTP endpoints, comma-separated (default: tandem start ports)',
    )
    .option('--json', 'print JSON instead of a table')
    .action(async (options: { endpoints?: string; json?: boolean }) => {
      process.exitCode = await status(options);
    });
  program
    .command('failover')
    .description('hand leadership to another node (manual failover)')
    .option('--to <id>', 'the new leader (default: the most caught-up follower)')
    .option(
      '--endpoints <urls>',
      'admin HTTP endpoints, comma-separated (default: tandem start ports)',
    )
    .action(async (options: { to?: string; endpoints?: string }) => {
      process.exitCode = await failover(options);
    });
}

/** One table row per endpoint; lag as the leader sees each follower. */
export function statusRows(probes: readonly Probe[]): string[][] {
  const leader = findLeader(probes);
  const lagOf = new Map(leader?.status.followers.map((f) => [f.id, f.lag]) ?? []);
  const rows = [['NODE', 'ENDPOINT', 'ROLE', 'TERM', 'COMMIT', 'APPLIED', 'LAG', 'HEALTH']];
  for (const p of probes) {
    if (!p.ok) {
      rows.push(['?', p.endpoint, '-', '-', '-', '-', '-', `down (${p.error})`]);
      continue;
    }
    const s = p.status;
    const lag = s.role === 'leader' ? 0 : lagOf.get(s.id);
    rows.push([
      s.id,
      p.endpoint,
      s.role,
      String(s.term),
      String(s.commit),
      String(s.applied),
      lag === undefined ? '-' : String(lag),
      p.ready ? 'ready' : 'not ready',
    ]);
  }
  return rows;
}

export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows)
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function status(options: { endpoints?: string; json?: boolean }): Promise<number> {
  const endpoints = endpointsOrExit(options.endpoints);
  if (endpoints === null) return 2;
  const probes = await probeAll(endpoints);
  if (options.json === true) process.stdout.write(`${JSON.stringify(probes, null, 2)}\n`);
  else process.stdout.write(`${formatTable(statusRows(probes))}\n`);
  return probes.every((p) => p.ok && p.ready) ? 0 : 1;
}

async function failover(options: { to?: string; endpoints?: string }): Promise<number> {
  const endpoints = endpointsOrExit(options.endpoints);
  if (endpoints === null) return 2;
  const leader = findLeader(await probeAll(endpoints));
  if (leader === undefined) {
    process.stderr.write('tandem failover: no node reports itself leader; try again shortly\n');
    return 1;
  }
  const from = leader.status.id;
  const started = performance.now();
  const answer = await transferLeadership(leader.endpoint, options.to);
  if (answer.status !== 202) {
    process.stderr.write(
      `tandem failover: ${from} refused (HTTP ${answer.status}): ${String(answer.body.error)}\n`,
    );
    return 1;
  }
  const to = String(answer.body.to);
  process.stdout.write(`transferring leadership ${from} -> ${to} (term ${leader.status.term})\n`);
  const deadline = started + failoverTimeoutMs;
  while (performance.now() < deadline) {
    const now = findLeader(await probeAll(endpoints));
    if (now !== undefined && now.status.id !== from) {
      const ms = Math.round(performance.now() - started);
      process.stdout.write(
        `new leader: ${now.status.id} (term ${now.status.term}) after ${ms} ms\n`,
      );
      return now.status.id === to ? 0 : 1;
    }
    await sleep(20);
  }
  process.stderr.write(
    `tandem failover: no new leader within ${failoverTimeoutMs} ms; ${from} may still lead\n`,
  );
  return 1;
}
