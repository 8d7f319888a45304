#!/usr/bin/env node
/**
 * The `tandem` command: `node` runs a server, `start` a local cluster,
 * `status` and `failover` administer a running cluster.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerBackupCommands } from './backup-commands.js';
import { registerClusterCommands } from './cluster-commands.js';
import { registerFileCommands } from './file-commands.js';
import { registerMembersCommands } from './members-commands.js';
import { registerNodeCommand } from './node-command.js';
import { registerStartCommand } from './start-command.js';

function version(): string {
  const url = new URL('../../../package.json', import.meta.url);
  try {
    const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    // Run from src/ (tsx) the package file is one level closer.
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  }
}

const program = new Command('tandem')
  .description(
    'Tandem: a replicated, strongly consistent key-value store speaking the Redis protocol',
  )
  .version(`tandem ${version()}`, '-v, --version')
  .showHelpAfterError()
  .enablePositionalOptions();
registerNodeCommand(program);
registerStartCommand(program);
registerClusterCommands(program);
registerMembersCommands(program);
registerBackupCommands(program);
registerFileCommands(program);

await program.parseAsync(process.argv);
