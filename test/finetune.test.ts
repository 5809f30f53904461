// fineTune, evaluate, schedules and checkpoints. Oracles: PyTorch
// (test/fixtures/finetune_reference.py: the same steps, and the accuracy of
// the saved model), an uninterrupted run for a killed-and-resumed one, and
// hand-computed numbers; never our own output alone.
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { coreOf, vgg, type Vgg } from '../src/model';
import { ModelError } from '../src/errors';
import { runtime } from '../src/runtime';
import { loadDataset, splitDataset, DatasetError, type Dataset } from '../src/data/dataset';
import { Scorer } from '../src/train/evaluate';
import { lrFactor, type ScheduleSpec } from '../src/train/schedule';
import { resolveFineTuneOptions } from '../src/train/options';
import type { ModelCore } from '../src/core/model-core';
import { AbortError } from '../src/queue';
import { python, readF32, tempDir } from './helpers/python';
import { rejectsWithType } from './helpers/assertions';
import { jpegCutAfterHeaders } from './helpers/images';

const FIXTURES = path.join(__dirname, 'fixtures');
const REFERENCE = path.join(FIXTURES, 'finetune_reference.py');
const WORKER = path.join(FIXTURES, 'finetune_train_worker.ts');

const rejectsWith = rejectsWithType;

/** Records what fineTune hands to the native trainStep (and forbids nothing). */
function spyTrainStep(model: Vgg): Array<{ data: Float32Array; shape: number[]; labels: BigInt64Array; lr: number[]; loss?: number }> {
  const calls: Array<{ data: Float32Array; shape: number[]; labels: BigInt64Array; lr: number[]; loss?: number }> = [];
  const core = coreOf(model);
  const original = core.trainStep.bind(core);
  // Shadows the prototype's method on this instance.
  const spy: ModelCore['trainStep'] = async (batch, opts) => {
    const call = { data: batch.data.slice(), shape: [...batch.shape], labels: batch.labels.slice(), lr: [...opts.lr] };
    calls.push(call);
    const out = await original(batch, opts);
    (call as { loss?: number }).loss = out.loss;
    return out;
  };
  Object.defineProperty(core, 'trainStep', { value: spy, configurable: true, writable: true });
  return calls;
}

/** Runs the worker script; resolves with its stdout lines once it exits 0. */
function runWorker(
  config: unknown,
  env: NodeJS.ProcessEnv = {},
  onLine?: (line: string, child: ChildProcess) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'tsx/cjs', WORKER, JSON.stringify(config)], {
      cwd: path.join(__dirname, '..'),
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let stderr = '';
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        onLine?.(line, child);
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, lines, stderr }));
  });
}

