/**
 * A self-contained HTML page with an SVG timeline of a run: one row per
 * client number (each operation a bar from invocation to completion,
 * green ok, grey fail, red unknown — drawn to the end of the run), and the
 * faults as shaded bands with their kind. Operations drawn are capped.
 */

import type { History } from './history.js';
import type { FaultRecord, Summary } from './run.js';

const opsDrawnMax = 20_000;
const rowPx = 6;
const widthPx = 1600;

interface Bar {
  key: string;
  client: number;
  from: number;
  to: number | null;
  status: string;
  label: string;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function timelineHtml(
  history: History,
  faults: readonly FaultRecord[],
  summary: Summary,
): string {
  const bars: Bar[] = [
    ...history.registers.map((o) => ({
      key: o.input.key,
      client: o.client,
      from: o.invoked,
      to: o.returned,
      status: o.status,
      label: `${o.input.op} ${o.input.key} ${JSON.stringify(o.output)}`,
    })),
    ...history.setAdds.map((o) => ({
      key: o.key,
      client: o.client,
      from: o.invoked,
      to: o.returned,
      status: o.status,
      label: `sadd ${o.element}`,
    })),
    ...history.bank.map((o) => ({
      key: 'bank',
      client: o.client,
      from: o.invoked,
      to: o.returned,
      status: o.kind === 'read' ? 'ok' : o.status,
      label:
        o.kind === 'read'
          ? `read ${o.balances.join(',')}`
          : `transfer ${o.from}->${o.to} ${o.amount}`,
    })),
    ...history.files.map((o) => ({
      key: o.path,
      client: o.client,
      from: o.invoked,
      to: o.returned,
      status: o.status,
      label:
        o.kind === 'put'
          ? `put ${o.path} v${o.version} ${o.size} B on ${o.node}`
          : `read ${o.path} on ${o.node}: ${o.found === null ? '404' : `${o.found.size} B ${o.found.sha256.slice(0, 12)}`}`,
    })),
  ].slice(0, opsDrawnMax);
  const end = Math.max(1, ...bars.map((b) => b.to ?? b.from), ...faults.map((f) => f.healMs));
  const clients = [...new Set(bars.map((b) => b.client))].sort((a, b) => a - b);
  const row = new Map(clients.map((c, i) => [c, i]));
  const x = (t: number): number => (t / end) * widthPx;
  const top = 40;
  const height = top + clients.length * rowPx + 20;
  const color: Record<string, string> = { ok: '#2a2', fail: '#999', unknown: '#d22' };
  const badKey = summary.verdicts.find((v) => v.key !== undefined)?.key;
  const parts: string[] = [];
  for (const f of faults) {
    parts.push(
      `<rect x="${x(f.startMs)}" y="0" width="${Math.max(1, x(f.healMs) - x(f.startMs))}" height="${height}" fill="#fc3" opacity="0.25"><title>${escapeHtml(`${f.kind}: ${f.detail} (recovered in ${f.recoveryMs === null ? 'never' : Math.round(f.recoveryMs)} ms)`)}</title></rect>`,
      `<text x="${x(f.startMs)}" y="12" font-size="10">${escapeHtml(f.kind)}</text>`,
    );
  }
  for (const b of bars) {
    const y = top + (row.get(b.client) ?? 0) * rowPx;
    const to = b.to ?? end;
    parts.push(
      `<rect x="${x(b.from)}" y="${y}" width="${Math.max(0.5, x(to) - x(b.from))}" height="${rowPx - 1}" fill="${color[b.status] ?? '#000'}"${b.key === badKey ? ' stroke="#00f" stroke-width="2"' : ''} opacity="${b.to === null ? 0.4 : 1}"><title>${escapeHtml(`client ${b.client} ${b.label} ${b.status} ${(b.from / 1000).toFixed(3)}s–${b.to === null ? '?' : `${(b.to / 1000).toFixed(3)}s`}`)}</title></rect>`,
    );
  }
  for (let s = 0; s <= end / 1000; s += Math.max(1, Math.round(end / 1000 / 20))) {
    parts.push(`<text x="${x(s * 1000)}" y="28" font-size="9">${s}s</text>`);
  }
  const violations = summary.verdicts.flatMap((v) => v.violations.map((l) => `${v.checker}: ${l}`));
  return `<!doctype html><meta charset="utf-8"><title>chaos run seed ${summary.seed}</title>
<body style="font-family:sans-serif">
<h1>Chaos run, seed ${summary.seed}: ${summary.violations} violation(s)</h1>
<p>${summary.operations} operations, ${summary.indeterminate} indeterminate; faults ${escapeHtml(JSON.stringify(summary.faultsByKind))}. Bars: green ok, grey fail, red unknown (pale: never completed); blue outline: the key found not linearizable; yellow bands: faults (hover for details).</p>
<pre>${escapeHtml(violations.join('\n\n'))}</pre>
<svg xmlns="http://www.w3.org/2000/svg" width="${widthPx}" height="${height}">${parts.join('')}</svg>
</body>`;
}
