#!/usr/bin/env node
/**
 * The `tandem` command. For now it reports its version and what exists; the
 * server (`tandem node`), the cluster tools and the file commands arrive
 * with the issues that build them.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const usage = `Usage: tandem [--version] [--help]

Tandem is a replicated, strongly consistent key-value and file store.
This build contains the consensus core and its simulator only:
  npm run sim -- --seeds 100    run the deterministic simulator
The server (tandem node) is not part of this build yet.`;

function version(): string {
  const url = new URL('../../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

function main(argv: readonly string[]): number {
  let values: { version?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { version: { type: 'boolean', short: 'v' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`tandem: ${(err as Error).message}\n\n${usage}\n`);
    return 2;
  }
  if (values.version === true) {
    process.stdout.write(`tandem ${version()}\n`);
    return 0;
  }
  process.stdout.write(`${usage}\n`);
  return values.help === true ? 0 : 2;
}

process.exitCode = main(process.argv.slice(2));
