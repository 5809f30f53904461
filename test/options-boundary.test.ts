// Every public option object is checked once, at the public boundary: a bad
// value is refused before any file is read, with the class the docs promise
// (src/errors.ts: TypeError 'ERR_INVALID_ARG_TYPE' for a wrong type,
// RangeError 'ERR_OUT_OF_RANGE' for a value of the right type outside what is
// allowed, an unknown key included) and the option's full path in the message.
// "Before any file is read" is observed, not assumed: the data and image
// paths given exist, and a spy on node:fs records every call that touches them.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { vgg, preprocess, preprocessBatch, type Vgg } from '../src';
import { loadDataset, splitDataset, validateDataset, type Dataset } from '../src/data/dataset';
import { augment, createRng } from '../src/image/augment';
import { resolveFineTuneOptions } from '../src/train/options';
import { solidPng } from './helpers/images';
import { tempDir } from './helpers/python';

type ErrorClass = typeof TypeError | typeof RangeError;

const CODE = new Map<ErrorClass, string>([
  [TypeError, 'ERR_INVALID_ARG_TYPE'],
  [RangeError, 'ERR_OUT_OF_RANGE'],
]);

const ASYNC_FS = ['open', 'stat', 'lstat', 'readdir', 'readFile', 'access', 'opendir', 'realpath'] as const;
const SYNC_FS = ['openSync', 'statSync', 'lstatSync', 'readdirSync', 'readFileSync', 'existsSync', 'accessSync', 'opendirSync'] as const;

/**
 * Runs `fn` with node:fs watched; returns what it threw (or rejected with) and
 * every fs call whose path lies under `dir`. Only paths under `dir` count, so
 * modules loaded meanwhile do not.
 */
async function watchReads(dir: string, fn: () => unknown): Promise<{ error: unknown; reads: string[] }> {
  const reads: string[] = [];
  const promises = fs.promises as unknown as Record<string, (...a: unknown[]) => unknown>;
  const sync = fs as unknown as Record<string, (...a: unknown[]) => unknown>;
  const saved: Array<[Record<string, (...a: unknown[]) => unknown>, string, (...a: unknown[]) => unknown]> = [];
  const wrap = (owner: Record<string, (...a: unknown[]) => unknown>, name: string) => {
    const original = owner[name];
    saved.push([owner, name, original]);
    owner[name] = function (this: unknown, ...args: unknown[]) {
      const p = args[0];
      if ((typeof p === 'string' || Buffer.isBuffer(p)) && path.resolve(String(p)).startsWith(dir)) reads.push(`${name} ${String(p)}`);
      return original.apply(this, args);
    };
  };
  for (const name of ASYNC_FS) wrap(promises, name);
  for (const name of SYNC_FS) wrap(sync, name);
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  } finally {
    for (const [owner, name, original] of saved) owner[name] = original;
  }
  return { error, reads };
}

/** `fn` must fail with `type`, its code, a message matching `message`, and no file under `dir` touched. */
async function refusedBeforeReading(dir: string, fn: () => unknown, type: ErrorClass, message: RegExp): Promise<void> {
  const { error, reads } = await watchReads(dir, fn);
  assert.ok(error instanceof Error, `expected a ${type.name}, but nothing was thrown`);
  assert.equal(error.constructor, type, `expected a ${type.name} but got ${error.constructor.name}: ${error.message}`);
  assert.equal((error as Error & { code?: string }).code, CODE.get(type));
  assert.match(error.message, message);
  assert.deepEqual(reads, [], `files were read before the options were refused: ${reads.slice(0, 3).join(', ')}`);
}

