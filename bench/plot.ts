// bench/results.svg: throughput and service latency per contender, one bar chart each, so a
// regression shows at a glance beside bench/results.md. Plain SVG, no dependency.
import type { Row } from "./summary.js";

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

export function plotSvg(rows: Row[], caption: string): string {
  const height = TOP + rows.length * (BAR_H + GAP) + 30;
  const width = PANEL_W * 2 + 40;
  const body = [
    ...panel(rows, 10, { title: "throughput (actions/s)", values: (r) => [r.perSecond], format: (v) => v.toFixed(2) }),
    ...panel(rows, PANEL_W + 30, { title: "service latency p50 / p99 (ms)", values: (r) => [r.serviceP50, r.serviceP99], format: (v) => v.toFixed(0) }),
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
