// `vgg-native demo`, the main job, run as a user runs it (node dist/cli.js,
// or the build VGG_NATIVE_CLI names) with no network (VGG_NATIVE_OFFLINE and
// every proxy pointing at a closed port), checked against facts the demo
// does not compute itself: the crops on disk, the report's own chart
// structure (src/train/report/svg.ts's data-* convention), PyTorch loading
// model.pth with torch.load(weights_only=True) into the reference VGG
// (test/fixtures/mmcls_vgg.py) and classifying the held-out crops, and sharp
// decoding the Grad-CAM pictures. Wall time is logged, not asserted (only a
// generous bound that catches a hang).
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { DEMO_MARKER, demoFolderProblem, isInside, prepareDemoFolder } from '../src/demo/folder';
import type { DemoResult } from '../src/demo/job';
import { FIXTURES } from './helpers/reference';
import { pythonCode, tempDir } from './helpers/python';
import { loopbackOnlyEnv } from './helpers/weights-server';
import { buildIfStale, CLI } from './helpers/cli';

const execFileP = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
/** The CLI under test: dist/cli.js (rebuilt when stale), or a build elsewhere named by VGG_NATIVE_CLI (used as is). */
/** A run that takes longer than this has hung (measured: about a minute on 2 loaded cores). */
const HANG_MS = 8 * 60_000;
/** The demo's batch size, to count the training steps the report must chart. */
const BATCH = 32;
const CLASSES = ['astronaut', 'cat', 'coffee'];
/** Grad-CAM pictures: the crop and its overlay side by side, each 256 x 256. */
const GRADCAM_SIZE = { width: 512, height: 256 };
/** PyTorch's softmax against the demo's printed one (float32 reductions in different orders). */
const PROB_TOLERANCE = 1e-3;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `node <CLI> demo ...args` offline; never rejects, the exit code is part of the result. */
async function demo(...args: string[]): Promise<Result> {
  const t0 = Date.now();
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI, 'demo', ...args], {
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, ...loopbackOnlyEnv(), VGG_NATIVE_OFFLINE: '1' },
    });
    return { code: 0, stdout, stderr, ms: Date.now() - t0 };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '', ms: Date.now() - t0 };
  }
}

/** PNG files under `dir/<class>/`, per class. */
function pngsByClass(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const c of fs.readdirSync(dir).sort()) {
    out.set(
      c,
      fs
        .readdirSync(path.join(dir, c))
        .filter((f) => f.endsWith('.png'))
        .map((f) => path.join(dir, c, f)),
    );
  }
  return out;
}

const count = (m: Map<string, string[]>): number => [...m.values()].reduce((n, v) => n + v.length, 0);

/** Training steps of `epochs` over `n` images: the last short batch is kept unless it has a single image (batch norm). */
const steps = (n: number, epochs: number): number => epochs * (n % BATCH === 1 ? Math.floor(n / BATCH) : Math.ceil(n / BATCH));

/**
 * Checks a training report against the crops on disk: one point per training step in every
 * per-step chart, one per epoch in the per-epoch ones, and a confusion matrix over every
 * validation crop. @returns the matrix's accuracy (diagonal over total)
 */
function checkReport(file: string, trainCount: number, valCount: number, epochs: number): number {
  const html = fs.readFileSync(file, 'utf8');
  const points = (id: string): number => {
    const m = new RegExp(`data-chart="${id}" data-points="(\\d+)"`).exec(html);
    assert.ok(m, `${path.basename(file)} has no ${id} chart`);
    return Number(m[1]);
  };
  for (const id of ['step-loss', 'step-top1', 'step-lr', 'step-ips']) assert.equal(points(id), steps(trainCount, epochs), `${id} points`);
  for (const id of ['epoch-loss', 'epoch-top1', 'epoch-ips']) assert.equal(points(id), epochs, `${id} points`);
  const total = /data-chart="confusion" data-rows="3" data-cols="3" data-total="(\d+)"/.exec(html);
  assert.ok(total, `${path.basename(file)} has no 3x3 confusion matrix`);
  assert.equal(Number(total[1]), valCount);
  const cells = [...html.matchAll(/<rect class="cell" data-row="(\d+)" data-col="(\d+)" data-count="(\d+)"/g)];
  assert.equal(cells.length, 9);
  const diagonal = cells.filter((c) => c[1] === c[2]).reduce((n, c) => n + Number(c[3]), 0);
  return diagonal / valCount;
}