function reportOf(lines: string[]): { epochs: unknown[]; resumedFrom?: { epoch: number; step: number; globalStep: number } } {
  const line = lines.find((l) => l.startsWith('REPORT '));
  assert.ok(line, 'the worker printed no report');
  return JSON.parse(line.slice('REPORT '.length));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('fineTune', function () {
  let tmp: { dir: string; cleanup: () => void };
  let digitsDir: string;
  let digits: Dataset;

  before(async function () {
    tmp = tempDir('vgg-native-finetune-');
    digitsDir = path.join(tmp.dir, 'digits');
    await python(path.join(FIXTURES, 'make_digits.py'), [digitsDir, '32']);
    digits = await loadDataset(digitsDir);
  });
  after(() => tmp?.cleanup());

  /** The first n digits spread over classes (every k-th image). */
  function subset(n: number): Array<{ path: string; label: string }> {
    const step = Math.floor(digits.items.length / n);
    return Array.from({ length: n }, (_, i) => digits.items[i * step]).map((it) => ({ path: it.path, label: digits.classes[it.label] }));
  }

  describe('options and data, checked before training', function () {
    let model: Vgg;
    let calls: ReturnType<typeof spyTrainStep>;
    before(async () => {
      model = await vgg('vgg11', { numClasses: 10, seed: 1, dropout: 0 });
      calls = spyTrainStep(model);
    });
    after(() => model.dispose());
    afterEach(() => assert.equal(calls.length, 0, 'no training step may run before the checks pass'));

    const base = () => ({ train: digitsDir, epochs: 1, batchSize: 4, imageSize: 32 });

    it('names the option, what was expected and what came', async function () {
      await rejectsWith(
        model.fineTune({ ...base(), epochs: 0 }),
        /Expected an integer between 1 and .* for options\.epochs but received 0/,
        RangeError,
      );
      await rejectsWith(
        model.fineTune({ ...base(), optimizer: 'adam' as never }),
        /Expected one of 'sgd', 'adamw' for options\.optimizer but received "adam"/,
        RangeError,
      );
      await rejectsWith(
        model.fineTune({ ...base(), schedule: { type: 'cosine', warmupSteps: 2, warmupEpochs: 1 } }),
        /warmupSteps or warmupEpochs, not both for options\.schedule/,
        RangeError,
      );
      await rejectsWith(model.fineTune({ ...base(), lrr: 1 } as never), /only the keys .* for options but received "lrr"/, RangeError);
      await rejectsWith(model.fineTune({ ...base(), resume: true }), /options\.resume/, RangeError);
      await rejectsWith(
        model.fineTune({ ...base(), valFraction: 1 }),
        /Expected a number in \[0, 1\) for options\.valFraction but received 1/,
        RangeError,
      );
      await rejectsWith(model.fineTune({ ...base(), distributed: { rank: 2, worldSize: 2 } }), /options\.distributed\.rank/, RangeError);
      await rejectsWith(model.fineTune({ ...base(), train: 42 as never }), /for options\.train but received 42 of type number/, TypeError);
      await rejectsWith(
        model.fineTune({ ...base(), batchSize: 3, distributed: { rank: 0, worldSize: 2 } }),
        /Expected a multiple of the number of ranks \(2, options\.distributed\.worldSize\).* for options\.batchSize but received 3/,
        RangeError,
      );
    });

    it('refuses a freeze the model was not built with, and says how to build it', async function () {
      await rejectsWith(
        model.fineTune({ ...base(), freeze: 'features' }),
        /frozenStages 5 for options\.freeze 'features' but received a model with frozenStages 0.*vgg\('vgg11', \{ frozenStages: 5/,
        RangeError,
      );
      const frozen = await vgg('vgg11', { numClasses: 10, frozenStages: 2 });
      try {
        await rejectsWith(frozen.fineTune({ ...base(), freeze: 'none' }), /received a model with frozenStages 2/, RangeError);
      } finally {
        frozen.dispose();
      }
    });

    it('a missing folder, an empty folder, one class, an unreadable image, a label out of range', async function () {
      await rejectsWith(model.fineTune({ ...base(), train: path.join(tmp.dir, 'nope') }), /Dataset folder not found: ".*nope"/, DatasetError);
      const empty = path.join(tmp.dir, 'empty');
      fs.mkdirSync(empty, { recursive: true });
      await rejectsWith(model.fineTune({ ...base(), train: empty }), /No class folders in/, DatasetError);
      const one = path.join(tmp.dir, 'one');
      fs.mkdirSync(path.join(one, 'seven'), { recursive: true });
      for (const it of digits.items.filter((i) => i.label === 7).slice(0, 4))
        fs.copyFileSync(it.path, path.join(one, 'seven', path.basename(it.path)));
      await rejectsWith(model.fineTune({ ...base(), train: one }), /fine-tuning needs at least 2 classes; found only 'seven'/, DatasetError);
      const list = [...subset(8), { path: path.join(tmp.dir, 'broken.png'), label: '3' }];
      fs.writeFileSync(path.join(tmp.dir, 'broken.png'), 'this is not a PNG');
      const err = await rejectsWith(
        model.fineTune({ ...base(), train: list }),
        /1 of 9 image\(s\) .* cannot be read: ".*broken\.png".*skipInvalid: true/,
        DatasetError,
      );
      assert.equal((err as DatasetError).problems.length, 1);
      const outOfRange: Dataset = {
        items: [
          { path: digits.items[0].path, label: 0 },
          { path: digits.items[500].path, label: 12 },
        ],
        classes: ['a', 'b'],
      };
      await rejectsWith(
        model.fineTune({ ...base(), train: outOfRange }),
        /label 12 of item #1 .* is out of range: expected an integer in \[0, 2\)/i,
        DatasetError,
      );
      await rejectsWith(
        model.fineTune({ ...base(), val: { items: [{ path: digits.items[0].path, label: 0 }], classes: ['x', 'y'] } }),
        /options\.val has classes \[x, y\] but training has \[0, 1/,
        DatasetError,
      );
    });

    it('skipInvalid skips unreadable images and counts them in the report', async function () {
      // cut.jpg: headers intact, pixels missing; only a full decode before training finds it.
      fs.writeFileSync(path.join(tmp.dir, 'cut.jpg'), jpegCutAfterHeaders(fs.readFileSync('/usr/lib/python3/dist-packages/skimage/data/rocket.jpg')));
      const list = [
        ...subset(8),
        { path: path.join(tmp.dir, 'broken.png'), label: '3' },
        { path: path.join(tmp.dir, 'gone.png'), label: '4' },
        { path: path.join(tmp.dir, 'cut.jpg'), label: '5' },
      ];
      const m = await vgg('vgg11', { numClasses: 10, seed: 1, dropout: 0 });
      try {
        const report = await m.fineTune({ train: list, epochs: 1, batchSize: 4, imageSize: 32, skipInvalid: true, valFraction: 0, augment: false });
        assert.deepEqual(report.skipped.map((s) => path.basename(s.path)).sort(), ['broken.png', 'cut.jpg', 'gone.png']);
        assert.match(report.skipped.find((s) => s.path.endsWith('gone.png'))!.reason, /file not found/);
        assert.equal(report.trainCount, 8);
        assert.equal(report.epochs.length, 1);
        assert.ok(Number.isNaN(report.epochs[0].valTop1), 'no validation data: NaN');
        // String labels: the classes are the names present, and the head is resized to them.
        assert.deepEqual(m.labels, report.classes);
        assert.equal(m.numClasses, report.classes.length);
      } finally {
        m.dispose();
      }
    });
  });

  describe('learning-rate schedules (hand-computed)', function () {
    const spec = (s: Partial<ScheduleSpec>): ScheduleSpec => ({
      type: 'constant',
      stepSize: 1,
      gamma: 0.1,
      minLrRatio: 0,
      warmupSteps: 0,
      warmupRatio: 0.1,
      ...s,
    });
    it('constant, step, cosine and linear warm-up', function () {
      assert.equal(lrFactor(spec({}), 7, 10, 100), 1);
      // step: ×0.5 every 2 epochs of 10 steps.
      assert.deepEqual(
        [0, 19, 20, 39, 40].map((g) => lrFactor(spec({ type: 'step', stepSize: 2, gamma: 0.5 }), g, 10, 100)),
        [1, 1, 0.5, 0.5, 0.25],
      );
      // cosine over 5 steps: (1 + cos(pi t / 4)) / 2.
      const c = [0, 1, 2, 3, 4].map((g) => lrFactor(spec({ type: 'cosine' }), g, 5, 5));
      [1, 0.8535533905932737, 0.5, 0.14644660940672627, 0].forEach((v, i) =>
        assert.ok(Math.abs(c[i] - v) < 1e-12, `cosine step ${i}: ${c[i]} vs ${v}`),
      );
      assert.ok(Math.abs(lrFactor(spec({ type: 'cosine', minLrRatio: 0.1 }), 4, 5, 5) - 0.1) < 1e-12);
      // mmcv linear warm-up over 4 steps from 0.1: 0.1, 0.325, 0.55, 0.775, then 1.
      const w = [0, 1, 2, 3, 4].map((g) => lrFactor(spec({ warmupSteps: 4 }), g, 10, 100));
      [0.1, 0.325, 0.55, 0.775, 1].forEach((v, i) => assert.ok(Math.abs(w[i] - v) < 1e-12, `warm-up step ${i}: ${w[i]} vs ${v}`));
    });
    it('warmupEpochs and defaults resolve as documented', function () {
      const r = resolveFineTuneOptions({ train: 'x', epochs: 6, batchSize: 2, schedule: { type: 'step', warmupEpochs: 0.5 } });
      assert.equal(r.schedule.stepSize, 2);
      assert.equal(r.warmupEpochs, 0.5);
      const d = resolveFineTuneOptions({ train: 'x', epochs: 1, batchSize: 2 });
      assert.equal(d.schedule.type, 'cosine');
      // lr 0.02 per 256 images, linearly scaled: 0.02 * 2 / 256
      assert.deepEqual([d.optimizer.type, d.lr, d.optimizer.momentum, d.optimizer.weightDecay], ['sgd', 0.00015625, 0.9, 1e-4]);
      assert.equal(resolveFineTuneOptions({ train: 'x', epochs: 1 }).lr, 0.0025); // batchSize 32
      assert.equal(resolveFineTuneOptions({ train: 'x', epochs: 1, optimizer: 'adamw' }).lr, 0.001);
    });
  });

  it('evaluate scores logits as hand-computed', function () {
    // Two classes scored over three rows: loss = mean of -log softmax at the true class.
    const s = new Scorer(3);
    s.add(new Float32Array([2, 1, 0, 0, 3, 0, 1, 1, 5]), BigInt64Array.from([0n, 0n, 1n]));
    const r = s.result(['a', 'b', 'c']);
    const lse = (v: number[]) => Math.log(v.reduce((a, x) => a + Math.exp(x), 0));
    const loss = (lse([2, 1, 0]) - 2 + (lse([0, 3, 0]) - 0) + (lse([1, 1, 5]) - 1)) / 3;
    assert.ok(Math.abs(r.loss - loss) < 1e-12);
    assert.equal(r.top1, 1 / 3);
    assert.equal(r.top5, 1); // top-3 of 3 classes
    assert.deepEqual(r.confusion, [
      [1, 1, 0],
      [0, 0, 1],
      [0, 0, 0],
    ]);
    assert.deepEqual(r.perClass, [
      { label: 'a', count: 2, top1: 0.5 },
      { label: 'b', count: 1, top1: 0 },
      { label: 'c', count: 0, top1: 0 },
    ]);
  });

  it("the first 5 steps give PyTorch's losses within 1e-3 (vgg11_bn, dropout 0, SGD momentum + weight decay, two groups, cosine)", async function () {
    // dropout 0: PyTorch cannot draw LibTorch's dropout masks, so the comparison leaves them out.
    const model = await vgg('vgg11_bn', { numClasses: 10, seed: 3, dropout: 0 });
    const dir = path.join(tmp.dir, 'reference-steps');
    fs.mkdirSync(dir, { recursive: true });
    try {
      const state = await model.stateDict();
      let offset = 0;
      const manifest = state.map((t) => {
        const e = { name: t.name, shape: t.shape, dtype: t.dtype, offset };
        offset += t.data.byteLength;
        return e;
      });
      fs.writeFileSync(
        path.join(dir, 'weights.bin'),
        Buffer.concat(state.map((t) => Buffer.from(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength)))),
      );
      const calls = spyTrainStep(model);
      const cfg = { lr: 0.01, headLr: 0.05, momentum: 0.9, weightDecay: 5e-4, labelSmoothing: 0.1 };
      await model.fineTune({
        train: subset(80),
        epochs: 1,
        batchSize: 16,
        imageSize: 32,
        valFraction: 0,
        seed: 11,
        lr: cfg.lr,
        headLr: cfg.headLr,
        optimizer: { type: 'sgd', momentum: cfg.momentum, weightDecay: cfg.weightDecay },
        labelSmoothing: cfg.labelSmoothing,
        schedule: 'cosine',
      });
      assert.equal(calls.length, 5);
      calls.forEach((c, k) => {
        fs.writeFileSync(path.join(dir, `batch_${k}.f32`), Buffer.from(c.data.buffer));
        fs.writeFileSync(path.join(dir, `labels_${k}.i64`), Buffer.from(c.labels.buffer));
      });
      fs.writeFileSync(
        path.join(dir, 'config.json'),
        JSON.stringify({
          depth: 11,
          bn: true,
          numClasses: 10,
          steps: 5,
          batchShapes: calls.map((c) => c.shape),
          manifest,
          ...cfg,
        }),
      );
      const ref = JSON.parse(await python(REFERENCE, ['steps', dir])) as { losses: number[]; lrs: number[][] };
      calls.forEach((c, k) => {
        const rel = Math.abs(c.loss! - ref.losses[k]) / Math.abs(ref.losses[k]);
        assert.ok(rel < 1e-3, `step ${k}: loss ${c.loss} vs PyTorch ${ref.losses[k]} (relative ${rel})`);
        assert.ok(
          Math.abs(c.lr[0] - ref.lrs[k][0]) < 1e-12 && Math.abs(c.lr[1] - ref.lrs[k][1]) < 1e-12,
          `step ${k}: lr ${c.lr} vs PyTorch ${ref.lrs[k]}`,
        );
      });
    } finally {
      model.dispose();
    }
  });

  it("an abort stops at the next step boundary with a checkpoint; resuming another run's checkpoint is refused", async function () {
    const ckptDir = path.join(tmp.dir, 'abort-ckpt');
    const model = await vgg('vgg11', { numClasses: 10, seed: 1, dropout: 0 });
    try {
      const calls = spyTrainStep(model);
      const ac = new AbortController();
      const opts = { train: subset(40), epochs: 1, batchSize: 8, imageSize: 32, valFraction: 0, augment: false as const, checkpointDir: ckptDir };
      await rejectsWith(
        model.fineTune({
          ...opts,
          signal: ac.signal,
          onProgress: (p) => {
            if (p.globalStep === 2) ac.abort();
          },
        }),
        /aborted/i,
        AbortError,
      );
      assert.equal(calls.length, 2, 'the step running when the signal fired finishes; no later step starts');
      const state = JSON.parse(fs.readFileSync(path.join(ckptDir, 'step-000000002', 'state.json'), 'utf8'));
      assert.deepEqual([state.epoch, state.step, state.globalStep], [0, 2, 2]);
      assert.equal(fs.readFileSync(path.join(ckptDir, 'latest'), 'utf8').trim(), 'step-000000002');
      await rejectsWith(
        model.fineTune({ ...opts, seed: 99, resume: true }),
        /Cannot resume from ".*step-000000002": it was written by a different run \(checkpoint vs now: seed 0 vs 99\)/,
      );
      assert.equal(calls.length, 2);
    } finally {
      model.dispose();
    }
  });

  it("a run killed mid-epoch (SIGKILL) and resumed ends with the uninterrupted run's weights (deterministic, dropout on)", async function () {
    const ckptDir = path.join(tmp.dir, 'kill-ckpt');
    const config = (out: string, extra: object) => ({
      arch: 'vgg11_bn',
      seed: 5,
      dropout: 0.5,
      out,
      fineTune: { train: subset(48), epochs: 2, batchSize: 8, imageSize: 32, valFraction: 0, seed: 9, deterministic: true, lr: 0.01, ...extra },
    });
    const straight = path.join(tmp.dir, 'straight.f32');
    const resumed = path.join(tmp.dir, 'resumed.f32');
    const a = await runWorker(config(straight, {}));
    assert.equal(a.code, 0, a.stderr);

    // 6 steps per epoch, a checkpoint every 3: kill once step 4 is done, so the newest checkpoint is step 3 of epoch 0.
    const killed = await runWorker(config(resumed, { checkpointDir: ckptDir, checkpointEvery: 3 }), {}, (line, child) => {
      if (line === 'STEP 4') child.kill('SIGKILL');
    });
    assert.equal(killed.signal, 'SIGKILL', `the run was not killed: ${killed.stderr}`);
    assert.ok(!killed.lines.some((l) => l.startsWith('REPORT')));
    assert.ok(fs.readdirSync(ckptDir).includes('step-000000003'), `checkpoints: ${fs.readdirSync(ckptDir).join(', ')}`);

    const b = await runWorker(config(resumed, { checkpointDir: ckptDir, checkpointEvery: 3, resume: true }));
    assert.equal(b.code, 0, b.stderr);
    const report = reportOf(b.lines);
    assert.deepEqual(
      report.resumedFrom && { epoch: report.resumedFrom.epoch, step: report.resumedFrom.step, globalStep: report.resumedFrom.globalStep },
      { epoch: 0, step: 3, globalStep: 3 },
    );
    assert.equal(report.epochs.length, 2);
    assert.deepEqual(
      b.lines.filter((l) => l.startsWith('STEP ')).map((l) => Number(l.slice(5))),
      [4, 5, 6, 7, 8, 9, 10, 11, 12],
    );
    const diff = maxAbsDiff(readF32(resumed), readF32(straight));
    assert.ok(diff <= 1e-5, `weights differ by ${diff}`);
    // Only the newest checkpoint is kept, and `latest` names it.
    assert.deepEqual(fs.readdirSync(ckptDir).sort(), ['latest', 'step-000000012']);
  });

  /** VGG-11-BN from random weights on digits (32x32, 3 epochs, SGD, cosine): the report and PyTorch's top-1 of the saved weights. */
  async function fineTuneDigits(model: Vgg, precision: 'fp32' | 'bf16', onProgress?: (step: number) => void) {
    const report = await model.fineTune({
      train: digitsDir,
      valFraction: 0.2,
      epochs: 3,
      batchSize: 32,
      imageSize: 32,
      lr: 0.01,
      seed: 0,
      optimizer: { type: 'sgd', momentum: 0.9, weightDecay: 5e-4 },
      schedule: 'cosine',
      augment: false, // 3 epochs of plain digits suffice (dropout stays on); flips would even hurt digits
      precision,
      ...(onProgress ? { onProgress: (p: { globalStep: number }) => onProgress(p.globalStep) } : {}),
    });
    // PyTorch's view of the same held-out images with the saved weights (in fp32).
    const { val } = splitDataset(digits, { valFraction: 0.2, seed: 0 });
    const listFile = path.join(tmp.dir, 'val.json');
    fs.writeFileSync(listFile, JSON.stringify(val.items));
    const pth = path.join(tmp.dir, `digits-${precision}.pth`);
    await model.save(pth);
    const ref = JSON.parse(await python(REFERENCE, ['accuracy', pth, 'vgg11_bn', listFile, '32'])) as { top1: number; count: number };
    assert.equal(ref.count, 359);
    return { report, ref, val };
  }

  /** PyTorch's validation top-1 of the fp32 run, for the bf16 run to compare with. */
  let fp32Top1: number | undefined;

  it('VGG-11-BN reaches ≥ 95% validation top-1 on sklearn digits (32×32, 3 epochs), checked by PyTorch; int8 within 0.5 point', async function () {
    this.timeout(12 * 60_000);
    const started = Date.now();
    const model = await vgg('vgg11_bn', { numClasses: 1000, seed: 0 });
    try {
      const progress: number[] = [];
      const { report, ref, val } = await fineTuneDigits(model, 'fp32', (step) => progress.push(step));
      const minutes = (Date.now() - started) / 60_000;
      assert.equal(model.numClasses, 10, "the head was reset to the dataset's 10 classes");
      assert.deepEqual(model.labels, digits.classes);
      assert.equal(report.trainCount + report.valCount, 1797);
      assert.equal(report.valCount, 359);
      assert.equal(progress.length, 3 * 45);
      const best = report.best;
      assert.ok(
        report.epochs[report.epochs.length - 1].valTop1 >= 0.95,
        `validation top-1 per epoch: ${report.epochs.map((e) => e.valTop1.toFixed(4)).join(', ')}`,
      );
      assert.equal(best, report.epochs[report.bestEpoch]);
      // Speed is the bench's business (npm run bench); a wall-clock budget here would flake on a loaded machine.
      console.log(`      fine-tuned in ${minutes.toFixed(1)} min`);
      assert.ok(ref.top1 >= 0.95, `PyTorch top-1 ${ref.top1}`);
      const last = report.epochs[report.epochs.length - 1];
      assert.ok(Math.abs(ref.top1 - last.valTop1) <= 1 / 359 + 1e-9, `PyTorch ${ref.top1} vs ours ${last.valTop1}`);
      fp32Top1 = ref.top1;

      const ev = await model.evaluate(val, { imageSize: 32, batchSize: 64 });
      assert.equal(ev.count, 359);
      assert.ok(Math.abs(ev.top1 - ref.top1) <= 1 / 359 + 1e-9);
      assert.equal(
        ev.confusion.flat().reduce((a, b) => a + b, 0),
        359,
      );
      assert.deepEqual(
        ev.perClass.map((c) => c.count),
        [36, 36, 35, 37, 36, 36, 36, 36, 35, 36],
      );

      // int8 (issue 23's target: within 0.5 point of fp32), calibrated on 100 training images with the eval pipeline.
      if (!runtime().onednn.int8) return;
      const trainPaths = digits.items.filter((it) => !val.items.some((v) => v.path === it.path)).map((it) => it.path);
      await model.quantize({ calibration: trainPaths, samples: 100, preprocess: { resizeShort: 37, crop: 32 } });
      const ev8 = await model.evaluate(val, { imageSize: 32, batchSize: 64, precision: 'int8' });
      console.log(`      digits top-1: fp32 ${(100 * ref.top1).toFixed(2)}% (PyTorch), int8 ${(100 * ev8.top1).toFixed(2)}%`);
      assert.ok(ev8.top1 >= ref.top1 - 0.005, `int8 ${ev8.top1} vs fp32 ${ref.top1}`);
    } finally {
      model.dispose();
    }
  });

  it("bf16 fine-tuning (fp32 master weights) lands within 1 point of fp32's top-1 on digits; refused where the CPU has no bf16", async function () {
    this.timeout(12 * 60_000);
    const model = await vgg('vgg11_bn', { numClasses: 1000, seed: 0 });
    try {
      const { avx512Bf16, amxBf16 } = runtime().cpu;
      if (!avx512Bf16 && !amxBf16) {
        const err = await rejectsWith(fineTuneDigits(model, 'bf16'), /AVX512_BF16 or AMX-BF16/, ModelError);
        assert.equal((err as ModelError).code, 'BF16_UNSUPPORTED');
        return;
      }
      if (fp32Top1 === undefined) this.skip(); // the fp32 run above is the comparison
      const { report, ref } = await fineTuneDigits(model, 'bf16');
      const last = report.epochs[report.epochs.length - 1];
      console.log(`      digits top-1: bf16 ${(100 * ref.top1).toFixed(2)}% vs fp32 ${(100 * fp32Top1).toFixed(2)}% (PyTorch, fp32 forward)`);
      assert.ok(ref.top1 >= fp32Top1 - 0.01, `bf16 ${ref.top1} vs fp32 ${fp32Top1}`);
      // Our own bf16 validation agrees with PyTorch's fp32 scoring of the same weights within 2 images.
      assert.ok(Math.abs(ref.top1 - last.valTop1) <= 2 / 359 + 1e-9, `PyTorch ${ref.top1} vs ours (bf16) ${last.valTop1}`);
    } finally {
      model.dispose();
    }
  });
});
