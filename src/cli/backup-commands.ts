/**
 * `tandem backup --to FILE` and `tandem restore --from FILE --data DIR --id
 * ID` (issue 5). A backup is taken from any node, consistent as of a
 * committed index, checksummed; it is written to a temporary file, fsynced
 * and renamed, so FILE is either complete or absent. A restore makes DIR the
 * first node of a new cluster (the others join with `--join`).
 */

import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { Command } from 'commander';
import { restoreBackup } from '../node/restore.js';
import { nodeId } from '../raft/types.js';
import { NodeFileSystem } from '../storage/node-fs.js';
import { endpointsOrExit } from './admin-client.js';

/** A backup taking longer than this is abandoned (a limit on everything). */
const backupTimeoutMs = 60 * 60 * 1000;

export function registerBackupCommands(program: Command): void {
  program
    .command('backup')
    .description('write a consistent, checksummed backup of the cluster to a file')
    .requiredOption('--to <file>', 'where to write the backup')
    .option('--endpoints <urls>', 'admin HTTP endpoints to try, comma-separated')
    .action(async (o: { to: string; endpoints?: string }) => {
      process.exitCode = await backup(o.to, o.endpoints);
    });
  program
    .command('restore')
    .description('make a new data directory the first node of a new cluster, from a backup')
    .requiredOption('--from <file>', 'the backup file')
    .requiredOption('--data <dir>', 'a new, empty data directory')
    .requiredOption('--id <id>', 'the id of the new node')
    .action(async (o: { from: string; data: string; id: string }) => {
      process.exitCode = await restore(o.from, o.data, o.id);
    });
}

async function backup(to: string, endpointsText: string | undefined): Promise<number> {
  const endpoints = endpointsOrExit(endpointsText);
  if (endpoints === null) return 2;
  const temp = `${to}.tmp`;
  for (const endpoint of endpoints) {
    let response: Response;
    try {
      response = await fetch(`${endpoint}/v1/admin/backup`, {
        signal: AbortSignal.timeout(backupTimeoutMs),
      });
    } catch (failure) {
      process.stderr.write(
        `tandem backup: ${endpoint}: ${(failure as Error).message}; trying the next\n`,
      );
      continue;
    }
    if (response.status !== 200 || response.body === null) {
      const text = await response.text();
      process.stderr.write(`tandem backup: ${endpoint} answered ${response.status}: ${text}\n`);
      continue;
    }
    const file = await open(temp, 'w');
    let bytes = 0;
    try {
      for await (const chunk of response.body) {
        await file.write(chunk);
        bytes += chunk.length;
      }
      await file.sync();
    } catch (failure) {
      await file.close();
      await rm(temp, { force: true });
      process.stderr.write(
        `tandem backup: reading from ${endpoint} failed: ${(failure as Error).message}\n`,
      );
      return 1;
    }
    await file.close();
    await rename(temp, to);
    const index = response.headers.get('x-tandem-backup-index');
    process.stdout.write(`backup of ${endpoint} as of index ${index}: ${bytes} bytes in ${to}\n`);
    return 0;
  }
  process.stderr.write('tandem backup: no node could take a backup\n');
  return 1;
}

async function restore(from: string, data: string, id: string): Promise<number> {
  try {
    const result = await restoreBackup(
      new NodeFileSystem(),
      data,
      createReadStream(from, { highWaterMark: 1024 * 1024 }),
      nodeId(id),
    );
    const { snapshot, backup } = result;
    process.stdout.write(
      `restored ${from} (cluster ${backup.clusterId}, taken on ${backup.node} at ${backup.createdAt}) ` +
        `into ${data} as of index ${snapshot.index}, term ${snapshot.term}\n` +
        `start it as the first node of a new cluster: tandem node --id ${id} --data ${data} ` +
        `--initial-cluster ${id}=HOST:PEERPORT ...; then add others with --join\n`,
    );
    return 0;
  } catch (failure) {
    process.stderr.write(`tandem restore: ${(failure as Error).message}\n`);
    return 1;
  }
}
