// fineTune({ freeze: 'features', cacheFeatures: true }): the frozen trunk runs once per
// image and only the classifier trains on its cached outputs. Checked against training on
// the images (same weights after the same steps) and against a scikit-learn logistic-
// regression probe on PyTorch's pool5 features of the same weights
// (test/fixtures/probe_reference.py), on sklearn's digits at 32x32 and on crops of three
// photographs (src/demo/photo-crops.ts) at 64x64.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IMAGENET_MEAN, IMAGENET_STD, loadDataset, vgg, type Vgg } from '../src';
import { FIXTURES, dumpState } from './helpers/reference';
import { python, tempDir } from './helpers/python';
import { writePhotoCrops } from '../src/demo/photo-crops';

/** How far below the probe's validation top-1 ours may be (the issue's "within 2 points"). */
const PROBE_MARGIN = 0.02;

describe('fineTune cacheFeatures (transfer learning on a frozen trunk)', function () {
  this.timeout(600_000);
  let tmp: ReturnType<typeof tempDir>;
  let train: Array<{ path: string; label: string }>;
  let val: Array<{ path: string; label: string }>;

  before(async () => {
    tmp = tempDir('vgg-transfer-');
    const dir = path.join(tmp.dir, 'digits');
    await python(path.join(FIXTURES, 'make_digits.py'), [dir, '32']);
    const ds = await loadDataset(dir);
    const items = ds.items.map((it) => ({ path: it.path, label: ds.classes[it.label] }));
    // Every 5th image held out: a fixed 80/20 split both sides share.
    train = items.filter((_, i) => i % 5 !== 0);
    val = items.filter((_, i) => i % 5 === 0);
  });
  after(() => tmp?.cleanup());

  const frozen = (): Promise<Vgg> => vgg('vgg11_bn', { numClasses: 10, frozenStages: 5, seed: 4, dropout: 0 });

  it('gives the weights that training on the images gives (same steps, dropout 0)', async function () {
    const a = await frozen();
    const b = await frozen();
    try {
      const opts = {
        train: train.filter((_, i) => i % 15 === 0),
        valFraction: 0,
        epochs: 1,
        batchSize: 32,
        imageSize: 32,
        freeze: 'features',
        augment: false,
        seed: 2,
      } as const;
      await a.fineTune({ ...opts, cacheFeatures: { standardize: false } });
      await b.fineTune(opts);
      const [sa, sb] = [await a.stateDict(), await b.stateDict()];
      let worst = 0;
      sa.forEach((t, i) => {
        if (t.dtype !== 'float32') return;
        const u = sb[i].data as Float32Array;
        (t.data as Float32Array).forEach((v, k) => {
          worst = Math.max(worst, Math.abs(v - u[k]) / Math.max(1e-3, Math.abs(u[k])));
        });
      });
      assert.ok(worst < 1e-3, `largest relative difference ${worst}`);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  /**
   * The issue's target: from a random, frozen VGG-11-BN, validation top-1 at least 90% and within
   * 2 points of a logistic-regression probe on PyTorch's pool5 features of the same weights; the
   * time (under 30 s on 2 idle cores, measured 22 s for digits and 11 s for the photos) is logged.
   */
  async function againstProbe(
    name: string,
    train: Array<{ path: string; label: string }>,
    val: Array<{ path: string; label: string }>,
    numClasses: number,
    size: number,
    fit: { epochs: number; batchSize: number; lr: number },
  ): Promise<void> {
    const model = await vgg('vgg11_bn', { numClasses, frozenStages: 5, seed: 4, dropout: 0 });
    try {
      const dir = path.join(tmp.dir, `probe-${name}`);
      fs.mkdirSync(dir);
      const tensors = await dumpState(model, dir);
      const classes = [...new Set(train.map((it) => it.label))].sort();
      const index = (label: string): number => classes.indexOf(label);
      fs.writeFileSync(
        path.join(dir, 'spec.json'),
        JSON.stringify({
          depth: 11,
          bn: true,
          tensors,
          mean: IMAGENET_MEAN,
          std: IMAGENET_STD,
          size,
          train: train.map((it) => [it.path, index(it.label)]),
          val: val.map((it) => [it.path, index(it.label)]),
        }),
      );
      const probe = JSON.parse(await python(path.join(FIXTURES, 'probe_reference.py'), [dir])) as {
        top1: number;
        standardisedTop1: number;
        seconds: number;
      };
      const t0 = Date.now();
      const report = await model.fineTune({
        train,
        val,
        ...fit,
        imageSize: size,
        freeze: 'features',
        cacheFeatures: true,
        augment: false,
        seed: 1,
      });
      const seconds = (Date.now() - t0) / 1000;
      const top1 = report.epochs[report.epochs.length - 1].valTop1;
      console.log(
        `      ${name}: ours ${(top1 * 100).toFixed(1)}% in ${seconds.toFixed(1)} s (features cached in ${report.featureCacheSeconds?.toFixed(1)} s; ` +
          `per epoch ${report.epochs.map((e) => `${(e.valTop1 * 100).toFixed(1)}%/${e.seconds.toFixed(1)}s`).join(' ')}); ` +
          `probe ${(probe.top1 * 100).toFixed(1)}% (standardised features: ${(probe.standardisedTop1 * 100).toFixed(1)}%; PyTorch + scikit-learn, ${probe.seconds.toFixed(1)} s)`,
      );
      assert.ok(top1 >= 0.9, `ours ${top1} < 0.9`);
      assert.ok(top1 >= probe.top1 - PROBE_MARGIN, `ours ${top1} vs probe ${probe.top1}`);
      // An ordinary model afterwards (the standardisation folded back into fc6): evaluate() on the
      // images agrees with the last epoch's validation.
      const again = await model.evaluate(val, { imageSize: size });
      assert.ok(Math.abs(again.top1 - top1) < 1e-9, `evaluate ${again.top1} vs fineTune's ${top1}`);
    } finally {
      model.dispose();
    }
  }

  it('digits at 32x32: validation top-1 >= 90% and within 2 points of a logistic-regression probe on the same pool5 features', async () => {
    await againstProbe('digits', train, val, 10, 32, { epochs: 2, batchSize: 64, lr: 0.006 });
  });

  it('photo crops at 64x64 (3 classes): validation top-1 >= 90% and within 2 points of the probe', async () => {
    const crops = await writePhotoCrops(path.join(tmp.dir, 'photos'));
    const list = async (root: string) => {
      const ds = await loadDataset(root);
      return ds.items.map((it) => ({ path: it.path, label: ds.classes[it.label] }));
    };
    await againstProbe('photos', await list(crops.train), await list(crops.val), 3, 64, { epochs: 2, batchSize: 32, lr: 0.003 });
  });

  it('standardize: the model after training equals the reparametrised one (fc6 folded back), so saving and evaluating need nothing more', async () => {
    // Trained on standardised features, the model must classify raw images as the training saw them:
    // one step with lr 0 leaves the weights as they were (fold and unfold cancel up to rounding).
    const a = await frozen();
    try {
      const before = await a.stateDict();
      await a.fineTune({
        train: train.filter((_, i) => i % 20 === 0),
        valFraction: 0,
        epochs: 1,
        batchSize: 32,
        imageSize: 32,
        freeze: 'features',
        cacheFeatures: true,
        augment: false,
        lr: 0,
      });
      const after = await a.stateDict();
      let worst = 0;
      before.forEach((t, i) => {
        if (t.dtype !== 'float32') return;
        const u = after[i].data as Float32Array;
        (t.data as Float32Array).forEach((v, k) => {
          worst = Math.max(worst, Math.abs(v - u[k]) / Math.max(1e-2, Math.abs(v)));
        });
      });
      assert.ok(worst < 1e-4, `largest relative change with lr 0: ${worst}`);
    } finally {
      a.dispose();
    }
  });

  it('is refused without a frozen trunk, with augmentation or with checkpoints', async function () {
    const model = await frozen();
    try {
      const base = { train, epochs: 1, batchSize: 32, imageSize: 32, cacheFeatures: true, augment: false } as const;
      await assert.rejects(model.fineTune({ ...base, freeze: 2 }), /options\.freeze 'features'.* for options\.cacheFeatures/);
      await assert.rejects(model.fineTune({ ...base, freeze: 'features', augment: true }), /options\.augment false/);
      await assert.rejects(model.fineTune({ ...base, freeze: 'features', checkpointDir: tmp.dir }), /checkpointDir/);
    } finally {
      model.dispose();
    }
  });
});
