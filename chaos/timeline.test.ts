import { describe, expect, it } from 'vitest';
import { checkAll } from './checkers.js';
import { emptyHistory } from './history.js';
import type { Summary } from './run.js';
import { timelineHtml } from './timeline.js';

describe('timelineHtml', () => {
  it('draws faults and operations, outlining the key found not linearizable', () => {
    const h = emptyHistory(0, 0);
    h.registers.push(
      {
        id: 1,
        client: 0,
        input: { op: 'put', key: 'k', value: 'a' },
        invoked: 0,
        returned: 10,
        status: 'ok',
        output: { ok: true },
      },
      {
        id: 2,
        client: 1,
        input: { op: 'get', key: 'k' },
        invoked: 20,
        returned: 30,
        status: 'ok',
        output: { value: 'b<' },
      },
    );
    const verdicts = checkAll(h);
    expect(verdicts[0]?.key).toBe('k');
    const summary = {
      seed: 1,
      operations: 2,
      indeterminate: 0,
      violations: 1,
      faultsByKind: { 'kill-leader': 1 },
      verdicts,
    } as unknown as Summary;
    const html = timelineHtml(
      h,
      [{ kind: 'kill-leader', detail: 'kill -9 n1', startMs: 5, healMs: 25, recoveryMs: 40 }],
      summary,
    );
    expect(html).toContain('<svg');
    expect(html).toContain('kill-leader');
    expect(html.match(/stroke="#00f"/g)).toHaveLength(2);
    expect(html).toContain('b&#60;'); // values are escaped
  });
});
