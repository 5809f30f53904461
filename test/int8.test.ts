// int8 inference (issue 23, item 1): post-training static calibration and the
// oneDNN int8 trunk. Oracles: PyTorch's fake quantisation of the same scheme
// (per-channel s8 weights, per-tensor s8/u8 activations), the float32 model
// on a task it learned, and the model's own outputs across save and reload.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelError, vgg, type Vgg } from '../src';
import { loadBinding } from '../src/binding';
import { preprocess } from '../src/image/preprocess';
import type { Tensor } from '../src/tensor';
import { dumpState } from './helpers/reference';
import { pythonCode, readF32, relError, tempDir } from './helpers/python';
import { writeShapes } from './helpers/shapes';

const PHOTOS = [
  ...['astronaut', 'chelsea', 'coffee', 'rocket', 'motorcycle_left', 'hubble_deep_field', 'immunohistochemistry', 'retina', 'skin'].map(
    (n) => `/usr/lib/python3/dist-packages/skimage/data/${n}.png`,
  ),
  '/usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg',
  '/usr/lib/python3/dist-packages/sklearn/datasets/images/flower.jpg',
].filter((f) => fs.existsSync(f));

/** Some validation images: both classes (writeShapes makes class folders). */
function valImages(dir: string, n: number): string[] {
  const root = path.join(dir, 'val');
  const classes = fs.readdirSync(root).sort();
  const per = classes.map((c) =>
    fs
      .readdirSync(path.join(root, c))
      .sort()
      .map((f) => path.join(root, c, f)),
  );
  return Array.from({ length: n }, (_, i) => per[i % per.length][Math.floor(i / per.length)]);
}

const int8Here = loadBinding().runtime().onednn.int8 && loadBinding().runtime().onednn.enabled;

/** Cosine similarity of two equal-length vectors. */
function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

// PyTorch simulation of the int8 trunk: BN folded in float64, weights fake-quantised
// per output channel to s8 (scale max|w| / 127), each conv input fake-quantised per
// tensor (s8 for the image, u8 after), float64 convolutions, ReLU, max pooling; the last
// convolution's output stays float32. Writes each stage's output as stage<k>.f32.
const ORACLE = `
import json, sys, numpy as np, torch, torch.nn.functional as F
d = sys.argv[1]
spec = json.load(open(d + '/spec.json'))
t = {e['name']: torch.from_numpy(np.fromfile(d + '/' + e['file'], dtype=np.float32 if e['dtype'] == 'float32' else np.int64).reshape(e['shape'])) for e in spec['tensors']}
scales = spec['scales']
x = torch.from_numpy(np.fromfile(d + '/input.f32', dtype=np.float32).reshape(spec['input_shape']))
blocks = {11: [1, 1, 2, 2, 2], 13: [2, 2, 2, 2, 2], 16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}[spec['depth']]
i = 0; conv = 0
for s, n in enumerate(blocks):
    for _ in range(n):
        w = t[f'features.{i}.conv.weight'].double(); b = t[f'features.{i}.conv.bias'].double()
        if f'features.{i}.bn.weight' in t:
            g = t[f'features.{i}.bn.weight'].double() / (t[f'features.{i}.bn.running_var'].double() + 1e-5).sqrt()
            w = w * g.view(-1, 1, 1, 1); b = (b - t[f'features.{i}.bn.running_mean'].double()) * g + t[f'features.{i}.bn.bias'].double()
        w = w.float(); b = b.float()
        sw = (w.abs().amax(dim=(1, 2, 3)) / 127).double()
        wq = torch.quantize_per_channel(w, sw, torch.zeros_like(sw, dtype=torch.long), 0, torch.qint8).dequantize()
        xq = torch.quantize_per_tensor(x, scales[conv], 0, torch.qint8 if conv == 0 else torch.quint8).dequantize()
        # float64: the products of dequantised values and their sums are exact (as oneDNN's int32 accumulation)
        x = F.relu(F.conv2d(xq.double(), wq.double(), b.double(), padding=1)).float()
        i += 1; conv += 1
    x = F.max_pool2d(x, 2, 2)
    # As the int8 trunk returns a stage: in the u8 the next convolution reads (float32 after the last one).
    out = torch.quantize_per_tensor(x, scales[conv], 0, torch.quint8).dequantize() if conv < len(scales) else x
    out.numpy().astype(np.float32).tofile(d + f'/stage{s + 1}.f32')
    i += 1
print(json.dumps(list(x.shape)))
`;

