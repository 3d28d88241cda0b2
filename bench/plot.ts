// bench/results.svg: throughput per contender (bars) and the distribution of its service
// latencies (a box per contender: p5 to p95 whiskers, p25 to p75 box, the median, p99 and the
// maximum as ticks), so a regression and a long tail show at a glance beside bench/results.md.
// Plain SVG, no dependency.
import { percentile } from "./stats.js";
import type { Row, Sample } from "./summary.js";

const BAR_H = 18;
const GAP = 8;
const LABEL_W = 150;
const PANEL_W = 330;
const TOP = 44;

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

interface Series {
  title: string;
  /** one or two values per contender: drawn as stacked-over bars, the first darker */
  values: (r: Row) => number[];
  format: (v: number) => string;
}

function panel(rows: Row[], x0: number, s: Series): string[] {
  const max = Math.max(...rows.flatMap((r) => s.values(r)).filter(Number.isFinite), 1e-9);
  const out = [`<text x="${x0}" y="24" font-weight="bold">${esc(s.title)}</text>`];
  rows.forEach((r, i) => {
    const y = TOP + i * (BAR_H + GAP);
    const [first, second] = s.values(r);
    out.push(`<text x="${x0}" y="${y + 13}">${esc(r.contender)}</text>`);
    const bar = (v: number | undefined, fill: string, h: number, dy: number) =>
      v === undefined || !Number.isFinite(v) ? "" : `<rect x="${x0 + LABEL_W}" y="${y + dy}" width="${((v / max) * (PANEL_W - LABEL_W - 60)).toFixed(1)}" height="${h}" fill="${fill}"/>`;
    out.push(bar(second, "#9ecae1", BAR_H, 0), bar(first, "#3182bd", second === undefined ? BAR_H : BAR_H / 2, second === undefined ? 0 : BAR_H / 4));
    const label = [first, second].filter((v): v is number => v !== undefined && Number.isFinite(v)).map(s.format).join(" / ");
    const end = Math.max(...[first, second].filter((v): v is number => v !== undefined && Number.isFinite(v)), 0);
    out.push(`<text x="${x0 + LABEL_W + (end / max) * (PANEL_W - LABEL_W - 60) + 4}" y="${y + 13}">${label}</text>`);
  });
  return out;
}

const DIST_W = 520;

/** One box per contender on a shared axis from 0 to the largest latency seen. */
function distributionPanel(rows: Row[], samples: Sample[], x0: number): string[] {
  const of = new Map(rows.map((r) => [r.contender, samples.filter((s) => s.contender === r.contender).flatMap((s) => s.serviceLatencies)]));
  const max = Math.max(...[...of.values()].flat(), 1);
  const plotX = x0 + LABEL_W;
  // room on the right for the "p50 / p99" label beside the longest tail
  const span = DIST_W - LABEL_W - 80;
  const x = (v: number) => (plotX + (v / max) * span).toFixed(1);
  const out = [`<text x="${x0}" y="24" font-weight="bold">service latency per child (ms): p5–p95, p25–p75 box, median, p99 and max ticks</text>`];
  rows.forEach((r, i) => {
    const y = TOP + i * (BAR_H + GAP);
    const mid = y + BAR_H / 2;
    out.push(`<text x="${x0}" y="${y + 13}">${esc(r.contender)}</text>`);
    const values = of.get(r.contender) ?? [];
    if (values.length === 0) return;
    const p = (q: number) => percentile(values, q);
    out.push(
      `<line x1="${x(p(5))}" x2="${x(p(95))}" y1="${mid}" y2="${mid}" stroke="#555"/>`,
      `<rect x="${x(p(25))}" y="${y + 2}" width="${(Number(x(p(75))) - Number(x(p(25)))).toFixed(1)}" height="${BAR_H - 4}" fill="#9ecae1" stroke="#3182bd"/>`,
      `<line x1="${x(p(50))}" x2="${x(p(50))}" y1="${y}" y2="${y + BAR_H}" stroke="#08306b" stroke-width="2"/>`,
      `<line x1="${x(p(99))}" x2="${x(p(99))}" y1="${y + 4}" y2="${y + BAR_H - 4}" stroke="#d62728"/>`,
      `<line x1="${x(Math.max(...values))}" x2="${x(Math.max(...values))}" y1="${y + 6}" y2="${y + BAR_H - 6}" stroke="#555"/>`,
      `<text x="${Number(x(Math.max(...values))) + 4}" y="${y + 13}" fill="#555">${p(50).toFixed(0)} / ${p(99).toFixed(0)}</text>`,
    );
  });
  const axisY = TOP + rows.length * (BAR_H + GAP);
  out.push(`<line x1="${plotX}" x2="${plotX + span}" y1="${axisY}" y2="${axisY}" stroke="#999"/>`);
  for (let k = 0; k <= 4; k++) out.push(`<text x="${(plotX + (k / 4) * span).toFixed(1)}" y="${axisY + 14}" fill="#555" text-anchor="middle">${((k / 4) * max).toFixed(0)}</text>`);
  return out;
}

export function plotSvg(rows: Row[], samples: Sample[], caption: string): string {
  const height = TOP + rows.length * (BAR_H + GAP) + 44;
  const width = PANEL_W + 30 + DIST_W + 10;
  const body = [
    ...panel(rows, 10, { title: "throughput (actions/s)", values: (r) => [r.perSecond], format: (v) => v.toFixed(2) }),
    ...distributionPanel(rows, samples, PANEL_W + 30),
    `<text x="10" y="${height - 10}" fill="#555">${esc(caption)}</text>`,
  ];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...body.filter(Boolean),
    "</svg>",
    "",
  ].join("\n");
}
