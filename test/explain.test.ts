// explain(): Grad-CAM against the same computation in PyTorch
// (test/fixtures/gradcam_reference.py) on the same weights and input, and on a
// small model fine-tuned to tell squares from circles, whose map must point at
// the square on held-out images.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { vgg, ModelError, type Vgg } from '../src';
import { preprocess } from '../src/image/preprocess';
import type { Tensor } from '../src/tensor';
import { randomInput, runReference } from './helpers/reference';
import { readF32, relError, tempDir } from './helpers/python';

const SKI = '/usr/lib/python3/dist-packages/skimage/data';
/** Grad-CAM's tolerance against PyTorch: largest |ours - theirs| over the map's 0..1 range. */
const TOLERANCE = 1e-4;

/** PyTorch's Grad-CAM maps [N, H, W] and classes for `input` on the model's weights. */
async function referenceCam(
  model: Vgg,
  input: Tensor,
  dir: string,
  stage: number,
  classIndex?: number,
): Promise<{ cam: Float32Array; classes: number[] }> {
  await runReference('gradcam_reference.py', model, input, dir, { stage, class_index: classIndex ?? null });
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'cam.json'), 'utf8')) as { class_indices: number[] };
  return { cam: readF32(path.join(dir, 'cam.f32')), classes: meta.class_indices };
}

function argmax(map: Tensor): [number, number] {
  let best = 0;
  for (let i = 1; i < map.data.length; i++) if (map.data[i] > map.data[best]) best = i;
  const w = map.shape[1];
  return [Math.floor(best / w), best % w];
}

function statesEqual(a: Awaited<ReturnType<Vgg['stateDict']>>, b: Awaited<ReturnType<Vgg['stateDict']>>): boolean {
  return a.every(
    (t, i) =>
      t.name === b[i].name &&
      Buffer.compare(
        Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
        Buffer.from(b[i].data.buffer, b[i].data.byteOffset, b[i].data.byteLength),
      ) === 0,
  );
}

describe('explain (Grad-CAM)', function () {
  this.timeout(600_000);
  let tmp: ReturnType<typeof tempDir>;
  let model: Vgg;

  before(async () => {
    tmp = tempDir('vgg-explain-');
    model = await vgg('vgg11_bn', { numClasses: 10, seed: 3 });
  });
  after(() => {
    model?.dispose();
    tmp?.cleanup();
  });

  it(`equals PyTorch's Grad-CAM within ${TOLERANCE} (tensor input, stage5 default and stage3 with a class)`, async function () {
    const input = randomInput([1, 3, 96, 96], 7);
    const ours = await model.explain(input);
    assert.deepEqual(ours.map.shape, [96, 96]);
    const ref = await referenceCam(model, input, tmp.dir, 4);
    assert.equal(ours.classIndex, ref.classes[0]);
    const err = relError(ours.map.data, ref.cam);
    console.log(`      stage5: relative error ${err.toExponential(2)}, class ${ours.classIndex}, p ${ours.probability.toFixed(4)}`);
    assert.ok(err < TOLERANCE, `relative error ${err}`);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of ours.map.data) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    assert.ok(lo >= 0 && hi <= 1 && hi === 1, `map range ${lo}..${hi}`);

    const cls = (ours.classIndex + 3) % 10;
    const s3 = await model.explain(input, { layer: 'stage3', classIndex: cls });
    assert.equal(s3.classIndex, cls);
    const ref3 = await referenceCam(model, input, tmp.dir, 2, cls);
    const err3 = relError(s3.map.data, ref3.cam);
    console.log(`      stage3: relative error ${err3.toExponential(2)}`);
    assert.ok(err3 < TOLERANCE, `relative error ${err3}`);
  });

  it("a photograph goes through classify()'s preprocessing; the map matches PyTorch's on that tensor", async function () {
    const photo = `${SKI}/chelsea.png`;
    const pre = { resizeShort: 80, crop: 64 };
    const ours = await model.explain(photo, { preprocess: pre });
    const [top] = await model.classify(photo, { preprocess: pre, topK: 1 });
    assert.equal(ours.classIndex, top.index);
    assert.ok(Math.abs(ours.probability - top.probability) < 1e-5, `${ours.probability} vs ${top.probability}`);
    assert.equal(ours.label, 'class_' + top.index);
    const tensor = await preprocess(photo, pre);
    const ref = await referenceCam(model, tensor, tmp.dir, 4);
    const err = relError(ours.map.data, ref.cam);
    assert.ok(err < TOLERANCE, `relative error ${err}`);

    const file = path.join(tmp.dir, 'cam.png');
    await ours.save(file);
    const meta = await sharp(file).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', 64, 64, 3]);
    assert.deepEqual(
      fs.readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });

  it('leaves weights and batch-norm statistics untouched, and checks its options', async function () {
    const before = await model.stateDict();
    await model.explain(randomInput([1, 3, 64, 64], 2), { layer: 'stage4' });
    assert.ok(statesEqual(before, await model.stateDict()), 'state changed');
    await assert.rejects(model.explain(randomInput([1, 3, 64, 64]), { classIndex: 10 }), /options\.classIndex/);
    await assert.rejects(model.explain(randomInput([1, 3, 64, 64]), { layer: 'pool5' as never }), /options\.layer/);
    await assert.rejects(model.explain(randomInput([1, 3, 64, 64]), { topK: 1 } as never), /only the keys/);
    const backbone = await vgg('vgg11', { numClasses: 0 });
    try {
      await assert.rejects(backbone.explain(randomInput([1, 3, 64, 64])), (e: unknown) => e instanceof ModelError && e.code === 'NO_CLASSIFIER');
    } finally {
      backbone.dispose();
    }
  });
});

