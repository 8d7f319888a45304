/**
 * CPU time and peak resident memory of server processes, read from /proc
 * (Linux): what each node of a benchmarked system cost during a workload.
 */

import { readFile, writeFile } from 'node:fs/promises';
import { statField } from '../src/cli/proc-stat.js';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux). */
const ticksPerSecond = 100;

/** User + system CPU seconds the process has used so far; null if it is gone. */
export async function cpuSeconds(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // utime and stime (proc(5)).
    return (statField(stat, 14) + statField(stat, 15)) / ticksPerSecond;
  } catch {
    return null;
  }
}

/** Peak resident set size (VmHWM) in bytes since start or the last reset; null if gone. */
export async function peakRssBytes(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/** Current resident set size (VmRSS) in bytes; null if gone. */
export async function rssBytes(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/** Restarts the peak RSS count at the current RSS (clear_refs 5); false if not permitted. */
export async function resetPeakRss(pid: number): Promise<boolean> {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface NodeCost {
  readonly name: string;
  readonly cpuSeconds: number;
  readonly peakRssMb: number;
}

/** Measures CPU used and peak RSS of `pids` while `work` runs. */
export async function measureCost<T>(
  pids: ReadonlyMap<string, number>,
  work: () => Promise<T>,
): Promise<{ result: T; costs: NodeCost[] }> {
  const before = new Map<string, number>();
  for (const [name, pid] of pids) {
    await resetPeakRss(pid);
    before.set(name, (await cpuSeconds(pid)) ?? 0);
  }
  const result = await work();
  const costs: NodeCost[] = [];
  for (const [name, pid] of pids) {
    const cpu = ((await cpuSeconds(pid)) ?? 0) - (before.get(name) ?? 0);
    const peak = (await peakRssBytes(pid)) ?? 0;
    costs.push({
      name,
      cpuSeconds: Math.round(cpu * 100) / 100,
      peakRssMb: Math.round(peak / 2 ** 20),
    });
  }
  return { result, costs };
}