describe('options are resolved at the public boundary', function () {
  this.timeout(600_000);
  const tmp = tempDir('vgg-native-options-');
  const root = tmp.dir;
  const data = path.join(root, 'data'); // data/<a|b>/<i>.png: 40 images
  const image = path.join(data, 'a', '0.png');
  let model: Vgg;
  let dataset: Dataset;

  before(async () => {
    for (const [k, cls] of ['a', 'b'].entries()) {
      fs.mkdirSync(path.join(data, cls), { recursive: true });
      for (let i = 0; i < 20; i++) {
        fs.writeFileSync(path.join(data, cls, `${i}.png`), await solidPng(40, 40, [k * 200 + i, 60, 255 - k * 200]));
      }
    }
    dataset = {
      items: ['a', 'b'].flatMap((cls, label) => Array.from({ length: 20 }, (_, i) => ({ path: path.join(data, cls, `${i}.png`), label }))),
      classes: ['a', 'b'],
    };
    model = await vgg('vgg11', { numClasses: 2, seed: 1 });
  });
  after(() => {
    model?.dispose();
    tmp.cleanup();
  });

  it('the spy sees reading when it happens', async () => {
    const { error, reads } = await watchReads(data, () => loadDataset(data));
    assert.equal(error, undefined);
    assert.ok(reads.length > 0);
    const decoded = await watchReads(data, () => preprocess(image));
    assert.ok(
      decoded.reads.some((r) => r.includes('0.png')),
      'decoding an image is seen',
    );
  });

  describe('fineTune', () => {
    // With a batchSize, as the user tried it second (before, hflip: 2 failed only after every image was decoded).
    const base = () => ({ train: data, epochs: 1, batchSize: 4, imageSize: 32 });
    const cases: Array<[string, Record<string, unknown>, ErrorClass, RegExp]> = [
      [
        'augment.hflip out of [0, 1]',
        { augment: { hflip: 2 } },
        RangeError,
        /Expected a number between 0 and 1 for options\.augment\.hflip but received 2/,
      ],
      ['augment.hflip of the wrong type', { augment: { hflip: 'often' } }, TypeError, /for options\.augment\.hflip but received "often"/],
      [
        'augment.randomResizedCrop.scale reversed',
        { augment: { randomResizedCrop: { scale: [0.5, 0.1] } } },
        RangeError,
        /options\.augment\.randomResizedCrop\.scale/,
      ],
      ['augment.randomResizedCrop of the wrong type', { augment: { randomResizedCrop: 'yes' } }, TypeError, /options\.augment\.randomResizedCrop/],
      [
        'augment.colorJitter.brightness negative',
        { augment: { colorJitter: { brightness: -0.1 } } },
        RangeError,
        /options\.augment\.colorJitter\.brightness/,
      ],
      [
        'augment.colorJitter unknown key',
        { augment: { colorJitter: { hue: 0.1 } } },
        RangeError,
        /for options\.augment\.colorJitter but received "hue"/,
      ],
      ['augment.mean too short', { augment: { mean: [0, 0] } }, RangeError, /options\.augment\.mean/],
      ['augment.std with a zero', { augment: { std: [1, 0, 1] } }, RangeError, /options\.augment\.std\[1\]/],
      ['augment.interpolation unknown', { augment: { interpolation: 'cubic' } }, RangeError, /options\.augment\.interpolation/],
      ['augment.failOn unknown', { augment: { failOn: 'never' } }, RangeError, /options\.augment\.failOn/],
      ['augment.background unparsable', { augment: { background: 'not-a-colour' } }, RangeError, /options\.augment\.background/],
      ['augment unknown key', { augment: { hflipp: 1 } }, RangeError, /only the keys .* for options\.augment but received "hflipp"/],
      ['augment.size (it is imageSize)', { augment: { size: 64 } }, RangeError, /options\.augment\.size/],
      ['augment of the wrong type', { augment: 'yes' }, TypeError, /for options\.augment but received "yes"/],
      [
        'batchSize not split evenly over the ranks',
        { batchSize: 3, distributed: { rank: 0, worldSize: 2 } },
        RangeError,
        /options\.batchSize but received 3/,
      ],
      [
        'the default batchSize not split evenly',
        { batchSize: undefined, distributed: { rank: 0, worldSize: 3 } },
        RangeError,
        /options\.batchSize defaults to 32.* but received 32/,
      ],
      ['optimizer unknown key', { optimizer: { type: 'sgd', momentun: 0.9 } }, RangeError, /for options\.optimizer but received "momentun"/],
      ['optimizer.betas too short', { optimizer: { type: 'adamw', betas: [0.9] } }, RangeError, /options\.optimizer\.betas/],
      ['schedule unknown key', { schedule: { type: 'cosine', warmup: 1 } }, RangeError, /for options\.schedule but received "warmup"/],
      [
        'earlyStopping unknown key',
        { earlyStopping: { patience: 2, mindelta: 0.1 } },
        RangeError,
        /for options\.earlyStopping but received "mindelta"/,
      ],
      ['freeze unknown name', { freeze: 'all' }, RangeError, /options\.freeze/],
      ['valFraction 1', { valFraction: 1 }, RangeError, /options\.valFraction/],
    ];
    for (const [what, extra, type, message] of cases) {
      it(`refuses ${what}: ${type.name}`, async () => {
        await refusedBeforeReading(data, () => model.fineTune({ ...base(), ...extra } as never), type, message);
      });
    }

    it('batchSize defaults to 32 (Keras, mmcls): 40 images make 2 steps an epoch', async () => {
      const resolved = resolveFineTuneOptions({ train: data, epochs: 1 });
      assert.equal(resolved.batchSize, 32);
      assert.equal(resolved.evalBatchSize, 32);
      const seen: Array<{ step: number; stepsPerEpoch: number }> = [];
      await model.fineTune({
        train: data,
        epochs: 1,
        imageSize: 32,
        valFraction: 0,
        augment: false,
        onProgress: (p) => seen.push({ step: p.step, stepsPerEpoch: p.stepsPerEpoch }),
      });
      assert.deepEqual(seen, [
        { step: 0, stepsPerEpoch: 2 },
        { step: 1, stepsPerEpoch: 2 },
      ]);
    });

    it('resolves augment once, with the defaults filled in', () => {
      const on = resolveFineTuneOptions({ train: data, epochs: 1, imageSize: 48, augment: { hflip: 0 } }).augment;
      assert.ok(on);
      assert.deepEqual(on.size, [48, 48]);
      assert.equal(on.hflip, 0);
      assert.deepEqual(on.randomResizedCrop, { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] });
      assert.deepEqual(on.colorJitter, { brightness: 0, contrast: 0, saturation: 0 });
      assert.equal(resolveFineTuneOptions({ train: data, epochs: 1, augment: true }).augment && 'resolved', 'resolved');
      assert.equal(resolveFineTuneOptions({ train: data, epochs: 1, augment: false }).augment, false);
    });
  });

  describe('evaluate', () => {
    const cases: Array<[Record<string, unknown>, ErrorClass, RegExp]> = [
      [{ batchSize: 0 }, RangeError, /options\.batchSize/],
      [{ imageSize: '32' }, TypeError, /options\.imageSize/],
      [{ resize: 'crop' }, RangeError, /options\.resize/],
      [{ bogus: 1 }, RangeError, /only the keys .* for options but received "bogus"/],
    ];
    for (const [options, type, message] of cases) {
      it(`refuses ${JSON.stringify(options)}: ${type.name}`, async () => {
        await refusedBeforeReading(data, () => model.evaluate(data, options as never), type, message);
      });
    }
  });

  describe('classify, classifyStream, extractFeatures, explain', () => {
    const preprocessCases: Array<[Record<string, unknown>, ErrorClass, RegExp]> = [
      [{ crop: -1 }, RangeError, /for options\.preprocess\.crop but received -1/],
      [{ crop: 'big' }, TypeError, /for options\.preprocess\.crop/],
      [{ resizeShort: 0 }, RangeError, /options\.preprocess\.resizeShort/],
      [{ std: [1, 0, 1] }, RangeError, /options\.preprocess\.std\[1\]/],
      [{ mean: [1, 2] }, RangeError, /options\.preprocess\.mean/],
      [{ interpolation: 'cubic' }, RangeError, /options\.preprocess\.interpolation/],
      [{ maxPixels: 0 }, RangeError, /options\.preprocess\.maxPixels/],
      [{ cropp: 64 }, RangeError, /for options\.preprocess but received "cropp"/],
    ];
    for (const [pre, type, message] of preprocessCases) {
      it(`refuses preprocess ${JSON.stringify(pre)}: ${type.name}`, async () => {
        await refusedBeforeReading(data, () => model.classify([image], { preprocess: pre as never }), type, message);
        await refusedBeforeReading(data, () => model.extractFeatures([image], { preprocess: pre as never }), type, message);
        await refusedBeforeReading(data, () => model.explain(image, { preprocess: pre as never }), type, message);
        // classifyStream checks its options synchronously, before the first next().
        await refusedBeforeReading(data, () => model.classifyStream([image], { preprocess: pre as never }), type, message);
      });
    }

    it('refuses their own options', async () => {
      await refusedBeforeReading(data, () => model.classify([image], { topK: 0 }), RangeError, /options\.topK/);
      await refusedBeforeReading(data, () => model.extractFeatures([image], { layer: 'conv5' as never }), RangeError, /options\.layer/);
      await refusedBeforeReading(data, () => model.explain(image, { classIndex: 2 }), RangeError, /options\.classIndex but received 2/);
    });
  });

  describe('preprocess, preprocessBatch, augment', () => {
    it('preprocess', async () => {
      await refusedBeforeReading(data, () => preprocess(image, { crop: 0 }), RangeError, /for options\.crop but received 0/);
      await refusedBeforeReading(data, () => preprocess(image, { colourManage: 'yes' as never }), TypeError, /options\.colourManage/);
    });

    it('preprocessBatch', async () => {
      await refusedBeforeReading(data, () => preprocessBatch([image], { concurrency: 0 }), RangeError, /options\.concurrency/);
      await refusedBeforeReading(data, () => preprocessBatch([image], { resize: 'zoom' as never }), RangeError, /options\.resize/);
    });

    it('augment', async () => {
      await refusedBeforeReading(data, () => augment(image, { hflip: 2 }, createRng(0)), RangeError, /for options\.hflip but received 2/);
      await refusedBeforeReading(data, () => augment(image, { size: [32] as never }, createRng(0)), RangeError, /options\.size/);
      await refusedBeforeReading(data, () => augment(image, {}, 5 as never), TypeError, /for rng/);
    });
  });

  describe('the dataset readers', () => {
    it('loadDataset', async () => {
      await refusedBeforeReading(data, () => loadDataset(data, { classes: [] }), RangeError, /options\.classes/);
      await refusedBeforeReading(data, () => loadDataset(data, { classes: ['a', 'a'] }), RangeError, /options\.classes/);
      await refusedBeforeReading(data, () => loadDataset(data, { skipInvalid: 'yes' as never }), TypeError, /options\.skipInvalid/);
      await refusedBeforeReading(data, () => loadDataset(data, { clases: ['a', 'b'] } as never), RangeError, /for options but received "clases"/);
    });

    it('validateDataset', async () => {
      await refusedBeforeReading(data, () => validateDataset(dataset, { concurrency: 0 }), RangeError, /options\.concurrency/);
      await refusedBeforeReading(
        data,
        () => validateDataset(dataset, { checkImage: false } as never),
        RangeError,
        /for options but received "checkImage"/,
      );
    });

    it('splitDataset', async () => {
      await refusedBeforeReading(data, () => splitDataset(dataset, { valFraction: 1 }), RangeError, /options\.valFraction/);
      await refusedBeforeReading(data, () => splitDataset(dataset, { valFraction: '0.2' as never }), TypeError, /options\.valFraction/);
      await refusedBeforeReading(data, () => splitDataset(dataset, { stratify: false } as never), RangeError, /for options but received "stratify"/);
    });
  });

  it('vgg(): a bad option before the weights file is opened', async () => {
    const weights = path.join(root, 'model.pth');
    fs.writeFileSync(weights, 'not a checkpoint');
    try {
      await refusedBeforeReading(root, () => vgg('vgg11', { weights, numClasses: -1 }), RangeError, /options\.numClasses/);
    } finally {
      fs.rmSync(weights);
    }
  });
});
