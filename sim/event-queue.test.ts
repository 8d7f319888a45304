import { describe, expect, it } from 'vitest';
import { Prng } from '../src/raft/prng.js';
import { EventQueue } from './event-queue.js';

describe('EventQueue', () => {
  it('pops in time order, ties in insertion order', () => {
    const q = new EventQueue<string>();
    q.push(5, 'e');
    q.push(1, 'a');
    q.push(3, 'c1');
    q.push(3, 'c2');
    q.push(0, 'z');
    q.push(3, 'c3');
    const out: string[] = [];
    for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(e.value);
    expect(out).toEqual(['z', 'a', 'c1', 'c2', 'c3', 'e']);
  });

  it('matches a stable sort on random inputs', () => {
    const random = new Prng(7);
    const q = new EventQueue<number>();
    const pushed: { time: number; n: number }[] = [];
    for (let n = 0; n < 2000; n++) {
      const time = random.int(50);
      pushed.push({ time, n });
      q.push(time, n);
      // Interleave pops so the heap is exercised in every shape.
      if (random.int(4) === 0) {
        const popped = q.pop();
        const expected = [...pushed].sort((a, b) => a.time - b.time || a.n - b.n)[0];
        expect(popped?.value).toBe(expected?.n);
        pushed.splice(pushed.indexOf(expected as { time: number; n: number }), 1);
      }
    }
    const rest: number[] = [];
    for (let e = q.pop(); e !== undefined; e = q.pop()) rest.push(e.value);
    expect(rest).toEqual([...pushed].sort((a, b) => a.time - b.time || a.n - b.n).map((p) => p.n));
  });

  it('refuses impossible times and bounds its size', () => {
    const q = new EventQueue<number>(2);
    expect(() => q.push(Number.NaN, 1)).toThrow(/finite/);
    expect(() => q.push(-1, 1)).toThrow(/>= 0/);
    q.push(1, 1);
    q.push(1, 2);
    expect(() => q.push(1, 3)).toThrow(/exceeded/);
  });
});