// PyTorch: torch.load(weights_only=True), strict load into the reference VGG, then each image as
// the saved meta says (squash to input_size, ImageNet mean/std); sizes other than 224 reach the
// classifier through an adaptive average pool to 7x7, as torchvision's VGG does.
const CLASSIFY_PY = `
import sys, os, json, torch, numpy as np
import torch.nn.functional as F
from PIL import Image
sys.path.insert(0, ${JSON.stringify(FIXTURES)})
from mmcls_vgg import MmclsVGG
torch.set_num_threads(os.cpu_count())
ckpt = torch.load(sys.argv[1], map_location='cpu', weights_only=True)
meta = ckpt['meta']
arch, classes, size = meta['arch'], list(meta['CLASSES']), int(meta['input_size'])
model = MmclsVGG(int(arch[3:5]), arch.endswith('_bn'), len(classes))
model.load_state_dict({k[len('backbone.'):]: v for k, v in ckpt['state_dict'].items()}, strict=True)
model.eval()
mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
out = []
for f in json.loads(sys.argv[2]):
    im = Image.open(f).convert('RGB')
    assert im.size == (size, size), (f, im.size)
    x = (np.asarray(im, dtype=np.float32) / 255 - mean) / std
    x = torch.from_numpy(x.transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        h = F.adaptive_avg_pool2d(model.features(x), (7, 7))
        p = torch.softmax(model.classifier(h.flatten(1)), 1)[0]
    k = int(p.argmax())
    out.append({'label': classes[k], 'probability': float(p[k])})
print(json.dumps({'arch': arch, 'classes': classes, 'size': size, 'resize': meta.get('input_resize'), 'predictions': out}))
`;

