// fineTune's `report` page, checked in a real browser: headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core) opens the file and
// we read the page's own structure (the data-chart / data-points convention
// of src/train/report/svg.ts) against the FineTuneReport the run resolved
// with. The page must load nothing but itself, log no error, run no script
// (a hostile class name stays text), and embed thumbnails that decode.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { vgg } from '../src/model';
import { resolveFineTuneOptions } from '../src/train/options';
import type { FineTuneReport } from '../src/train/result';
import { renderReport } from '../src/train/report/html';
import type { ReportData } from '../src/train/report/collect';
import { python, tempDir } from './helpers/python';
import { CLI } from './helpers/cli';

const CHROMIUM = process.env.VGG_TEST_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = path.join(__dirname, '..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const execFileP = promisify(execFile);

let browser: Browser | undefined;

/** The shared browser; fails (never skips) with a clear message when Chromium is missing. */
async function launch(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's 'chromium' package (.ci/run does) or set VGG_TEST_CHROMIUM`);
  }
  browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  return browser;
}

interface Opened {
  page: Page;
  /** Console messages of type 'error' and uncaught page errors. */
  errors: string[];
  /** Every request the page made, data: URIs included. */
  requests: string[];
  /** Dialogs (alert, confirm, prompt) the page opened. */
  dialogs: string[];
}

/** Opens `file` in a fresh page, blocking (and recording) any request but the file itself. */
async function open(file: string): Promise<Opened> {
  const page = await (await launch()).newPage({ viewport: { width: 1280, height: 900 } });
  const self = pathToFileURL(file).href;
  const o: Opened = { page, errors: [], requests: [], dialogs: [] };
  page.on('console', (m) => m.type() === 'error' && o.errors.push(m.text()));
  page.on('pageerror', (e) => o.errors.push(e.message));
  page.on('request', (r) => o.requests.push(r.url()));
  page.on('dialog', (d) => {
    o.dialogs.push(d.message());
    void d.dismiss();
  });
  await page.route('**/*', (route) => (route.request().url() === self ? route.continue() : route.abort()));
  await page.goto(self, { waitUntil: 'load' });
  return o;
}

/** No network: only the page's own URL (data: URIs are inline bytes, not requests off the page). */
function assertOffline(o: Opened, file: string): void {
  const self = pathToFileURL(file).href;
  const foreign = o.requests.filter((u) => u !== self && !u.startsWith('data:'));
  assert.deepEqual(foreign, [], 'the page requested something besides itself');
  assert.deepEqual(o.errors, [], 'console or page errors');
  assert.deepEqual(o.dialogs, [], 'a dialog opened');
}

// Browser-side readers, as script text: the test compiles without the DOM's types, and
// no transpiler helper can leak into code that runs in the page.

/** Every chart: its data-points and the point count of each polyline (which must equal its own data-points). */
const READ_CHARTS = `(() => {
  const out = {};
  for (const svg of document.querySelectorAll('svg[data-points]')) {
    const series = {};
    for (const line of svg.querySelectorAll('polyline')) {
      const n = (line.getAttribute('points') || '').trim().split(/\\s+/).filter(Boolean).length;
      if (n !== Number(line.getAttribute('data-points'))) throw new Error('a polyline holds ' + n + ' points but says ' + line.getAttribute('data-points'));
      series[line.getAttribute('data-series')] = n;
    }
    out[svg.getAttribute('data-chart')] = { points: Number(svg.getAttribute('data-points')), series };
  }
  return out;
})()`;

/** The confusion heat map as the page holds it, or null. */
const READ_CONFUSION = `(() => {
  const svg = document.querySelector('svg[data-chart="confusion"]');
  if (!svg) return null;
  const cells = [...svg.querySelectorAll('rect.cell')];
  return {
    rows: Number(svg.getAttribute('data-rows')),
    cols: Number(svg.getAttribute('data-cols')),
    cells: cells.length,
    sum: cells.reduce((a, c) => a + Number(c.getAttribute('data-count')), 0),
    total: Number(svg.getAttribute('data-total')),
  };
})()`;

/** The worst-misclassified pictures: src and the decoded width (0 when the browser could not decode it). */
const READ_THUMBNAILS = `(async () => {
  const imgs = [...document.querySelectorAll('[data-worst] img')];
  await Promise.all(imgs.map((i) => i.decode().catch(() => undefined)));
  return imgs.map((i) => ({ src: i.src, width: i.naturalWidth }));
})()`;

type Charts = Record<string, { points: number; series: Record<string, number> }>;

function charts(page: Page): Promise<Charts> {
  return page.evaluate<Charts>(READ_CHARTS);
}

