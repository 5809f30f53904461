// extractFeatures() against PyTorch: stage maps from the mmcls-style
// reference (out_indices 0..4), pool5 / fc6 / fc7 / logits from
// test/fixtures/features_reference.py, photos through PIL's pipeline.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { vgg, ImageInputError, AbortError, type Vgg } from '../src';
import type { Tensor } from '../src/tensor';
import { FIXTURES, randomInput, referenceForward, runReference } from './helpers/reference';
import { python, readF32, relError, tempDir } from './helpers/python';

const SKI = '/usr/lib/python3/dist-packages/skimage/data';
const SKL = '/usr/lib/python3/dist-packages/sklearn/datasets/images';
const PHOTOS = [`${SKI}/chelsea.png`, `${SKI}/coffee.png`, `${SKL}/china.jpg`];
const STAGES = ['stage1', 'stage2', 'stage3', 'stage4', 'stage5'] as const;

/** features_reference.py on the model's own weights: every layer by name. */
async function referenceLayers(model: Vgg, input: Tensor, dir: string): Promise<Record<string, Tensor>> {
  await runReference('features_reference.py', model, input, dir, {});
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'outputs.json'), 'utf8')) as Record<string, { file: string; shape: number[] }>;
  return Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, { data: readF32(path.join(dir, v.file)), shape: v.shape }]));
}

function rowNorms(t: Tensor): number[] {
  const n = t.shape[0];
  const size = t.data.length / n;
  return Array.from({ length: n }, (_, r) => Math.hypot(...t.data.subarray(r * size, (r + 1) * size)));
}