describe('vgg-native demo (the main job, offline)', function () {
  this.timeout(HANG_MS + 120_000);
  let tmp: ReturnType<typeof tempDir>;

  before(async () => {
    await buildIfStale();
    tmp = tempDir('vgg-demo-test-');
  });
  after(() => tmp?.cleanup());

  it('--full-epochs 0 --json: the dataset, a report with its charts, a model.pth PyTorch loads and agrees with, Grad-CAM pictures, >= 90% top-1', async () => {
    const out = path.join(tmp.dir, 'fast');
    const r = await demo('--out', out, '--full-epochs', '0', '--json');
    console.log(`      demo --full-epochs 0: ${(r.ms / 1000).toFixed(1)} s wall`);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.ms < HANG_MS, `${r.ms} ms`);
    const j = JSON.parse(r.stdout) as DemoResult;
    console.log(`      phases (s): ${JSON.stringify(j.seconds, (_k, v) => (typeof v === 'number' ? Number(v.toFixed(1)) : v))}`);

    // The dataset, as it is on disk: three class folders each side, no crop in both.
    assert.equal(j.out, out);
    const train = pngsByClass(path.join(out, 'data', 'train'));
    const val = pngsByClass(path.join(out, 'data', 'val'));
    assert.deepEqual([...train.keys()], CLASSES);
    assert.deepEqual([...val.keys()], CLASSES);
    for (const c of CLASSES) assert.ok(train.get(c)!.length > 50 && val.get(c)!.length > 20, `${c}: ${train.get(c)!.length} / ${val.get(c)!.length}`);
    assert.deepEqual(
      j.data.counts.map((c) => [c.label, c.train, c.val]).sort(),
      CLASSES.map((c) => [c, train.get(c)!.length, val.get(c)!.length]),
    );

    // The report: charts of the 2 transfer epochs over these crops; its confusion matrix gives the printed accuracy.
    assert.equal(j.full, null);
    assert.ok(!fs.existsSync(path.join(out, 'report-full.html')));
    assert.equal(j.transfer.report, path.join(out, 'report.html'));
    const reportTop1 = checkReport(j.transfer.report, count(train), count(val), 2);
    assert.ok(Math.abs(reportTop1 - j.transfer.valTop1) < 1e-9, `report ${reportTop1} vs printed ${j.transfer.valTop1}`);
    assert.ok(j.transfer.valTop1 >= 0.9, `transfer learning: validation top-1 ${j.transfer.valTop1}`);
    assert.ok(j.evaluation.top1 >= 0.9, `the saved model: top-1 ${j.evaluation.top1}`);
    assert.equal(j.evaluation.count, count(val));

    // Held-out crops: validation crops (never trained on), at least one per class, each with a Grad-CAM picture.
    assert.equal(j.model, path.join(out, 'model.pth'));
    assert.ok(j.predictions.length >= CLASSES.length);
    assert.deepEqual([...new Set(j.predictions.map((p) => p.trueLabel))].sort(), CLASSES);
    for (const p of j.predictions) {
      assert.ok(val.get(p.trueLabel)!.includes(p.image), `${p.image} is a ${p.trueLabel} validation crop`);
      assert.ok(CLASSES.includes(p.label));
      assert.equal(path.dirname(p.gradcam), path.join(out, 'gradcam'));
      const m = await sharp(p.gradcam).metadata();
      assert.deepEqual({ format: m.format, width: m.width, height: m.height }, { format: 'png', ...GRADCAM_SIZE }, p.gradcam);
    }
    assert.equal(fs.readdirSync(path.join(out, 'gradcam')).length, j.predictions.length, 'no temporary files left');

    // PyTorch reads model.pth safely and gives every held-out crop the class (and probability) the demo printed.
    const py = JSON.parse(await pythonCode(CLASSIFY_PY, [j.model, JSON.stringify(j.predictions.map((p) => p.image))])) as {
      arch: string;
      classes: string[];
      size: number;
      resize: string;
      predictions: Array<{ label: string; probability: number }>;
    };
    assert.deepEqual(
      { arch: py.arch, classes: py.classes, size: py.size, resize: py.resize },
      { arch: 'vgg11_bn', classes: CLASSES, size: 64, resize: 'squash' },
    );
    j.predictions.forEach((p, i) => {
      assert.equal(py.predictions[i].label, p.label, `${p.image}: PyTorch ${py.predictions[i].label}, demo ${p.label}`);
      assert.ok(
        Math.abs(py.predictions[i].probability - p.probability) < PROB_TOLERANCE,
        `${p.image}: ${py.predictions[i].probability} vs ${p.probability}`,
      );
    });
  });

  it('with one epoch of full fine-tuning: prints the folder first, the predictions, the accuracies and where everything is', async () => {
    const out = path.join(tmp.dir, 'default');
    const r = await demo('--out', out, '--full-epochs', '1');
    console.log(`      demo --full-epochs 1: ${(r.ms / 1000).toFixed(1)} s wall`);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.ms < HANG_MS, `${r.ms} ms`);
    assert.equal(r.stderr, '', 'nothing on stderr (no terminal: no bars)');
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `vgg-native demo: writing to ${out}`);
    assert.deepEqual(
      lines.filter((l) => /^\[\d\/\d\] /.test(l)).map((l) => l.slice(0, 5)),
      ['[1/7]', '[2/7]', '[3/7]', '[4/7]', '[5/7]', '[6/7]', '[7/7]'],
    );

    // The table: held-out crop, true class (its folder), predicted (prob), verdict, Grad-CAM picture.
    const rows = lines.filter((l) => l.startsWith('  data/val/')).map((l) => l.trim().split(/\s{2,}/));
    assert.ok(rows.length >= CLASSES.length, r.stdout);
    assert.deepEqual([...new Set(rows.map((row) => row[1]))].sort(), CLASSES);
    for (const [image, truth, predicted, verdict, gradcam] of rows) {
      assert.equal(path.basename(path.dirname(image)), truth);
      const m = /^(\w+) \((\d+\.\d)%\)$/.exec(predicted);
      assert.ok(m && CLASSES.includes(m[1]), predicted);
      assert.equal(verdict, m[1] === truth ? 'ok' : 'WRONG');
      assert.ok(fs.existsSync(path.join(out, image)) && fs.existsSync(path.join(out, gradcam)), `${image}, ${gradcam}`);
    }

    const acc =
      /^Validation top-1: transfer learning (\d+\.\d)%, after the full fine-tune (\d+\.\d)%; the saved model: (\d+\.\d)% of (\d+) crops$/m.exec(
        r.stdout,
      );
    assert.ok(acc, r.stdout);
    const [transfer, full, saved] = [Number(acc[1]), Number(acc[2]), Number(acc[3])];
    assert.ok(transfer >= 90 && full >= 90, `transfer ${transfer}%, full fine-tune ${full}%`);
    assert.equal(saved, full, 'the saved model is the fine-tuned one');
    const train = pngsByClass(path.join(out, 'data', 'train'));
    const val = pngsByClass(path.join(out, 'data', 'val'));
    assert.equal(Number(acc[4]), count(val));
    checkReport(path.join(out, 'report.html'), count(train), count(val), 2);
    const fullTop1 = checkReport(path.join(out, 'report-full.html'), count(train), count(val), 1);
    assert.equal((100 * fullTop1).toFixed(1), acc[2]);

    // Where everything is: the folder, then each output with a path that exists.
    const where = lines.indexOf(`Where everything is: ${out}`);
    assert.ok(where > 0, r.stdout);
    for (const name of ['data/', 'report.html', 'report-full.html', 'model.pth', 'gradcam/']) {
      assert.ok(
        lines.slice(where + 1).some((l) => l.startsWith(`  ${name} `)),
        `${name} listed`,
      );
      assert.ok(fs.existsSync(path.join(out, name)), name);
    }
    assert.match(lines[lines.length - 1], /^Seconds: data \d+\.\d, model \d+\.\d, transfer \d+\.\d, full \d+\.\d, .*; total \d+\.\d$/);
    console.log(`      ${lines[lines.length - 1]}`);
  });

  it('refuses an --out inside the package (exit 2, one line) or a non-empty folder no demo wrote, and writes nothing', async () => {
    const inside = path.join(ROOT, 'demo-output-test');
    const foreign = path.join(tmp.dir, 'foreign');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    const cases: Array<[string, RegExp]> = [
      [inside, /--out .*demo-output-test is inside the vgg-native package/],
      [ROOT, /is inside the vgg-native package/],
      [foreign, /--out .*foreign is not empty and no demo wrote it/],
    ];
    for (const [dir, message] of cases) {
      const r = await demo('--out', dir);
      assert.equal(r.code, 2, `exit code for ${dir} (stderr: ${r.stderr})`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^vgg-native: /);
      assert.match(lines[0], message);
      assert.equal(r.stdout, '');
    }
    assert.ok(!fs.existsSync(inside));
    assert.deepEqual(fs.readdirSync(foreign), ['notes.txt']);
    assert.ok(!fs.existsSync(path.join(ROOT, DEMO_MARKER)));
  });

  it('folder rules: links into the package count as inside; a previous demo folder is reused with only its outputs removed', () => {
    const link = path.join(tmp.dir, 'link-to-package');
    fs.symlinkSync(ROOT, link);
    assert.ok(isInside(path.join(link, 'not', 'yet', 'there'), ROOT));
    assert.ok(!isInside(tmp.dir, ROOT));
    assert.ok(!isInside(`${ROOT}-sibling`, ROOT));
    assert.match(demoFolderProblem(path.join(link, 'out'), ROOT) ?? '', /inside the vgg-native package/);

    const again = path.join(tmp.dir, 'again');
    prepareDemoFolder(again);
    fs.mkdirSync(path.join(again, 'data', 'train'), { recursive: true });
    fs.writeFileSync(path.join(again, 'model.pth'), 'old');
    fs.writeFileSync(path.join(again, 'mine.txt'), 'kept');
    assert.equal(demoFolderProblem(again, ROOT), undefined);
    prepareDemoFolder(again);
    assert.deepEqual(fs.readdirSync(again).sort(), [DEMO_MARKER, 'mine.txt'].sort());
  });
});
