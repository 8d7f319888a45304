/**
 * How far V8 may grow the old generation past its live data between major
 * collections (issue 8). V8's own heuristic let a node holding a million keys
 * keep about twice its live heap; a fixed small percentage fixes that but
 * makes a small heap collect every few MB of promoted data (the raft log's
 * entries are promoted at the write rate), which cost about a fifth of the
 * leader's throughput under pipelined writes. So the slack is `percent` of
 * the heap, but at least `slackMinBytes`.
 *
 * V8 reads --heap-growing-percent whenever it sets the next limit after a
 * collection, so the governor re-derives it from the heap's size once a
 * second; the new value takes effect at the next collection.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/** Slack allowed however small the heap. */
export const heapSlackMinBytes = 32 * 1024 * 1024;
/** V8's own ceiling for its growing factor is 4x; ours stays under it. */
const percentMax = 300;
/** Settings change in steps of this much, so a steady heap sets the flag rarely. */
const percentStep = 5;

/** The growing percent for a heap of `heapBytes`: `percent`, or more to give `slackMinBytes`. */
export function heapGrowthPercentFor(
  heapBytes: number,
  percent: number,
  slackMinBytes: number = heapSlackMinBytes,
): number {
  const forSlack = heapBytes > 0 ? (100 * slackMinBytes) / heapBytes : percentMax;
  const wanted = Math.max(percent, Math.ceil(forSlack / percentStep) * percentStep);
  return Math.min(percentMax, wanted);
}

/**
 * Keeps V8's growing percent at `heapGrowthPercentFor(heap size)`; returns a
 * function that stops doing so. `percent` 0 leaves V8's heuristic alone.
 */
export function governHeapGrowth(percent: number, onChange: (percent: number) => void): () => void {
  if (percent === 0 || process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) {
    return () => undefined;
  }
  let current = -1;
  const update = (): void => {
    const next = heapGrowthPercentFor(getHeapStatistics().used_heap_size, percent);
    if (next === current) return;
    current = next;
    setFlagsFromString(`--heap-growing-percent=${next}`);
    onChange(next);
  };
  update();
  const timer = setInterval(update, 1000);
  timer.unref();
  return () => clearInterval(timer);
}