/** A 64x64 PNG with one filled square or circle (side 18..26) on a plain background with a few dots; its box. */
async function shapeImage(kind: 'square' | 'circle', rand: () => number): Promise<{ png: Buffer; box: { x: number; y: number; size: number } }> {
  const S = 64;
  const size = 18 + Math.floor(rand() * 9);
  const x = Math.floor(rand() * (S - size));
  const y = Math.floor(rand() * (S - size));
  const grey = 40 + Math.floor(rand() * 80);
  const fg = `rgb(${150 + Math.floor(rand() * 100)},${150 + Math.floor(rand() * 100)},${150 + Math.floor(rand() * 100)})`;
  const dots = Array.from(
    { length: 6 },
    () => `<circle cx="${(rand() * S).toFixed(1)}" cy="${(rand() * S).toFixed(1)}" r="1.5" fill="rgb(200,200,200)"/>`,
  ).join('');
  const shape =
    kind === 'square'
      ? `<rect x="${x}" y="${y}" width="${size}" height="${size}" fill="${fg}"/>`
      : `<circle cx="${x + size / 2}" cy="${y + size / 2}" r="${size / 2}" fill="${fg}"/>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${S}" height="${S}"><rect width="${S}" height="${S}" fill="rgb(${grey},${grey},${grey})"/>${dots}${shape}</svg>`;
  return { png: await sharp(Buffer.from(svg)).png().toBuffer(), box: { x, y, size } };
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('explain: squares vs circles', function () {
  this.timeout(600_000);
  const TRAIN_PER_CLASS = 120;
  const HELD_OUT = 40;
  let tmp: ReturnType<typeof tempDir>;

  before(() => {
    tmp = tempDir('vgg-explain-shapes-');
  });
  after(() => tmp?.cleanup());

  it("after fine-tuning, the map's peak (layer stage4) lies inside the square on >= 90% of held-out images", async function () {
    const rand = lcg(12);
    for (const kind of ['square', 'circle'] as const) {
      fs.mkdirSync(path.join(tmp.dir, 'train', kind), { recursive: true });
      for (let i = 0; i < TRAIN_PER_CLASS; i++) {
        fs.writeFileSync(path.join(tmp.dir, 'train', kind, `${i}.png`), (await shapeImage(kind, rand)).png);
      }
    }
    const held = await Promise.all(Array.from({ length: HELD_OUT }, () => shapeImage('square', rand)));
    const model = await vgg('vgg11_bn', { numClasses: 2, seed: 5, dropout: 0.1 });
    try {
      const t0 = Date.now();
      const report = await model.fineTune({
        train: path.join(tmp.dir, 'train'),
        valFraction: 0,
        epochs: 4,
        batchSize: 16,
        imageSize: 64,
        resize: 'squash',
        augment: false,
        lr: 0.01,
        optimizer: { type: 'sgd', momentum: 0.9 },
        seed: 1,
      });
      const trained = (Date.now() - t0) / 1000;
      const square = model.labels!.indexOf('square');
      // At 64x64, stage5's conv maps are 4x4 (16-pixel cells): too coarse to point inside an
      // 18..26-pixel square; stage4's 8x8 maps are the deepest finer than the object. stage5 is logged.
      const inside = { stage4: 0, stage5: 0 };
      let correct = 0;
      for (const { png, box } of held) {
        for (const layer of ['stage4', 'stage5'] as const) {
          const [r, c] = argmax((await model.explain(png, { classIndex: square, layer })).map);
          if (r >= box.y && r < box.y + box.size && c >= box.x && c < box.x + box.size) inside[layer]++;
        }
        const [top] = await model.classify(png, { topK: 1 });
        if (top.index === square) correct++;
      }
      const losses = report.epochs.map((e) => e.trainLoss.toFixed(3)).join(' ');
      console.log(
        `      trained in ${trained.toFixed(1)} s (losses ${losses}); held-out squares: ${correct}/${HELD_OUT} classified as square; ` +
          `peak inside the square: stage4 ${inside.stage4}/${HELD_OUT}, stage5 ${inside.stage5}/${HELD_OUT}`,
      );
      assert.ok(inside.stage4 >= 0.9 * HELD_OUT, `stage4's peak inside the square on ${inside.stage4}/${HELD_OUT}`);
    } finally {
      model.dispose();
    }
  });
});
