// The training report as one self-contained HTML page: inline CSS, inline SVG
// charts (svg.ts), PNG thumbnails as data: URIs, no script at all, and a
// Content-Security-Policy that forbids fetching anything, so the page opens
// offline and a hostile class name or path can at worst look odd. Every
// user-provided string goes through escapeHtml.
import type { EpochRow, Misclassified, ReportData, ValidationSnapshot } from './collect';
import { escapeHtml } from './escape';
import { confusionHeatmap, lineChart } from './svg';

/** While training runs the page reloads itself this often, in seconds. */
export const REFRESH_SECONDS = 15;

/** Confusion matrices of more classes are listed as their most confused pairs instead of drawn. */
export const MAX_HEATMAP_CLASSES = 100;

const CONFUSED_PAIRS = 20;
const BLUE = '#1f77b4';
const ORANGE = '#ff7f0e';

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666}.warn{color:#8a1c00;background:#fff1ec;border-left:4px solid #d9480f;padding:6px 10px}.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{width:560px;max-width:100%;height:auto;border:1px solid #eee}
.chart .grid{stroke:#eee}.chart .axis{stroke:#888}.tick,.legend,.label{font-size:10px;fill:#555}.title{font-size:12px;font-weight:600;fill:#222}
.heatmap .cell{stroke:#fff;stroke-width:.5}.heatmap .count{font-size:10px;fill:#222}.heatmap .count.dark{fill:#fff}
table{border-collapse:collapse;margin:4px 0}td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.bar{background:#1f77b4;height:10px;display:inline-block}
.worst{display:flex;flex-wrap:wrap;gap:14px}.worst figure{margin:0;width:210px}.worst img{width:96px;height:96px;image-rendering:pixelated;object-fit:contain;background:#000}
.worst figcaption{font-size:12px;word-break:break-all}.note{color:#666;font-style:italic}`;

function pct(v: number): string {
  return Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : '—';
}

function num(v: number, digits = 4): string {
  return Number.isFinite(v) ? Number(v.toPrecision(digits)).toString() : '—';
}

function className(data: ReportData, i: number): string {
  return data.classes[i] ?? String(i);
}

function head(data: ReportData): string {
  const refresh = data.status === 'running' ? `<meta http-equiv="refresh" content="${REFRESH_SECONDS}">` : '';
  return (
    '<head><meta charset="utf-8">' +
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">${refresh}` +
    `<title>${escapeHtml(data.title)}</title><style>${STYLE}</style></head>`
  );
}

function summary(data: ReportData): string {
  const best = data.epochs[data.bestEpoch];
  const bestText = best
    ? `best epoch ${best.epoch + 1}${Number.isFinite(best.valTop1) ? ` (val top-1 ${pct(best.valTop1)})` : ` (train loss ${num(best.trainLoss)})`}`
    : 'no epoch finished yet';
  const resumed = data.resumedAt !== undefined ? `; resumed at step ${data.resumedAt} (per-step charts start there)` : '';
  return (
    `<h1>${escapeHtml(data.title)}</h1>` +
    `<p class="meta" data-status="${data.status}">${data.status === 'running' ? `training, reloads every ${REFRESH_SECONDS} s` : 'finished'}` +
    ` · written ${escapeHtml(data.updated)}</p>` +
    `<p>${data.classes.length} classes · ${data.trainCount} training and ${data.valCount} validation images · ` +
    `${data.stepsPerEpoch} steps per epoch · epoch ${data.epochs.length} of ${data.epochsPlanned} done · ${bestText}${resumed}</p>` +
    data.warnings.map((w) => `<p class="warn" role="alert">${escapeHtml(w)}</p>`).join('')
  );
}

function stepCharts(data: ReportData): string {
  const x = data.steps.map((s) => s.globalStep);
  const chart = (id: string, title: string, name: string, values: number[], extra: { yRange?: [number, number]; format?: (v: number) => string }) =>
    lineChart({ id, title, xLabel: 'step', x, series: [{ name, color: BLUE, values }], ...extra });
  if (x.length === 0) return '<h2>Per step</h2><p class="note">No step recorded yet.</p>';
  return (
    '<h2>Per step</h2><div class="charts">' +
    chart(
      'step-loss',
      'Training loss per step (nats)',
      'train loss',
      data.steps.map((s) => s.loss),
      {},
    ) +
    chart(
      'step-top1',
      'Training accuracy per step',
      'train top-1',
      data.steps.map((s) => s.top1),
      { yRange: [0, 1], format: pct },
    ) +
    chart(
      'step-lr',
      'Learning rate per step (backbone)',
      'lr',
      data.steps.map((s) => s.lr),
      { format: (v) => v.toExponential(1) },
    ) +
    chart(
      'step-ips',
      'Images per second per step',
      'images/s',
      data.steps.map((s) => s.imagesPerSecond),
      {},
    ) +
    '</div>'
  );
}

function epochTable(epochs: readonly EpochRow[], best: number): string {
  const rows = epochs
    .map(
      (e, i) =>
        `<tr${i === best ? ' class="best"' : ''}><td class="num">${e.epoch + 1}${i === best ? ' ★' : ''}</td><td class="num">${num(e.trainLoss)}</td>` +
        `<td class="num">${pct(e.trainTop1)}</td><td class="num">${num(e.valLoss)}</td><td class="num">${pct(e.valTop1)}</td>` +
        `<td class="num">${pct(e.valTop5)}</td><td class="num">${e.lr.toExponential(2)}</td><td class="num">${num(e.imagesPerSecond, 3)}</td>` +
        `<td class="num">${num(e.seconds, 3)}</td></tr>`,
    )
    .join('');
  return (
    '<table data-table="epochs"><thead><tr><th class="num">epoch</th><th class="num">train loss</th><th class="num">train top-1</th>' +
    '<th class="num">val loss</th><th class="num">val top-1</th><th class="num">val top-5</th><th class="num">lr</th>' +
    `<th class="num">images/s</th><th class="num">seconds</th></tr></thead><tbody>${rows}</tbody></table>`
  );
}

function epochCharts(data: ReportData): string {
  if (data.epochs.length === 0) return '<h2>Per epoch</h2><p class="note">No epoch finished yet.</p>';
  const x = data.epochs.map((e) => e.epoch + 1);
  const pick = (f: (e: EpochRow) => number): number[] => data.epochs.map(f);
  return (
    '<h2>Per epoch</h2><div class="charts">' +
    lineChart({
      id: 'epoch-loss',
      title: 'Loss per epoch (nats)',
      xLabel: 'epoch',
      x,
      series: [
        { name: 'train', color: BLUE, values: pick((e) => e.trainLoss) },
        { name: 'validation', color: ORANGE, values: pick((e) => e.valLoss) },
      ],
    }) +
    lineChart({
      id: 'epoch-top1',
      title: 'Top-1 accuracy per epoch',
      xLabel: 'epoch',
      x,
      yRange: [0, 1],
      format: pct,
      series: [
        { name: 'train', color: BLUE, values: pick((e) => e.trainTop1) },
        { name: 'validation', color: ORANGE, values: pick((e) => e.valTop1) },
      ],
    }) +
    lineChart({
      id: 'epoch-ips',
      title: 'Images per second per epoch',
      xLabel: 'epoch',
      x,
      series: [{ name: 'images/s', color: BLUE, values: pick((e) => e.imagesPerSecond) }],
    }) +
    `</div>${epochTable(data.epochs, data.bestEpoch)}`
  );
}

/** The most frequent off-diagonal (true, predicted) pairs, for matrices too large to draw. */
function confusedPairs(data: ReportData, v: ValidationSnapshot): string {
  const pairs: Array<[number, number, number]> = [];
  v.confusion.forEach((row, i) => row.forEach((n, j) => i !== j && n > 0 && pairs.push([i, j, n])));
  pairs.sort((a, b) => b[2] - a[2]);
  const rows = pairs
    .slice(0, CONFUSED_PAIRS)
    .map(([i, j, n]) => `<tr><td>${escapeHtml(className(data, i))}</td><td>${escapeHtml(className(data, j))}</td><td class="num">${n}</td></tr>`)
    .join('');
  return (
    `<p class="note">${data.classes.length} classes: too many to draw the matrix; the ${CONFUSED_PAIRS} most confused pairs instead.</p>` +
    `<table data-table="confused-pairs"><thead><tr><th>true</th><th>predicted</th><th class="num">images</th></tr></thead><tbody>${rows}</tbody></table>`
  );
}

function perClassTable(v: ValidationSnapshot): string {
  const rows = v.perClass
    .map(
      (c) =>
        `<tr><td>${escapeHtml(c.label)}</td><td class="num">${c.count}</td><td class="num">${pct(c.top1)}</td>` +
        `<td><span class="bar" style="width:${Math.round(c.top1 * 120)}px"></span></td></tr>`,
    )
    .join('');
  return (
    '<h3>Per-class accuracy</h3><table data-table="per-class"><thead><tr><th>class</th><th class="num">images</th>' +
    `<th class="num">top-1</th><th></th></tr></thead><tbody>${rows}</tbody></table>`
  );
}

function worstFigure(data: ReportData, m: Misclassified): string {
  const name = m.path.split(/[\\/]/).pop() ?? m.path;
  const images =
    m.thumbnail && m.overlay
      ? `<img class="thumb" alt="image" src="${escapeHtml(m.thumbnail)}"> <img class="cam" alt="Grad-CAM of the predicted class" src="${escapeHtml(m.overlay)}">`
      : '';
  return (
    `<figure data-worst>${images}<figcaption title="${escapeHtml(m.path)}">${escapeHtml(name)}<br>` +
    `true <b>${escapeHtml(className(data, m.trueClass))}</b>, predicted <b>${escapeHtml(className(data, m.predicted))}</b> ` +
    `(p ${num(m.probability, 2)}), loss ${num(m.loss, 3)}</figcaption></figure>`
  );
}

function worstSection(data: ReportData, v: ValidationSnapshot): string {
  if (v.worst.length === 0) return '<h3>Worst misclassified</h3><p class="note">No misclassified validation image.</p>';
  const pictures = v.worst.some((m) => m.thumbnail) ? '' : '<p class="note">Thumbnails could not be made this epoch.</p>';
  return (
    `<h3>Worst misclassified (highest loss, ${v.worst.length})</h3>` +
    '<p class="meta">Each: the image as the network saw it, and the Grad-CAM (conv5) of the predicted class over it.</p>' +
    `${pictures}<div class="worst">${v.worst.map((m) => worstFigure(data, m)).join('')}</div>`
  );
}

function validationSection(data: ReportData): string {
  const v = data.validation;
  if (data.valCount === 0) {
    return (
      '<h2>Validation</h2><p class="note" data-section="no-validation">No validation data (no <code>val</code> and ' +
      '<code>valFraction</code> 0): no validation loss, confusion matrix, per-class accuracy or misclassified images.</p>'
    );
  }
  if (!v) return '<h2>Validation</h2><p class="note">Validation results appear when the first epoch ends.</p>';
  const matrix =
    data.classes.length <= MAX_HEATMAP_CLASSES ? confusionHeatmap({ labels: data.classes, counts: v.confusion }) : confusedPairs(data, v);
  return (
    `<h2>Validation (epoch ${v.epoch + 1}, ${v.count} images)</h2>` +
    '<h3>Confusion matrix</h3><p class="meta">Rows: true class; columns: predicted class; colour: share of the row.</p>' +
    matrix +
    perClassTable(v) +
    worstSection(data, v)
  );
}

function keyValueTable(id: string, title: string, rows: ReadonlyArray<[string, string]>): string {
  const body = rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('');
  return `<h2>${escapeHtml(title)}</h2><table data-table="${id}"><tbody>${body}</tbody></table>`;
}

/**
 * The whole report page: summary, per-step charts (loss, accuracy, learning
 * rate, images/s), per-epoch charts and table, validation (confusion matrix,
 * per-class accuracy, worst misclassified images with Grad-CAM), options and
 * machine. Self-contained: no script, no external resource (its CSP forbids
 * them); while `status` is 'running' it reloads itself every
 * {@link REFRESH_SECONDS} seconds.
 *
 * @param data - what to show; every string in it is escaped
 * @returns the HTML document, UTF-8 text
 * @example
 * await writeFileAtomic('report.html', renderReport(data));
 */
export function renderReport(data: ReportData): string {
  return (
    `<!DOCTYPE html><html lang="en">${head(data)}<body>` +
    summary(data) +
    stepCharts(data) +
    epochCharts(data) +
    validationSection(data) +
    keyValueTable('options', 'Options', data.options) +
    keyValueTable('machine', 'Machine', data.machine) +
    '</body></html>\n'
  );
}
