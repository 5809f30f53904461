// SVG for the training report, written by hand so the page needs nothing from
// the network: line charts (loss, accuracy, learning rate, throughput) and the
// confusion-matrix heat map.
//
// Machine-checkable structure (tests and scripts read it; keep it stable):
// - a line chart is <svg data-chart="ID" data-points="N">, N its x positions;
//   each series is one <polyline data-series="NAME" data-points="n" points="x,y …">
//   holding exactly its n finite values (non-finite values are not drawn; a
//   series with none has no polyline), so n = N when every value is finite.
//   <circle class="marker"> dots are decoration, drawn only for N <= MAX_MARKERS.
// - the heat map is <svg data-chart="confusion" data-rows="R" data-cols="C"
//   data-total="T">, one <rect class="cell" data-row="i" data-col="j" data-count="n">
//   per cell (R x C of them), T the sum of the counts.
import { escapeHtml } from './escape';

/** One line of a {@link lineChart}: a legend name, a CSS colour and one value per x position. */
export interface Series {
  /** Legend text (escaped). */
  name: string;
  /** A CSS colour, e.g. '#1f77b4'. */
  color: string;
  /** One value per x position; NaN or ±Infinity leaves a gap (not drawn). */
  values: readonly number[];
}

/** What {@link lineChart} draws. */
export interface LineChartSpec {
  /** The `data-chart` name, e.g. 'step-loss'. */
  id: string;
  /** Heading inside the chart (escaped). */
  title: string;
  /** Label under the x axis (escaped). */
  xLabel: string;
  /** x positions, ascending (e.g. global steps or epochs). */
  x: readonly number[];
  /** The lines, drawn in order. */
  series: readonly Series[];
  /** Fixed y range [min, max]; default: the values' range, padded. */
  yRange?: [number, number];
  /** y tick labels. Default: up to 4 significant digits. */
  format?: (v: number) => string;
}

/** Charts with at most this many x positions get a dot on every point. */
export const MAX_MARKERS = 60;

const WIDTH = 560;
const HEIGHT = 240;
const MARGIN = { left: 58, right: 14, top: 30, bottom: 38 };
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;

