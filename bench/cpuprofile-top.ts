/**
 * The functions a V8 CPU profile (.cpuprofile, from `node --cpu-prof`) spent
 * the most time in, by self time and by total (inclusive) time:
 *
 *   npx tsx bench/cpuprofile-top.ts FILE.cpuprofile [--top 30]
 */

import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' } },
});
const file = positionals[0];
if (file === undefined) throw new Error('usage: cpuprofile-top FILE.cpuprofile [--top N]');
const top = Number(values.top);
const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => {
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);

const label = (n: ProfileNode): string => {
  const { functionName, url, lineNumber } = n.callFrame;
  const where =
    url === '' ? '' : ` ${relative(process.cwd(), url.replace('file://', ''))}:${lineNumber + 1}`;
  return `${functionName || '(anonymous)'}${where}`;
};
const self = new Map<string, number>();
const total = new Map<string, number>();
for (const [id, us] of selfUs) {
  const node = byId.get(id);
  if (node === undefined) continue;
  self.set(label(node), (self.get(label(node)) ?? 0) + us);
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const n = byId.get(at);
    if (n === undefined) break;
    const l = label(n);
    if (seen.has(l)) continue; // recursion counts once
    seen.add(l);
    total.set(l, (total.get(l) ?? 0) + us);
  }
}
const show = (title: string, map: Map<string, number>): void => {
  console.log(`\n${title} (of ${(totalUs / 1e6).toFixed(2)} s sampled)`);
  for (const [l, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * us) / totalUs).toFixed(1).padStart(5)}%  ${l}`);
  }
};
show('self time', self);
show('total time', total);