function confusion(page: Page): Promise<{ rows: number; cols: number; cells: number; sum: number; total: number } | null> {
  return page.evaluate(READ_CONFUSION);
}

function thumbnails(page: Page): Promise<Array<{ src: string; width: number }>> {
  return page.evaluate(READ_THUMBNAILS);
}

/** An ImageFolder of `perClass` digits (32x32 PNG) per class, from test/fixtures/make_digits.py's output. */
function digitFolder(digits: string, root: string, perClass: number): string {
  for (let c = 0; c < 10; c++) {
    fs.mkdirSync(path.join(root, String(c)), { recursive: true });
    const files = fs
      .readdirSync(path.join(digits, String(c)))
      .sort()
      .slice(0, perClass);
    for (const f of files) fs.copyFileSync(path.join(digits, String(c), f), path.join(root, String(c), f));
  }
  return root;
}

describe('training report (options.report, --report)', function () {
  this.timeout(600_000);
  const tmp = tempDir('vgg-native-report-');
  let train: string;

  before(async () => {
    const digits = path.join(tmp.dir, 'digits');
    await python(path.join(__dirname, 'fixtures', 'make_digits.py'), [digits, '32']);
    // 5 per class: 40 training and 10 validation images (the default stratified 20% split).
    train = digitFolder(digits, path.join(tmp.dir, 'small'), 5);
  });

  after(async () => {
    await browser?.close();
    tmp.cleanup();
  });

  it('options.report is validated at the boundary', () => {
    const base = { train: 'x', epochs: 1, batchSize: 1 };
    assert.throws(() => resolveFineTuneOptions({ ...base, report: '' }), /Expected a non-empty string for options\.report but received/);
    assert.throws(() => resolveFineTuneOptions({ ...base, report: 3 }), { name: 'TypeError', message: /options\.report/ });
    assert.equal(resolveFineTuneOptions({ ...base, report: 'r.html' }).report, 'r.html');
  });

  it('a 2-epoch run writes a page (rewritten each epoch) whose charts, matrix and thumbnails match the run', async () => {
    const file = path.join(tmp.dir, 'report.html');
    const model = await vgg('vgg11_bn', { numClasses: 10, seed: 0 });
    let stepsPerEpoch = 0;
    let midRun = '';
    const report: FineTuneReport = await model.fineTune({
      train,
      epochs: 2,
      batchSize: 8,
      imageSize: 32,
      lr: 0.001,
      augment: false,
      report: file,
      onProgress: (p) => {
        stepsPerEpoch = p.stepsPerEpoch;
        if (p.epoch === 1 && p.step === 0) midRun = fs.readFileSync(file, 'utf8'); // written after epoch 1, before epoch 2
      },
    });
    model.dispose();
    assert.equal(report.reportPath, path.resolve(file));
    assert.match(midRun, /data-status="running"/);
    assert.match(midRun, /data-chart="epoch-loss" data-points="1"/);
    assert.deepEqual(
      fs.readdirSync(tmp.dir).filter((n) => n.includes('.tmp-')),
      [],
      'atomic writes leave no temporaries',
    );

    const o = await open(file);
    assertOffline(o, file);
    assert.equal(await o.page.getAttribute('[data-status]', 'data-status'), 'finished');
    const steps = stepsPerEpoch * 2;
    const got = await charts(o.page);
    for (const id of ['step-loss', 'step-top1', 'step-lr', 'step-ips']) {
      assert.deepEqual(got[id]?.points, steps, id);
      for (const n of Object.values(got[id].series)) assert.equal(n, steps, id);
    }
    for (const id of ['epoch-loss', 'epoch-top1']) assert.deepEqual(got[id], { points: 2, series: { train: 2, validation: 2 } }, id);
    assert.deepEqual(got['epoch-ips'], { points: 2, series: { 'images/s': 2 } });

    const cm = await confusion(o.page);
    assert.ok(cm, 'the page has a confusion matrix');
    assert.deepEqual(cm, { rows: 10, cols: 10, cells: 100, sum: report.valCount, total: report.valCount });
    assert.equal(report.valCount, 10);
    assert.equal(await o.page.locator('[data-table="per-class"] tbody tr').count(), 10);

    const thumbs = await thumbnails(o.page);
    const figures = await o.page.locator('[data-worst]').count();
    const wrong = 10 - Math.round(report.epochs[1].valTop1 * 10);
    assert.equal(figures, Math.min(8, wrong), 'one figure per misclassified image, at most 8');
    assert.equal(thumbs.length, 2 * figures, 'an image and its Grad-CAM per figure');
    for (const t of thumbs) {
      assert.match(t.src, /^data:image\/png;base64,/);
      assert.ok(t.width > 0, 'the browser decoded it');
      const meta = await sharp(Buffer.from(t.src.slice(t.src.indexOf(',') + 1), 'base64')).metadata();
      assert.equal(meta.format, 'png');
      assert.ok(meta.width! <= 96 && meta.height! <= 96, `${meta.width}x${meta.height}`);
    }
    const text = await o.page.locator('body').textContent();
    assert.match(text ?? '', /LibTorch/);
    assert.match(text ?? '', /batchSize/);

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, 'report.png');
    await o.page.screenshot({ path: shot, fullPage: true });
    console.log(`      screenshot: ${shot}`);
    await o.page.close();
  });

  it('the CLI writes the page with --report and names it; without validation the page says so', async () => {
    const file = path.join(tmp.dir, 'cli-report.html');
    const out = path.join(tmp.dir, 'tuned.pth');
    const { stdout } = await execFileP(process.execPath, [
      CLI,
      'finetune',
      '-a',
      'vgg11_bn',
      train,
      '-o',
      out,
      '-e',
      '1',
      '-b',
      '8',
      '-s',
      '32',
      '--no-augment',
      '--report',
      file,
      '--json',
    ]);
    const report = JSON.parse(stdout.trim().split('\n').pop()!);
    assert.equal(report.reportPath, path.resolve(file));
    const o = await open(file);
    assertOffline(o, file);
    assert.equal((await charts(o.page))['step-loss'].points, 5);
    await o.page.close();

    // No validation data: the page shows what it has.
    const model = await vgg('vgg11_bn', { numClasses: 10, seed: 0 });
    const bare = path.join(tmp.dir, 'no-val.html');
    await model.fineTune({ train, epochs: 1, batchSize: 25, imageSize: 32, augment: false, valFraction: 0, report: bare });
    model.dispose();
    const n = await open(bare);
    assertOffline(n, bare);
    assert.equal(await confusion(n.page), null);
    assert.equal(await n.page.locator('[data-section="no-validation"]').count(), 1);
    assert.deepEqual((await charts(n.page))['epoch-loss'], { points: 1, series: { train: 1 } });
    await n.page.close();
  });

  it('escapes hostile class names and paths: no script runs, the text is shown as written', async () => {
    const hostile = '<script>alert(1)</script>';
    const attr = '" onmouseover="alert(2)" x="';
    const data: ReportData = {
      title: `vgg11 ${hostile}`,
      status: 'finished',
      updated: new Date(0).toISOString(),
      classes: [hostile, attr, '<img src=x onerror=alert(3)>'],
      trainCount: 3,
      valCount: 3,
      stepsPerEpoch: 1,
      epochsPlanned: 1,
      steps: [{ globalStep: 1, epoch: 0, loss: 1, top1: 0, lr: 0.1, imagesPerSecond: 3 }],
      epochs: [{ epoch: 0, trainLoss: 1, trainTop1: 0, valLoss: 1, valTop1: 0, valTop5: 1, imagesPerSecond: 3, lr: 0.1, seconds: 1 }],
      bestEpoch: 0,
      warnings: [`a warning quoting ${hostile}`],
      validation: {
        epoch: 0,
        count: 3,
        confusion: [
          [0, 1, 0],
          [0, 0, 1],
          [1, 0, 0],
        ],
        perClass: [hostile, attr, 'c'].map((label) => ({ label, count: 1, top1: 0 })),
        worst: [{ path: `/data/${hostile}.png`, trueClass: 0, predicted: 1, loss: 2, probability: 0.9 }],
      },
      options: [['train', `/data/${hostile}`]],
      machine: [['CPU', attr]],
    };
    const file = path.join(tmp.dir, 'hostile.html');
    fs.writeFileSync(file, renderReport(data));
    const o = await open(file);
    await o.page.hover('svg[data-chart="confusion"]');
    await new Promise((r) => setTimeout(r, 200));
    assertOffline(o, file);
    assert.equal(await o.page.locator('script').count(), 0);
    assert.equal(await o.page.locator('[onerror], [onmouseover]').count(), 0);
    assert.equal(await o.page.locator('img').count(), 0);
    assert.equal(await o.page.title(), `vgg11 ${hostile}`);
    assert.equal(await o.page.locator('[data-table="per-class"] tbody tr td').first().textContent(), hostile);
    assert.match((await o.page.locator('[data-table="machine"]').textContent()) ?? '', /onmouseover="alert\(2\)"/);
    assert.equal(await o.page.locator('[role="alert"]').textContent(), `a warning quoting ${hostile}`);
    await o.page.close();
  });
});
