// Defaults that train (issue 21, item 9): with fineTune's default options a
// VGG-11-BN from random weights learns an easy two-class task, and a run whose
// loss stays far above chance is told why.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { vgg } from '../src';
import { DivergenceWatch } from '../src/train/divergence';
import { defaultLr } from '../src/train/options';
import { checkTrainPrecision } from '../src/train/run';
import { ModelError } from '../src/errors';
import { tempDir } from './helpers/python';
import { writeShapes } from './helpers/shapes';

describe('fineTune defaults', () => {
  it('the SGD learning rate scales linearly with the batch: 0.02 per 256 images', () => {
    assert.equal(defaultLr('sgd', 256), 0.02);
    assert.equal(defaultLr('sgd', 16), 0.00125);
    assert.equal(defaultLr('sgd', 32), 0.0025);
    assert.equal(defaultLr('adamw', 16), 0.001);
  });

  it("precision 'bf16' on the CPU needs AVX512_BF16 or AMX-BF16: else ModelError BF16_UNSUPPORTED before any step", () => {
    const none = { avx2: true, avx512f: true, avx512Vnni: true, avx512Bf16: false, amxBf16: false, amxInt8: false };
    assert.throws(
      () => checkTrainPrecision('cpu', 'bf16', none),
      (e: unknown) => e instanceof ModelError && e.code === 'BF16_UNSUPPORTED' && /options\.precision 'bf16'/.test(e.message),
    );
    checkTrainPrecision('cpu', 'bf16', { ...none, avx512Bf16: true });
    checkTrainPrecision('cpu', 'bf16', { ...none, amxBf16: true });
    checkTrainPrecision('cpu', 'fp32', none);
    checkTrainPrecision('cuda:0', 'bf16', none); // the GPU's own bf16
  });

  it('warns once when the loss stays above 3 ln(classes) for 5 steps in a row', () => {
    const watch = new DivergenceWatch(2, 0.01, 16); // bound 3 ln 2 = 2.0794
    const seen = [2.5, 3, 2.2, 2.0, 5, 6, 7, 8, NaN].map((l) => watch.see(l)); // 2.0 resets the count; NaN is ignored
    assert.deepEqual(
      seen.map((w) => w !== undefined),
      [false, false, false, false, false, false, false, false, false],
    );
    const warning = watch.see(9); // the 5th step above the bound after the reset
    assert.match(warning ?? '', /diverging.*above 2\.08.*lr 0\.01 at batchSize 16/);
    assert.equal(watch.see(10), undefined, 'once per run');
  });

  it('from random weights, default options learn squares vs circles (64x64, 120 images, batch 16): >= 90% validation top-1 within 10 epochs', async function () {
    this.timeout(900000);
    const { dir, cleanup } = tempDir();
    const model = await vgg('vgg11_bn', { numClasses: 2, seed: 0 });
    try {
      await writeShapes(path.join(dir, 'train'), 60, 64, 1);
      await writeShapes(path.join(dir, 'val'), 30, 64, 2);
      const warnings: string[] = [];
      const report = await model.fineTune({
        train: path.join(dir, 'train'),
        val: path.join(dir, 'val'),
        epochs: 10,
        imageSize: 64,
        batchSize: 16,
        onProgress: (p) => p.warning && warnings.push(p.warning),
      });
      const trace = report.epochs.map((e) => `${e.trainLoss.toFixed(2)}/${(100 * e.valTop1).toFixed(0)}%`).join(' ');
      console.log(`      epochs (train loss / val top-1): ${trace}`);
      assert.ok(report.best.valTop1 >= 0.9, `best validation top-1 ${report.best.valTop1}: ${trace}`);
      assert.deepEqual(warnings, []);
      assert.deepEqual(report.warnings, []);
    } finally {
      model.dispose();
      cleanup();
    }
  });
});