/** Rounds for the SVG text: 2 decimals are sub-pixel. */
function px(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function defaultFormat(v: number): string {
  return Number(v.toPrecision(4)).toString();
}

/** About `count` round tick values (1, 2, 2.5 or 5 times a power of ten apart) inside [lo, hi]. */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function finiteRange(spec: LineChartSpec): [number, number] {
  if (spec.yRange) return spec.yRange;
  const all = spec.series.flatMap((s) => s.values.filter(Number.isFinite));
  if (all.length === 0) return [0, 1];
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  const pad = hi > lo ? (hi - lo) * 0.05 : Math.abs(hi) * 0.1 || 1;
  lo -= pad;
  hi += pad;
  return [lo, hi];
}

function scales(spec: LineChartSpec): { sx: (v: number) => number; sy: (v: number) => number; yLo: number; yHi: number } {
  const x0 = spec.x[0] ?? 0;
  const x1 = spec.x[spec.x.length - 1] ?? 1;
  const [yLo, yHi] = finiteRange(spec);
  const sx = (v: number): number => MARGIN.left + (x1 > x0 ? ((v - x0) / (x1 - x0)) * PLOT_W : PLOT_W / 2);
  const sy = (v: number): number => MARGIN.top + PLOT_H - ((v - yLo) / (yHi - yLo)) * PLOT_H;
  return { sx, sy, yLo, yHi };
}

function axes(spec: LineChartSpec, s: ReturnType<typeof scales>): string {
  const fmt = spec.format ?? defaultFormat;
  const parts: string[] = [];
  for (const t of niceTicks(s.yLo, s.yHi, 5)) {
    const y = px(s.sy(t));
    parts.push(`<line class="grid" x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y}" y2="${y}"/>`);
    parts.push(`<text class="tick" x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeHtml(fmt(t))}</text>`);
  }
  const x0 = spec.x[0] ?? 0;
  const x1 = spec.x[spec.x.length - 1] ?? 0;
  const xTicks = x1 > x0 ? niceTicks(x0, x1, 6).filter((t) => Number.isInteger(t)) : [x0];
  for (const t of xTicks) {
    parts.push(`<text class="tick" x="${px(s.sx(t))}" y="${HEIGHT - MARGIN.bottom + 14}" text-anchor="middle">${escapeHtml(String(t))}</text>`);
  }
  const bottom = HEIGHT - MARGIN.bottom;
  parts.push(`<line class="axis" x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${bottom}" y2="${bottom}"/>`);
  parts.push(`<line class="axis" x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${bottom}"/>`);
  parts.push(`<text class="label" x="${MARGIN.left + PLOT_W / 2}" y="${HEIGHT - 6}" text-anchor="middle">${escapeHtml(spec.xLabel)}</text>`);
  return parts.join('');
}

function seriesSvg(spec: LineChartSpec, line: Series, s: ReturnType<typeof scales>): string {
  const pts: string[] = [];
  spec.x.forEach((x, i) => {
    const v = line.values[i];
    if (Number.isFinite(v)) pts.push(`${px(s.sx(x))},${px(s.sy(v))}`);
  });
  if (pts.length === 0) return '';
  const name = escapeHtml(line.name);
  const markers =
    spec.x.length <= MAX_MARKERS ? pts.map((p) => `<circle class="marker" cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="2.5"/>`).join('') : '';
  return (
    `<g stroke="${escapeHtml(line.color)}" fill="${escapeHtml(line.color)}">` +
    `<polyline data-series="${name}" data-points="${pts.length}" fill="none" stroke-width="1.6" points="${pts.join(' ')}"/>${markers}</g>`
  );
}

function legend(series: readonly Series[]): string {
  return series
    .map((line, i) => {
      const x = WIDTH - MARGIN.right - 110 * (series.length - i);
      return (
        `<rect x="${x}" y="10" width="12" height="3" fill="${escapeHtml(line.color)}"/>` +
        `<text class="legend" x="${x + 16}" y="14" dominant-baseline="middle">${escapeHtml(line.name)}</text>`
      );
    })
    .join('');
}

/**
 * A line chart as an SVG element (560 x 240 user units, scales with the page).
 * The structure is machine-checkable: see this file's opening comment.
 *
 * @param spec - the title, x positions and series
 * @returns the `<svg>` markup; every text in it is escaped
 * @example
 * lineChart({ id: 'step-loss', title: 'Training loss', xLabel: 'step', x: [1, 2, 3],
 *   series: [{ name: 'loss', color: '#1f77b4', values: [2.3, 2.1, 1.9] }] });
 */
export function lineChart(spec: LineChartSpec): string {
  const s = scales(spec);
  return (
    `<svg class="chart" data-chart="${escapeHtml(spec.id)}" data-points="${spec.x.length}" viewBox="0 0 ${WIDTH} ${HEIGHT}" ` +
    `role="img" aria-label="${escapeHtml(spec.title)}" xmlns="http://www.w3.org/2000/svg">` +
    `<text class="title" x="${MARGIN.left}" y="16">${escapeHtml(spec.title)}</text>` +
    axes(spec, s) +
    legend(spec.series) +
    spec.series.map((line) => seriesSvg(spec, line, s)).join('') +
    '</svg>'
  );
}

/** What {@link confusionHeatmap} draws. */
export interface HeatmapSpec {
  /** Class names, one per row and column (escaped; shown cut to 12 characters, whole in a tooltip). */
  labels: readonly string[];
  /** counts[trueClass][predictedClass], labels.length x labels.length. */
  counts: readonly (readonly number[])[];
}

/** Cell counts are printed inside the cells up to this many classes. */
const MAX_PRINTED = 20;
const LABEL_SPACE = 90;

function short(label: string): string {
  return label.length > 12 ? `${label.slice(0, 11)}…` : label;
}

/** White to blue by the share of the row (so each class is judged on its own images). */
function cellColor(count: number, rowTotal: number): string {
  const t = rowTotal > 0 ? count / rowTotal : 0;
  const mix = (a: number, b: number): number => Math.round(a + (b - a) * t);
  return `rgb(${mix(255, 8)},${mix(255, 69)},${mix(255, 148)})`;
}

function heatmapLabels(labels: readonly string[], cell: number): string {
  return labels
    .map((l, i) => {
      const c = LABEL_SPACE + i * cell + cell / 2;
      const tip = `<title>${escapeHtml(l)}</title>`;
      return (
        `<text class="tick" x="${LABEL_SPACE - 4}" y="${px(c)}" text-anchor="end" dominant-baseline="middle">${tip}${escapeHtml(short(l))}</text>` +
        `<text class="tick" transform="translate(${px(c)},${LABEL_SPACE - 4}) rotate(-60)">${tip}${escapeHtml(short(l))}</text>`
      );
    })
    .join('');
}

function heatmapCells(spec: HeatmapSpec, cell: number): string {
  const n = spec.labels.length;
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const row = spec.counts[i] ?? [];
    const rowTotal = row.reduce((a, b) => a + b, 0);
    for (let j = 0; j < n; j++) {
      const count = row[j] ?? 0;
      const x = px(LABEL_SPACE + j * cell);
      const y = px(LABEL_SPACE + i * cell);
      const tip = `<title>${escapeHtml(`${spec.labels[i]} → ${spec.labels[j]}: ${count}`)}</title>`;
      parts.push(
        `<rect class="cell" data-row="${i}" data-col="${j}" data-count="${count}" x="${x}" y="${y}" width="${px(cell)}" height="${px(cell)}" ` +
          `fill="${cellColor(count, rowTotal)}">${tip}</rect>`,
      );
      if (n <= MAX_PRINTED && count > 0) {
        const dark = rowTotal > 0 && count / rowTotal > 0.5;
        parts.push(
          `<text class="count${dark ? ' dark' : ''}" x="${px(LABEL_SPACE + (j + 0.5) * cell)}" y="${px(LABEL_SPACE + (i + 0.5) * cell)}" ` +
            `text-anchor="middle" dominant-baseline="middle">${count}</text>`,
        );
      }
    }
  }
  return parts.join('');
}

/**
 * The confusion matrix as a heat map: rows are true classes, columns
 * predicted ones; a cell's colour is its share of the row. The structure is
 * machine-checkable: see this file's opening comment.
 *
 * @param spec - the class names and the counts (square)
 * @returns the `<svg>` markup; every text in it is escaped
 * @example
 * confusionHeatmap({ labels: ['cat', 'dog'], counts: [[9, 1], [2, 8]] });
 */
export function confusionHeatmap(spec: HeatmapSpec): string {
  const n = spec.labels.length;
  const cell = Math.max(6, Math.min(34, 520 / Math.max(1, n)));
  const side = LABEL_SPACE + n * cell + 4;
  const total = spec.counts.reduce((a, row) => a + row.reduce((b, c) => b + c, 0), 0);
  return (
    `<svg class="heatmap" data-chart="confusion" data-rows="${n}" data-cols="${n}" data-total="${total}" ` +
    `viewBox="0 0 ${px(side)} ${px(side)}" width="${px(side)}" height="${px(side)}" role="img" aria-label="confusion matrix" ` +
    `xmlns="http://www.w3.org/2000/svg">` +
    heatmapLabels(spec.labels, cell) +
    heatmapCells(spec, cell) +
    '</svg>'
  );
}