describe('extractFeatures', function () {
  this.timeout(300_000);

  describe('backbone only (vgg11, numClasses 0)', () => {
    let m: Vgg;
    let tmp: ReturnType<typeof tempDir>;
    before(async () => {
      tmp = tempDir('vgg-features-');
      m = await vgg('vgg11', { numClasses: 0, seed: 5 });
    });
    after(() => {
      m?.dispose();
      tmp?.cleanup();
    });

    it('stage1..stage5 equal mmcls out_indices (0..4) in PyTorch (relative error < 1e-5), across batches', async () => {
      const x = randomInput([3, 3, 96, 128], 21); // not square, not 224, three rows over batches of 2
      const refs = await referenceForward(m, x, tmp.dir, { outIndices: [0, 1, 2, 3, 4] });
      assert.equal(refs.length, 5);
      for (const [i, layer] of STAGES.entries()) {
        const ours = await m.extractFeatures(x, { layer, batchSize: 2 });
        assert.deepEqual(ours.shape, refs[i].shape, layer);
        const err = relError(ours.data, refs[i].data);
        assert.ok(err < 1e-5, `${layer}: relative error ${err}`);
      }
    });

    it('pool5 is 512-d for any size and equals PyTorch mean over H,W of stage5; normalize gives unit rows', async () => {
      const x = randomInput([2, 3, 160, 96], 4);
      const refs = await referenceLayers(m, x, tmp.dir);
      const ours = await m.extractFeatures(x);
      assert.deepEqual(ours.shape, [2, 512]);
      assert.ok(relError(ours.data, refs.pool5.data) < 1e-5, `pool5: ${relError(ours.data, refs.pool5.data)}`);

      const unit = await m.extractFeatures(x, { normalize: true });
      for (const n of rowNorms(unit)) assert.ok(Math.abs(n - 1) < 1e-5, `norm ${n}`);
      // torch.nn.functional.normalize of PyTorch's pool5, computed from the reference rows.
      const refNorms = rowNorms(refs.pool5);
      const expected = refs.pool5.data.map((v, i) => v / refNorms[Math.floor(i / 512)]);
      assert.ok(relError(unit.data, expected) < 1e-5);

      const maps = await m.extractFeatures(x, { layer: 'stage3', normalize: true });
      assert.deepEqual(maps.shape, [2, 256, 20, 12]);
      for (const n of rowNorms(maps)) assert.ok(Math.abs(n - 1) < 1e-4, `stage3 norm ${n}`);
    });

    it('photos: pool5 through our decoder is close to PyTorch on PIL-decoded photos', async () => {
      const jobs = PHOTOS.map((src, i) => ({ src, out: path.join(tmp.dir, `pil${i}.f32`) }));
      await python(path.join(FIXTURES, 'pil_reference.py'), [JSON.stringify(jobs)]);
      const size = 3 * 224 * 224;
      const pil = new Float32Array(PHOTOS.length * size);
      jobs.forEach((j, i) => pil.set(readF32(j.out), i * size));
      const refs = await referenceLayers(m, { data: pil, shape: [PHOTOS.length, 3, 224, 224] }, tmp.dir);
      const ours = await m.extractFeatures(PHOTOS, { batchSize: 2 });
      assert.deepEqual(ours.shape, [3, 512]);
      // Our decoder differs from PIL by ~0.004 mean abs (test/preprocess.test.ts); the features by about as much.
      const err = relError(ours.data, refs.pool5.data);
      assert.ok(err < 0.02, `relative error ${err}`);
      // The exact pixels PIL produced, given as a tensor, give PyTorch's features exactly.
      const exact = await m.extractFeatures({ data: pil, shape: [3, 3, 224, 224] });
      assert.ok(relError(exact.data, refs.pool5.data) < 1e-5);
    });

    it('a model in a worker thread gives the same features as on the main thread', async () => {
      const state = (await m.stateDict()).map((t) => ({ name: t.name, data: t.data.slice(), shape: t.shape }));
      const x = randomInput([2, 3, 64, 64], 9);
      const main = await m.extractFeatures(x, { layer: 'pool5' });
      const code = `
        const { parentPort, workerData } = require('node:worker_threads');
        require(workerData.tsx);
        const { vgg } = require(workerData.src + '/index.ts');
        const { extractFeatures } = require(workerData.src + '/inference/features.ts');
        (async () => {
          const m = await vgg('vgg11', { numClasses: 0 });
          await m.loadStateDict(workerData.state.map((t) => ({ name: t.name, tensor: { kind: 'array', data: t.data, shape: t.shape } })));
          const f = await m.extractFeatures(workerData.x, { layer: 'pool5' });
          m.dispose();
          parentPort.postMessage({ data: f.data.slice(), shape: f.shape });
        })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));`;
      const runWorker = (): Promise<Tensor> =>
        new Promise((resolve, reject) => {
          const w = new Worker(code, {
            eval: true,
            workerData: { tsx: require.resolve('tsx/cjs'), src: path.resolve(__dirname, '..', 'src'), state, x },
          });
          w.once('message', (msg: { error?: string } & Tensor) => {
            void w.terminate();
            if (msg.error) reject(new Error(`worker: ${msg.error}`));
            else resolve(msg);
          });
          w.once('error', reject);
        });
      // Two workers and the main thread at once: per-environment addon state must keep them apart.
      const [a, b, again] = await Promise.all([runWorker(), runWorker(), m.extractFeatures(x, { layer: 'pool5' })]);
      for (const t of [a, b, again]) {
        assert.deepEqual(t.shape, main.shape);
        assert.ok(relError(t.data, main.data) < 1e-6, `relative error ${relError(t.data, main.data)}`);
      }
      // The main thread's model still works after the workers are gone.
      const after = await m.extractFeatures(x, { layer: 'pool5' });
      assert.ok(relError(after.data, main.data) < 1e-6);
    });

    it('refuses bad arguments at the boundary', async () => {
      const x = randomInput([1, 3, 64, 64]);
      await assert.rejects(m.extractFeatures(x, { layer: 'conv5' as never }), { name: 'RangeError', message: /options\.layer.*"conv5"/ });
      await assert.rejects(m.extractFeatures(x, { layer: 5 as never }), { name: 'TypeError', message: /options\.layer/ });
      await assert.rejects(m.extractFeatures(x, { layer: 'fc7' }), {
        name: 'ModelError',
        code: 'NO_CLASSIFIER',
        message: /numClasses 0.*return fc7/,
      });
      await assert.rejects(m.extractFeatures(x, { normalize: 'yes' as never }), { name: 'TypeError', message: /options\.normalize/ });
      await assert.rejects(m.extractFeatures(x, { batchSize: 0 }), { name: 'RangeError', message: /options\.batchSize/ });
      await assert.rejects(m.extractFeatures(x, { bogus: 1 } as never), { name: 'RangeError', message: /options.*"bogus"/ });
      await assert.rejects(m.extractFeatures({ data: new Float32Array(10), shape: [1, 3, 64, 64] }), { name: 'RangeError', message: /inputs\.data/ });
      await assert.rejects(m.extractFeatures([PHOTOS[0], 42 as never]), { name: 'TypeError', message: /inputs\[1\]/ });
      await assert.rejects(m.extractFeatures([PHOTOS[0], Buffer.from('not an image')]), (e: Error) => e instanceof ImageInputError && e.index === 1);
      await assert.rejects(m.extractFeatures('/no/such/photo.jpg'), (e: Error) => e instanceof ImageInputError && e.path === '/no/such/photo.jpg');
      await assert.rejects(m.extractFeatures([], { layer: 'stage2' }), { name: 'RangeError', message: /at least one image/ });
      assert.deepEqual((await m.extractFeatures([])).shape, [0, 512]);
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(m.extractFeatures(x, { signal: ac.signal }), AbortError);
    });
  });

  describe('with a classifier (vgg11, numClasses 10)', () => {
    let m: Vgg;
    let tmp: ReturnType<typeof tempDir>;
    before(async () => {
      tmp = tempDir('vgg-features-head-');
      m = await vgg('vgg11', { numClasses: 10, seed: 6 });
    });
    after(() => {
      m?.dispose();
      tmp?.cleanup();
    });

    it('fc6, fc7 (after ReLU), logits and pool5 equal PyTorch (relative error < 1e-5)', async () => {
      const x = randomInput([2, 3, 224, 224], 33);
      const refs = await referenceLayers(m, x, tmp.dir);
      const expected: Record<string, number[]> = { pool5: [2, 512], fc6: [2, 4096], fc7: [2, 4096], logits: [2, 10] };
      for (const [layer, shape] of Object.entries(expected)) {
        const ours = await m.extractFeatures(x, { layer: layer as 'fc7', batchSize: 1 });
        assert.deepEqual(ours.shape, shape, layer);
        assert.deepEqual(refs[layer].shape, shape, `reference ${layer}`);
        const err = relError(ours.data, refs[layer].data);
        assert.ok(err < 1e-5, `${layer}: relative error ${err}`);
      }
      const fc7 = await m.extractFeatures(x, { layer: 'fc7' });
      assert.ok(
        fc7.data.every((v) => v >= 0),
        'fc7 is after the ReLU',
      );
      assert.ok(fc7.data.some((v) => v > 0));
    });
  });
});