describe('int8 inference (post-training static quantisation on oneDNN)', function () {
  this.timeout(600000);
  const { dir, cleanup } = tempDir('vgg-native-int8-');
  let model: Vgg;
  let fp32Top1 = 0;

  before(async function () {
    if (!int8Here) this.skip();
    // A VGG-11-BN learns squares vs circles from random weights (as test/train-defaults.test.ts).
    model = await vgg('vgg11_bn', { numClasses: 2, seed: 0 });
    await writeShapes(path.join(dir, 'train'), 60, 64, 1);
    await writeShapes(path.join(dir, 'val'), 100, 64, 2);
    const report = await model.fineTune({ train: path.join(dir, 'train'), epochs: 8, imageSize: 64, batchSize: 16, seed: 0 });
    const last = report.epochs.at(-1);
    console.log(`      fine-tuned: train loss ${last?.trainLoss.toFixed(3)}`);
  });

  after(() => {
    model?.dispose();
    cleanup();
  });

  it('precision int8 before quantize() is ModelError NOT_CALIBRATED', async () => {
    assert.equal(model.quantization, undefined);
    const x = { data: new Float32Array(3 * 64 * 64), shape: [1, 3, 64, 64] };
    await assert.rejects(model.forward(x, { precision: 'int8' }), (e: unknown) => e instanceof ModelError && e.code === 'NOT_CALIBRATED');
    fp32Top1 = (await model.evaluate(path.join(dir, 'val'), { imageSize: 64, resize: 'squash' })).top1;
  });

  it('bad quantize() options are argument errors naming the option', async () => {
    const cases: Array<[unknown, string, string]> = [
      [{ calibration: dir, samples: 0 }, 'ERR_OUT_OF_RANGE', 'options.samples'],
      [{ calibration: dir, samples: '10' }, 'ERR_INVALID_ARG_TYPE', 'options.samples'],
      [{ calibration: dir, method: 'kl' }, 'ERR_OUT_OF_RANGE', 'options.method'],
      [{ calibration: dir, percentile: 50 }, 'ERR_OUT_OF_RANGE', 'options.percentile'],
      [{ calibration: 42 }, 'ERR_INVALID_ARG_TYPE', 'options.calibration'],
      [{}, 'ERR_INVALID_ARG_TYPE', 'options.calibration'],
      [{ calibration: path.join(dir, 'missing') }, 'ERR_OUT_OF_RANGE', 'options.calibration'],
      [{ calibration: dir, bogus: 1 }, 'ERR_OUT_OF_RANGE', 'options'],
      [{ calibration: dir, preprocess: { crop: -1 } }, 'ERR_OUT_OF_RANGE', 'options.preprocess.crop'],
    ];
    for (const [options, code, name] of cases) {
      await assert.rejects(
        model.quantize(options as never),
        (e: Error & { code?: string }) => e.code === code && e.message.includes(name),
        `${JSON.stringify(options)} -> ${code} naming ${name}`,
      );
    }
    assert.equal(model.quantization, undefined, 'a refused call leaves the model unquantised');
  });

  it('int8 top-1 on the validation set is within 2 points of fp32, and the default precision becomes int8', async () => {
    // 'minmax' first, for the record; then the default ('percentile'), which the tests below run with.
    await model.quantize({ calibration: path.join(dir, 'train'), samples: 64, method: 'minmax' });
    const minmax = await model.evaluate(path.join(dir, 'val'), { imageSize: 64, resize: 'squash', precision: 'int8' });
    assert.ok(Math.abs(minmax.top1 - fp32Top1) <= 0.02, `fp32 ${fp32Top1} vs int8 (minmax) ${minmax.top1}`);
    const q = await model.quantize({ calibration: path.join(dir, 'train'), samples: 64 });
    assert.equal(q.method, 'percentile');
    assert.equal(q.samples, 64);
    assert.equal(q.scales.length, 8);
    assert.ok(q.scales.every((s) => s > 0 && Number.isFinite(s)));
    assert.deepEqual(model.quantization, { method: 'percentile', percentile: 99.99, samples: 64, scales: q.scales });
    const int8 = await model.evaluate(path.join(dir, 'val'), { imageSize: 64, resize: 'squash', precision: 'int8' });
    console.log(
      `      val top-1 (200 images): fp32 ${(100 * fp32Top1).toFixed(1)}%, int8 ${(100 * int8.top1).toFixed(1)}% ` +
        `(percentile 99.99), ${(100 * minmax.top1).toFixed(1)}% (minmax) (calibration ${q.seconds.toFixed(1)} s)`,
    );
    assert.ok(Math.abs(int8.top1 - fp32Top1) <= 0.02, `fp32 ${fp32Top1} vs int8 ${int8.top1}`);
    // The default precision is now int8: forward without a precision equals precision 'int8', and differs from fp32.
    const x = await preprocess(valImages(dir, 1)[0], { resize: 'squash', crop: 64 });
    const byDefault = await model.forward(x);
    const asInt8 = await model.forward(x, { precision: 'int8' });
    const asFp32 = await model.forward(x, { precision: 'fp32' });
    assert.deepEqual(byDefault.data, asInt8.data);
    assert.notDeepEqual(asInt8.data, asFp32.data);
  });

  it('stage1 and stage5 match a PyTorch fake-quantisation oracle of the same scheme', async () => {
    const images: Tensor[] = await Promise.all(valImages(dir, 4).map((f) => preprocess(f, { resize: 'squash', crop: 64 })));
    const x = { data: new Float32Array(images.flatMap((t) => Array.from(t.data))), shape: [images.length, 3, 64, 64] };
    const ours = await model.extractFeatures(x, { layer: 'stage5' });
    const ours1 = await model.extractFeatures(x, { layer: 'stage1' });
    const middle = [];
    for (const layer of ['stage2', 'stage3', 'stage4'] as const) middle.push(await model.extractFeatures(x, { layer }));
    const work = path.join(dir, 'oracle');
    fs.mkdirSync(work);
    const tensors = await dumpState(model, work);
    fs.writeFileSync(path.join(work, 'input.f32'), Buffer.from(x.data.buffer));
    fs.writeFileSync(path.join(work, 'spec.json'), JSON.stringify({ depth: 11, input_shape: x.shape, scales: model.quantization!.scales, tensors }));
    const shape = JSON.parse(await pythonCode(ORACLE, [work])) as number[];
    assert.deepEqual(shape, ours.shape);
    const ref = readF32(path.join(work, 'stage5.f32'));
    const ref1 = readF32(path.join(work, 'stage1.f32'));
    // Max |diff| / max |ref|, and the RMS of the difference over the RMS of the reference: a value on
    // a rounding tie that lands one u8 step apart early on moves a few outputs, not the whole map.
    const err = relError(ours.data, ref);
    const rms = (a: Float32Array, b?: Float32Array): number => Math.sqrt(a.reduce((s, v, i) => s + (v - (b ? b[i] : 0)) ** 2, 0) / a.length);
    const rmsErr = rms(ours.data, ref) / rms(ref);
    const rms1 = rms(ours1.data, ref1) / rms(ref1);
    // stage3, the first stage where values differ: in units of its u8 step (the scale of convolution 4, which reads it).
    const step3 = model.quantization!.scales[4];
    const ref3 = readF32(path.join(work, 'stage3.f32'));
    const steps3 = middle[1].data.map((v, i) => Math.round(Math.abs(v - ref3[i]) / step3));
    const differing3 = steps3.filter((d) => d !== 0).length / steps3.length;
    const maxSteps3 = steps3.reduce((m, d) => Math.max(m, d), 0);
    const rmsMiddle = middle.map((t, k) => {
      const r = readF32(path.join(work, `stage${k + 2}.f32`));
      return (rms(t.data, r) / rms(r)).toExponential(1);
    });
    const fp32 = await model.extractFeatures(x, { layer: 'stage5', precision: 'fp32' });
    const fp32Err = relError(ours.data, fp32.data);
    const fp32Rms = rms(ours.data, fp32.data) / rms(fp32.data);
    console.log(
      `      vs PyTorch fake-quant: stage1 max rel. ${relError(ours1.data, ref1).toExponential(2)}, RMS ${rms1.toExponential(2)}; ` +
        `stage2-4 RMS ${rmsMiddle.join(', ')} (stage3: ${(100 * differing3).toFixed(3)}% of values differ, by at most ${maxSteps3} u8 step); stage5 max rel. ${err.toExponential(2)}, RMS ${rmsErr.toExponential(2)}; ` +
        `stage5 int8 vs fp32: max rel. ${fp32Err.toExponential(2)}, RMS ${fp32Rms.toExponential(2)}`,
    );
    // One convolution deep, only values on a rounding tie can differ (by one u8 step).
    assert.ok(rms1 < 2e-3, `stage1 RMS relative error ${rms1}`);
    // Where the two part, it is by one step on a few values: float32 rounding of the same products near a rounding boundary.
    assert.ok(maxSteps3 <= 1 && differing3 < 0.01, `stage3: ${differing3} of values differ, by up to ${maxSteps3} steps`);
    assert.ok(err < 3e-2, `stage5 max relative error ${err}`);
    assert.ok(rmsErr < 2e-2, `stage5 RMS relative error ${rmsErr}`);
    assert.ok(rmsErr < fp32Rms / 3, `the oracle (RMS ${rmsErr}) should be much closer than fp32 (${fp32Rms})`);
  });

  it('pool5 of real photos keeps cosine similarity >= 0.99 with fp32', async function () {
    if (PHOTOS.length < 4) this.skip();
    const model224 = model;
    await model224.quantize({ calibration: PHOTOS, preprocess: { resizeShort: 256, crop: 224 }, batchSize: 4 });
    const opts = { layer: 'pool5' as const, preprocess: { resizeShort: 256, crop: 224 } };
    const int8 = await model224.extractFeatures(PHOTOS, opts);
    const fp32 = await model224.extractFeatures(PHOTOS, { ...opts, precision: 'fp32' });
    const width = int8.shape[1];
    const cos = PHOTOS.map((_, i) => cosine(int8.data.subarray(i * width, (i + 1) * width), fp32.data.subarray(i * width, (i + 1) * width)));
    console.log(`      pool5 cosine int8 vs fp32 over ${PHOTOS.length} photos: min ${Math.min(...cos).toFixed(5)}`);
    for (const c of cos) assert.ok(c >= 0.99, `cosine ${c}`);
  });

  it("the int8 classifier follows the model's weights: after resetHead and loadStateDict its logits stay those of fp32", async () => {
    const small = await vgg('vgg11', { numClasses: 10, seed: 3 });
    const other = await vgg('vgg11', { numClasses: 10, seed: 4 });
    const pipeline = { resizeShort: 64, crop: 64 };
    try {
      await small.quantize({ calibration: PHOTOS.slice(0, 2), preprocess: pipeline });
      const x = await preprocess(PHOTOS[0], pipeline);
      // int8 against fp32 of the same weights; a classifier left with old weights would be a different function.
      const agree = async (when: string) => {
        const err = relError((await small.forward(x)).data, (await small.forward(x, { precision: 'fp32' })).data);
        assert.ok(err < 0.2, `${when}: int8 logits ${err} (max |diff| / max |logit|) from fp32`);
      };
      await agree('as calibrated');
      for (const seed of [5, 6]) {
        await small.resetHead(10, undefined, seed); // a new head, perhaps where the last one lived
        await agree(`after resetHead (seed ${seed})`);
      }
      const weights = (await other.stateDict()).map(({ name, data, shape }) => ({ name, tensor: { kind: 'array' as const, data, shape } }));
      await small.loadStateDict(weights);
      await agree('after loadStateDict');
    } finally {
      small.dispose();
      other.dispose();
    }
  });

  it('save -> vgg({ weights }) restores the calibration and runs int8 with bit-identical outputs', async () => {
    const file = path.join(dir, 'int8.pth');
    await model.save(file);
    const reloaded = await vgg({ weights: file });
    try {
      assert.deepEqual(reloaded.quantization, model.quantization);
      const x = await preprocess(PHOTOS[0] ?? valImages(dir, 1)[0], { resize: 'squash', crop: 64 });
      const a = await model.forwardStages(x);
      const b = await reloaded.forwardStages(x);
      assert.deepEqual(b.at(-1)!.data, a.at(-1)!.data);
      const f1 = await model.extractFeatures(x, { layer: 'stage5' });
      const f2 = await reloaded.extractFeatures(x, { layer: 'stage5' });
      assert.deepEqual(f2.data, f1.data);
      const f3 = await reloaded.extractFeatures(x, { layer: 'stage5', precision: 'fp32' });
      assert.notDeepEqual(f3.data, f2.data, 'the reloaded model ran int8 by default');
    } finally {
      reloaded.dispose();
    }
  });
  it("save('x.onnx', { quantized: true }) writes our quantisation as QDQ: onnxruntime's int8 output agrees with ours; safetensors keeps the calibration", async function () {
    if (PHOTOS.length < 2) this.skip();
    const trunk = await vgg('vgg11', { numClasses: 0, seed: 7 });
    const onnxFile = path.join(dir, 'int8.onnx');
    const stFile = path.join(dir, 'int8.safetensors');
    try {
      await assert.rejects(trunk.save(onnxFile, { quantized: true }), { code: 'NOT_CALIBRATED' });
      await trunk.quantize({ calibration: PHOTOS, preprocess: { resizeShort: 256, crop: 224 }, batchSize: 2 });
      await assert.rejects(trunk.save(path.join(dir, 'q.pth'), { quantized: true }), { code: 'ERR_OUT_OF_RANGE' });
      await trunk.save(onnxFile, { quantized: true });
      const [a, b] = await Promise.all(PHOTOS.slice(0, 2).map((p) => preprocess(p, { resizeShort: 256, crop: 224 })));
      const data = new Float32Array(a.data.length * 2);
      data.set(a.data, 0);
      data.set(b.data, a.data.length);
      const x: Tensor = { data, shape: [2, ...a.shape.slice(1)] };
      const ours = await trunk.forward(x);
      const ort = await import('onnxruntime-node');
      const session = await ort.InferenceSession.create(onnxFile);
      const theirs = (await session.run({ input: new ort.Tensor('float32', x.data, x.shape) })).features.data as Float32Array;
      let maxDiff = 0;
      let maxRef = 0;
      for (let i = 0; i < ours.data.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(ours.data[i] - theirs[i]));
        maxRef = Math.max(maxRef, Math.abs(theirs[i]));
      }
      console.log(`      onnxruntime QDQ vs our int8 (stage5 after pool, 2 photos): max |diff| / max |ref| ${(maxDiff / maxRef).toExponential(2)}`);
      assert.ok(maxDiff / maxRef < 3e-2, `relative difference ${maxDiff / maxRef}`);
      await trunk.save(stFile);
      const back = await vgg({ weights: stFile });
      try {
        assert.deepEqual(back.quantization, trunk.quantization);
      } finally {
        back.dispose();
      }
    } finally {
      trunk.dispose();
    }
  });
});
