/** Random selection helpers; randomness always comes from the context. */
import type { Ctx } from './context.js';

/**
 * Up to `count` distinct elements of a collection of `size` elements, in
 * random order (all of them, in iteration order, when count >= size).
 * O(size): Map and Set have no random access.
 */
export function sampleDistinct<T>(values: Iterable<T>, size: number, count: number, ctx: Ctx): T[] {
  const all = [...values];
  if (count >= size) return all;
  for (let i = 0; i < count; i++) {
    const j = i + ctx.randomInt(all.length - i);
    const t = all[i] as T;
    all[i] = all[j] as T;
    all[j] = t;
  }
  return all.slice(0, count);
}
