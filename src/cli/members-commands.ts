/**
 * `tandem members list|add|promote|remove` (issue 5): membership changes
 * over the admin HTTP API, sent to the leader. Removing the leader hands
 * leadership over first. A change that would leave the cluster without a
 * healthy quorum is refused by the leader with an explanation, unless
 * `--force`.
 */

import type { Command } from 'commander';
import {
  endpointsOrExit,
  findLeader,
  probeAll,
  requestJson,
  sleep,
  transferLeadership,
} from './admin-client.js';
import { formatTable } from './cluster-commands.js';

const leaderWaitMs = 15_000;

interface MembersView {
  readonly leader: string;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
  readonly members: readonly {
    id: string;
    peer: string;
    resp: string;
    http: string;
    incarnation: string;
  }[];
  readonly followers: readonly { id: string; match: number; lag: number; active: boolean }[];
}

const endpointsOption = [
  '--endpoints <urls>',
  'admin HTTP endpoints, comma-separated (default: tandem start ports)',
] as const;

export function registerMembersCommands(program: Command): void {
  const members = program.command('members').description('list and change the cluster members');
  members
    .command('list')
    .description('every member: role, addresses, replication lag')
    .option(...endpointsOption)
    .option('--json', 'print JSON instead of a table')
    .action(async (o: { endpoints?: string; json?: boolean }) => {
      process.exitCode = await run(o.endpoints, (leader) => list(leader, o.json === true));
    });
  members
    .command('add <id>')
    .description('add a member as a learner; it is promoted once caught up (unless --learner)')
    .requiredOption('--peer <host:port>', "the new member's peer address")
    .option('--resp <host:port>', "the new member's RESP address", '')
    .option('--http <host:port>', "the new member's admin HTTP address", '')
    .option('--learner', 'keep it a learner (never promoted automatically)')
    .option(...endpointsOption)
    .action(
      async (
        id: string,
        o: { peer: string; resp: string; http: string; learner?: boolean; endpoints?: string },
      ) => {
        const record = {
          id,
          peer: o.peer,
          resp: o.resp,
          http: o.http,
          learner: o.learner === true,
        };
        process.exitCode = await run(o.endpoints, (leader) =>
          change(leader, 'POST', '/v1/admin/members', record),
        );
      },
    );
  members
    .command('promote <id>')
    .description('make a learner a voter')
    .option('--force', 'even if the cluster would be left without a healthy quorum')
    .option(...endpointsOption)
    .action(async (id: string, o: { force?: boolean; endpoints?: string }) => {
      const path = `/v1/admin/members/${encodeURIComponent(id)}/promote${force(o.force)}`;
      process.exitCode = await run(o.endpoints, (leader) => change(leader, 'POST', path, null));
    });
  members
    .command('remove <id>')
    .description('remove a member (the leader hands leadership over first)')
    .option('--force', 'even if the cluster would be left without a healthy quorum')
    .option(...endpointsOption)
    .action(async (id: string, o: { force?: boolean; endpoints?: string }) => {
      process.exitCode = await run(o.endpoints, (leader, endpoints) =>
        remove(leader, endpoints, id, o.force === true),
      );
    });
}

function force(flag: boolean | undefined): string {
  return flag === true ? '?force=true' : '';
}

type Leader = { readonly id: string; readonly endpoint: string };

/** Finds the leader among the endpoints, then runs `action` against it. */
async function run(
  endpointsText: string | undefined,
  action: (leader: Leader, endpoints: readonly string[]) => Promise<number>,
): Promise<number> {
  const endpoints = endpointsOrExit(endpointsText);
  if (endpoints === null) return 2;
  const leader = await waitForLeader(endpoints, null);
  if (leader === null) {
    process.stderr.write('tandem members: no node reports itself leader; try again shortly\n');
    return 1;
  }
  return action(leader, endpoints);
}

async function waitForLeader(
  endpoints: readonly string[],
  not: string | null,
): Promise<Leader | null> {
  const deadline = performance.now() + leaderWaitMs;
  do {
    const found = findLeader(await probeAll(endpoints));
    if (found !== undefined && found.status.id !== not) {
      return { id: found.status.id, endpoint: found.endpoint };
    }
    await sleep(100);
  } while (performance.now() < deadline);
  return null;
}

async function list(leader: Leader, json: boolean): Promise<number> {
  const answer = await requestJson<MembersView>('GET', `${leader.endpoint}/v1/admin/members`, null);
  if (answer.status !== 200) return fail(answer.body);
  const view = answer.body as MembersView;
  if (json) {
    process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    return 0;
  }
  const lag = new Map(view.followers.map((f) => [f.id, f]));
  const ids = [...new Set([...view.voters, ...view.learners, ...view.members.map((m) => m.id)])];
  const rows = [['ID', 'ROLE', 'PEER', 'RESP', 'HTTP', 'LAG', 'INCARNATION']];
  for (const id of ids.sort()) {
    const record = view.members.find((m) => m.id === id);
    const role =
      id === view.leader
        ? 'leader'
        : view.voters.includes(id)
          ? 'voter'
          : view.learners.includes(id)
            ? 'learner'
            : 'removed';
    const f = lag.get(id);
    rows.push([
      id,
      role,
      record?.peer || '-',
      record?.resp || '-',
      record?.http || '-',
      id === view.leader ? '0' : f === undefined ? '-' : `${f.lag}${f.active ? '' : ' (down)'}`,
      record?.incarnation.slice(0, 8) || '-',
    ]);
  }
  process.stdout.write(`${formatTable(rows)}\n`);
  return 0;
}

async function change(
  leader: Leader,
  method: 'POST' | 'DELETE',
  path: string,
  body: unknown,
): Promise<number> {
  const answer = await requestJson<{ message?: string }>(method, `${leader.endpoint}${path}`, body);
  if (answer.status !== 200) return fail(answer.body);
  process.stdout.write(`${String(answer.body.message)}\n`);
  return 0;
}

async function remove(
  leader: Leader,
  endpoints: readonly string[],
  id: string,
  forced: boolean,
): Promise<number> {
  let target = leader;
  if (leader.id === id) {
    process.stdout.write(`${id} leads: handing leadership over first\n`);
    const moved = await transferLeadership(leader.endpoint, undefined);
    if (moved.status !== 202) return fail(moved.body);
    const next = await waitForLeader(endpoints, id);
    if (next === null) {
      process.stderr.write(`tandem members: no new leader within ${leaderWaitMs} ms\n`);
      return 1;
    }
    process.stdout.write(`new leader: ${next.id}\n`);
    target = next;
  }
  return change(
    target,
    'DELETE',
    `/v1/admin/members/${encodeURIComponent(id)}${force(forced)}`,
    null,
  );
}

function fail(body: Record<string, unknown>): number {
  process.stderr.write(`tandem members: ${String(body.error ?? JSON.stringify(body))}\n`);
  return 1;
}
