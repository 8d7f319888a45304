/**
 * A grouped bar chart as SVG: one group per workload, one bar per system,
 * throughput on a log scale (the systems differ by orders of magnitude).
 */

export interface ChartBar {
  readonly group: string;
  readonly series: string;
  readonly value: number;
}

const rowPx = 18;
const groupGapPx = 14;
const labelPx = 300;
const plotPx = 520;
const colors = ['#2f6fde', '#d9534f', '#5cb85c', '#f0ad4e', '#8e44ad'];

function xmlText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

export function barChartSvg(title: string, unit: string, bars: readonly ChartBar[]): string {
  const groups = [...new Set(bars.map((b) => b.group))];
  const series = [...new Set(bars.map((b) => b.series))];
  const positive = bars.map((b) => b.value).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...positive, 1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...positive, 10)));
  const x = (v: number): number =>
    labelPx +
    (plotPx * (Math.log10(Math.max(v, lo)) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const top = 50;
  const height = top + groups.length * (series.length * rowPx + groupGapPx) + 40;
  const width = labelPx + plotPx + 120;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${xmlText(title)}</text>`,
  ];
  series.forEach((s, i) => {
    out.push(
      `<rect x="${labelPx + i * 110}" y="30" width="10" height="10" fill="${colors[i % colors.length]}"/>`,
      `<text x="${labelPx + i * 110 + 14}" y="39">${xmlText(s)}</text>`,
    );
  });
  for (let decade = lo; decade <= hi; decade *= 10) {
    const px = x(decade).toFixed(1);
    out.push(
      `<line x1="${px}" y1="${top - 4}" x2="${px}" y2="${height - 30}" stroke="#ddd"/>`,
      `<text x="${px}" y="${height - 15}" text-anchor="middle">${decade.toLocaleString('en-US')}</text>`,
    );
  }
  out.push(
    `<text x="${labelPx + plotPx / 2}" y="${height - 2}" text-anchor="middle">${xmlText(unit)} (log scale)</text>`,
  );
  let y = top;
  for (const group of groups) {
    out.push(
      `<text x="${labelPx - 8}" y="${y + (series.length * rowPx) / 2 + 4}" text-anchor="end">${xmlText(group)}</text>`,
    );
    series.forEach((s, i) => {
      const bar = bars.find((b) => b.group === group && b.series === s);
      if (bar !== undefined && bar.value > 0) {
        const w = Math.max(1, x(bar.value) - labelPx);
        out.push(
          `<rect x="${labelPx}" y="${y}" width="${w.toFixed(1)}" height="${rowPx - 3}" fill="${colors[i % colors.length]}"/>`,
          `<text x="${(labelPx + w + 4).toFixed(1)}" y="${y + rowPx - 6}">${Math.round(bar.value).toLocaleString('en-US')}</text>`,
        );
      }
      y += rowPx;
    });
    y += groupGapPx;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
