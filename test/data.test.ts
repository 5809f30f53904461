// Datasets, splitting, validation and the batch loader. Oracles: the files
// Python wrote (test/fixtures/make_digits.py), torchvision's ImageFolder,
// PIL for pixel values, and hand-computed numbers; never our own output.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadDataset, splitDataset, validateDataset, DatasetError, type Dataset } from '../src/data/dataset';
import { parseCsv } from '../src/data/csv';
import { DataLoader, type Batch, type DataLoaderOptions } from '../src/data/loader';
import { resolveAugmentOptions } from '../src/image/options';
import { python, pythonCode, readF32, tempDir } from './helpers/python';
import { rejectsWithType } from './helpers/assertions';
import { jpegCutAfterHeaders } from './helpers/images';

const MAKE_DIGITS = path.join(__dirname, 'fixtures', 'make_digits.py');
const MEAN = [123.675, 116.28, 103.53];
const STD = [58.395, 57.12, 57.375];

// PIL's squash pipeline: convert('RGB'), resize to SxS bilinear (skipped at the native size), normalise.
const PIL_SQUASH = `
import json, sys
import numpy as np
from PIL import Image
paths, S, out = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
mean = np.array(${JSON.stringify(MEAN)}, np.float32); std = np.array(${JSON.stringify(STD)}, np.float32)
rows = []
for p in paths:
    im = Image.open(p).convert('RGB')
    if im.size != (S, S):
        im = im.resize((S, S), Image.BILINEAR)
    rows.append(((np.asarray(im, np.float32) - mean) / std).transpose(2, 0, 1))
np.stack(rows).astype('<f4').tofile(out)
`;

async function collect(loader: DataLoader, epoch: number, opts?: { startStep?: number; signal?: AbortSignal }): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.epoch(epoch, opts)) out.push(b);
  return out;
}

function mad(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// eslint-disable-next-line @typescript-eslint/ban-types
const rejectsWith = (p: Promise<unknown>, re: RegExp, type: abstract new (...args: never[]) => Error = DatasetError): Promise<Error> =>
  rejectsWithType(p, re, type);

describe('datasets and data loading', function () {
  this.timeout(120_000);
  const tmp = tempDir('vgg-data-');
  const DIGITS = path.join(tmp.dir, 'digits');
  let counts: number[] = [];
  let N = 0;
  let digits: Dataset;

  before(async () => {
    const summary = JSON.parse(await python(MAKE_DIGITS, [DIGITS, '32'])) as { n: number; counts: number[] };
    counts = summary.counts;
    N = summary.n;
    digits = await loadDataset(DIGITS);
  });
  after(() => tmp.cleanup());

  /** A small two-class folder built from digit PNGs, plus any extra files. */
  function smallFolder(name: string, classes: Record<string, number>, extra: Record<string, Buffer | string> = {}): string {
    const root = path.join(tmp.dir, name);
    let k = 0;
    for (const [cls, n] of Object.entries(classes)) {
      fs.mkdirSync(path.join(root, cls), { recursive: true });
      for (let i = 0; i < n; i++, k++) fs.copyFileSync(digits.items[k * 7].path, path.join(root, cls, `${i}.png`));
    }
    for (const [rel, content] of Object.entries(extra)) {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), content);
    }
    return root;
  }

  describe('loadDataset', () => {
    it('scans an ImageFolder exactly as torchvision.datasets.ImageFolder does', async () => {
      const ref = JSON.parse(
        await pythonCode(
          'import json, sys\nfrom torchvision.datasets import ImageFolder\nd = ImageFolder(sys.argv[1])\nprint(json.dumps({"classes": d.classes, "samples": d.samples}))',
          [DIGITS],
        ),
      ) as { classes: string[]; samples: Array<[string, number]> };
      assert.deepEqual(digits.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      assert.deepEqual(digits.classes, ref.classes);
      assert.equal(digits.items.length, 1797);
      assert.deepEqual(
        digits.items.map((it) => [it.path, it.label]),
        ref.samples,
      );
      // Per-class counts as numpy's bincount of sklearn's targets.
      const ours = new Array(10).fill(0);
      for (const it of digits.items) ours[it.label]++;
      assert.deepEqual(ours, counts);
      assert.equal(N, 1797);
    });

    it('reads the CSV index and a {path, label} list into the same items', async () => {
      const byPath = (ds: Dataset) => ds.items.map((it) => `${it.path} ${ds.classes[it.label]}`).sort();
      const fromCsv = await loadDataset({ csv: path.join(DIGITS, 'index.csv') });
      assert.deepEqual(fromCsv.classes, digits.classes);
      assert.equal(fromCsv.items[3].path, path.join(DIGITS, '3', '0003.png')); // CSV keeps its own (original) order
      assert.deepEqual(byPath(fromCsv), byPath(digits));

      const lines = fs.readFileSync(path.join(DIGITS, 'index.csv'), 'utf8').trim().split('\n').slice(1);
      const numeric = lines.map((l) => ({ path: path.join(DIGITS, l.split(',')[0]), label: Number(l.split(',')[1]) }));
      const named = numeric.map((e) => ({ path: e.path, label: String(e.label) }));
      assert.deepEqual(byPath(await loadDataset(numeric)), byPath(digits));
      assert.deepEqual(byPath(await loadDataset(named)), byPath(digits));
    });

    it('parses quoted CSV fields and resolves paths against root or the CSV folder', async () => {
      assert.deepEqual(
        parseCsv('\ufeffpath,label\r\n"a, b.png","say ""hi"""\r\n\r\nc.png,x\n"multi\nline.png",y').map((r) => [r.line, r.fields]),
        [
          [1, ['path', 'label']],
          [2, ['a, b.png', 'say "hi"']],
          [4, ['c.png', 'x']],
          [5, ['multi\nline.png', 'y']],
        ],
      );
      const dir = path.join(tmp.dir, 'csvs');
      fs.mkdirSync(dir, { recursive: true });
      const csv = path.join(dir, 'idx.csv');
      fs.writeFileSync(csv, 'id,Label,Path\n1,dog,"dogs/a, 1.png"\n2,cat,cats/b.png\n3,dog,/abs/c.png\n');
      const ds = await loadDataset({ csv });
      assert.deepEqual(ds.classes, ['cat', 'dog']);
      assert.deepEqual(ds.items, [
        { path: path.join(dir, 'dogs', 'a, 1.png'), label: 1 },
        { path: path.join(dir, 'cats', 'b.png'), label: 0 },
        { path: '/abs/c.png', label: 1 },
      ]);
      const rooted = await loadDataset({ csv, root: '/data' }, { classes: ['dog', 'cat'] });
      assert.deepEqual(
        rooted.items.map((i) => [i.path, i.label]),
        [
          ['/data/dogs/a, 1.png', 0],
          ['/data/cats/b.png', 1],
          ['/abs/c.png', 0],
        ],
      );
      fs.writeFileSync(csv, 'file,class\na.png,x\n');
      await rejectsWith(loadDataset({ csv }), /'path' and 'label' columns.*"file,class"/);
    });

    it('fixes the class list with options.classes (a validation set with fewer classes)', async () => {
      const rev = [...digits.classes].reverse();
      const ds = await loadDataset(DIGITS, { classes: rev });
      assert.deepEqual(ds.classes, rev);
      for (const it of ds.items) assert.equal(9 - it.label, Number(path.basename(path.dirname(it.path))));
      const val = smallFolder('val-subset', { b: 2 });
      const sub = await loadDataset(val, { classes: ['a', 'b', 'c'] });
      assert.deepEqual(
        sub.items.map((i) => i.label),
        [1, 1],
      );
      await rejectsWith(loadDataset(val, { classes: ['a', 'c'] }), /'b'.*not in options\.classes/);
    });
  });

  describe('splitDataset', () => {
    it('gives round(N * f) validation items, stratified per class by largest remainder', () => {
      const { train, val } = splitDataset(digits, { valFraction: 0.2, seed: 0 });
      assert.equal(val.items.length, 359); // round(1797 * 0.2) = round(359.4)
      assert.equal(train.items.length, 1438);
      // counts * 0.2 = 35.6 36.4 35.4 36.6 36.2 36.4 36.2 35.8 34.8 36.0: floors sum to 355,
      // the 4 largest remainders (.8 .8 .6 .6: classes 7, 8, 0, 3) get one more.
      const perClass = new Array(10).fill(0);
      for (const it of val.items) perClass[it.label]++;
      assert.deepEqual(perClass, [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]);
      const all = [...train.items, ...val.items].map((i) => i.path).sort();
      assert.deepEqual(all, digits.items.map((i) => i.path).sort()); // disjoint and complete
      assert.deepEqual(val.classes, digits.classes);
    });

    it('is deterministic in the seed', () => {
      const a = splitDataset(digits, { seed: 7 });
      const b = splitDataset(digits, { seed: 7 });
      const c = splitDataset(digits, { seed: 8 });
      assert.deepEqual(a.val.items, b.val.items);
      assert.notDeepEqual(a.val.items, c.val.items);
      const flat = splitDataset(digits, { seed: 7, stratified: false, valFraction: 0.1 });
      assert.equal(flat.val.items.length, 180); // round(179.7)
      assert.throws(() => splitDataset(digits, { valFraction: 1 }), RangeError);
    });
  });

  describe('validateDataset and dataset errors', () => {
    it('names a missing folder', async () => {
      const missing = path.join(tmp.dir, 'no-such-folder');
      const err = await rejectsWith(loadDataset(missing), /not found/);
      assert.ok(err.message.includes(missing));
    });

    it('refuses an empty folder and class folders without images', async () => {
      const empty = path.join(tmp.dir, 'empty');
      fs.mkdirSync(empty);
      await rejectsWith(loadDataset(empty), /No class folders in ".*empty"/);
      const noImages = smallFolder('no-images', {}, { 'cats/readme.txt': 'x', 'dogs/notes.txt': 'y' });
      await rejectsWith(loadDataset(noImages), /No images in .*found only other files: 2 \.txt/);
      const oneEmpty = smallFolder('one-empty', { cats: 2 }, { 'dogs/readme.txt': 'x' });
      await rejectsWith(loadDataset(oneEmpty), /'dogs'.*hold no images/);
    });

    it('refuses a single class before training', async () => {
      const root = smallFolder('one-class', { cats: 3 });
      const ds = await loadDataset(root);
      const err = await rejectsWith(validateDataset(ds), /fine-tuning needs at least 2 classes; found only 'cats' in/);
      assert.ok(err.message.includes(root));
    });

    it('names the item and the range of an out-of-range label', async () => {
      const list = [
        { path: '/x/a.png', label: 0 },
        { path: '/x/b.png', label: 10 },
      ];
      await rejectsWith(
        loadDataset(list, { classes: digits.classes }),
        /label 10 of item #1 \("\/x\/b\.png"\) is out of range: expected an integer in \[0, 10\)/,
      );
      const skipped = await loadDataset(list, { classes: digits.classes, skipInvalid: true });
      assert.equal(skipped.items.length, 1);
      assert.equal(skipped.skipped.length, 1);
      // A 5-way head cannot train on labels 5..9: the first such item is 5/0005.png (item #901 = 178+182+177+183+181 in folder order).
      const err = await rejectsWith(
        validateDataset(digits, { numClasses: 5, checkImages: false }),
        /Label 5 of item #901 \(".*\/5\/0005\.png"\) is out of range: expected an integer in \[0, 5\)/,
      );
      assert.equal(
        (err as DatasetError).problems.length,
        counts.slice(5).reduce((a, b) => a + b, 0),
      );
    });

    it('finds unreadable images, or skips and counts them with skipInvalid', async () => {
      const root = smallFolder('bad-images', { cats: 3, dogs: 3 }, { 'cats/garbage.png': 'not a png at all', 'dogs/empty.jpg': '' });
      const ds = await loadDataset(root);
      assert.equal(ds.items.length, 8);
      const err = await rejectsWith(validateDataset(ds), /2 of 8 image\(s\) .* cannot be read: .*garbage\.png.*skipInvalid/);
      assert.deepEqual((err as DatasetError).problems.map((p) => path.basename(p.path)).sort(), ['empty.jpg', 'garbage.png']);
      const { dataset, skipped } = await validateDataset(ds, { skipInvalid: true });
      assert.equal(skipped.length, 2);
      assert.equal(dataset.items.length, 6);
      const gone = path.join(root, 'cats', 'vanished.png');
      const { skipped: s2 } = await validateDataset({ ...ds, items: [...ds.items, { path: gone, label: 0 }] }, { skipInvalid: true });
      assert.deepEqual(s2.find((p) => p.path === gone)?.reason, 'file not found');
    });

    it('decodes every image before training: a JPEG cut after its headers is found (PIL cannot load it either)', async () => {
      const root = smallFolder('cut-jpeg', { cats: 3, dogs: 3 });
      const cut = path.join(root, 'dogs', 'cut.jpg');
      fs.writeFileSync(cut, jpegCutAfterHeaders(fs.readFileSync('/usr/lib/python3/dist-packages/skimage/data/rocket.jpg')));
      const pil = await pythonCode(
        `
import sys
from PIL import Image
im = Image.open(sys.argv[1])
print(im.size)
try:
    im.load()
    print('loaded')
except OSError as e:
    print('error')
`,
        [cut],
      );
      assert.deepEqual(pil.trim().split('\n'), ['(640, 427)', 'error'], 'PIL reads the header, then fails on the pixels');
      const ds = await loadDataset(root);
      const err = await rejectsWith(validateDataset(ds), /1 of 7 image\(s\) .* cannot be read: ".*cut\.jpg"/);
      assert.equal((err as DatasetError).problems[0].path, cut);
      const { dataset, skipped } = await validateDataset(ds, { skipInvalid: true });
      assert.deepEqual(
        skipped.map((p) => p.path),
        [cut],
      );
      assert.equal(dataset.items.length, 6);
    });
  });

  describe('DataLoader', () => {
    const base: DataLoaderOptions = { batchSize: 64, imageSize: 32 };

    it('yields [b,3,S,S] batches with the folder labels', async () => {
      const loader = new DataLoader(digits, { ...base, shuffle: true, seed: 3 });
      assert.equal(loader.stepsPerEpoch, 29); // ceil(1797 / 64)
      const batches = await collect(loader, 0);
      assert.equal(batches.length, 29);
      for (const [s, b] of batches.entries()) {
        const n = s < 28 ? 64 : 1797 - 28 * 64;
        assert.deepEqual(b.shape, [n, 3, 32, 32]);
        assert.equal(b.data.length, n * 3 * 32 * 32);
        assert.ok(b.labels instanceof BigInt64Array && b.labels.length === n);
        b.indices.forEach((idx, k) => assert.equal(String(b.labels[k]), path.basename(path.dirname(digits.items[idx].path))));
      }
      assert.equal(new DataLoader(digits, { ...base, dropLast: true }).stepsPerEpoch, 28);
    });

    it('matches PIL pixel for pixel (squash resize + normalisation)', async () => {
      const picks = [0, 500, 1796].map((i) => digits.items[i]);
      const ds: Dataset = { items: picks, classes: digits.classes };
      const paths = JSON.stringify(picks.map((p) => p.path));
      // Native size (no resampling) and a downscale. Upscaling is left out: sharp's 'linear'
      // upsampling (src/image/resize.ts) is 0.11-0.15 MAD from PIL's BILINEAR on these
      // blocky digits (reported to the image pipeline's owner).
      for (const S of [32, 24]) {
        const out = path.join(tmp.dir, `pil-${S}.f32`);
        await pythonCode(PIL_SQUASH, [paths, String(S), out]);
        const [b] = await collect(new DataLoader(ds, { batchSize: 3, imageSize: S }), 0);
        const ref = readF32(out);
        const d = mad(b.data, ref);
        if (S === 32) assert.ok(d < 1e-6, `native size must be exact, MAD ${d}`);
        else assert.ok(d < 0.02, `S=${S}: MAD ${d}`);
      }
      // By hand: digit 0's top-left pixel is 0 → (0 - 123.675) / 58.395 in the red plane.
      const [b] = await collect(new DataLoader(ds, { batchSize: 1, imageSize: 32 }), 0);
      assert.ok(Math.abs(b.data[0] - (0 - 123.675) / 58.395) < 1e-6);
    });

    it('visits every item exactly once per epoch, in a seeded order', async () => {
      const loader = new DataLoader(digits, { ...base, batchSize: 100, shuffle: true, seed: 11 });
      const e0 = (await collect(loader, 0)).flatMap((b) => b.indices);
      const e1 = (await collect(loader, 1)).flatMap((b) => b.indices);
      const all = Array.from({ length: 1797 }, (_, i) => i);
      assert.deepEqual(
        [...e0].sort((a, b) => a - b),
        all,
      );
      assert.deepEqual(
        [...e1].sort((a, b) => a - b),
        all,
      );
      assert.notDeepEqual(e0, e1);
      assert.notDeepEqual(e0, all);
      assert.deepEqual(new DataLoader(digits, { ...base, shuffle: true, seed: 11 }).order(1), e1);
      assert.deepEqual(
        (await collect(new DataLoader(digits, { ...base, batchSize: 500 }), 0)).flatMap((b) => b.indices),
        all,
      );
    });

    // A subset with a short last batch (60 = 7*8 + 4) and random augmentation, so both the
    // order and the per-item randomness have to line up.
    const subset = (): Dataset => ({ items: digits.items.filter((_, i) => i % 30 === 0), classes: digits.classes });
    const trainOpts: DataLoaderOptions = {
      batchSize: 8,
      imageSize: 32,
      shuffle: true,
      seed: 5,
      augment: resolveAugmentOptions({ size: 32, randomResizedCrop: { scale: [0.5, 1] }, hflip: 0.5, colorJitter: { brightness: 0.3 } }),
    };

    it('two shards (rank 0/1 of 2) concatenate to the unsharded batch', async () => {
      const ds = subset();
      assert.equal(ds.items.length, 60);
      const whole = await collect(new DataLoader(ds, trainOpts), 2);
      const r0 = await collect(new DataLoader(ds, { ...trainOpts, rank: 0, worldSize: 2 }), 2);
      const r1 = await collect(new DataLoader(ds, { ...trainOpts, rank: 1, worldSize: 2, prefetch: 0, concurrency: 1 }), 2);
      assert.equal(whole.length, 8);
      assert.equal(r0.length, 8);
      assert.equal(r1.length, 8);
      for (let s = 0; s < 8; s++) {
        assert.equal(r0[s].indices.length, s < 7 ? 4 : 2);
        assert.deepEqual([...r0[s].indices, ...r1[s].indices], whole[s].indices);
        assert.deepEqual(concat([r0[s].data, r1[s].data]), whole[s].data);
        assert.deepEqual([...r0[s].labels, ...r1[s].labels], [...whole[s].labels]);
        assert.equal(r1[s].globalSize, whole[s].indices.length);
      }
      assert.throws(() => new DataLoader(ds, { ...trainOpts, worldSize: 3 }), /multiple of options\.worldSize \(3\).*options\.batchSize/);
      assert.throws(() => new DataLoader(ds, { ...trainOpts, rank: 2, worldSize: 2 }), RangeError);
    });

    it('resumes at startStep with the same batches, whatever the prefetch and concurrency', async () => {
      const ds = subset();
      const full = await collect(new DataLoader(ds, trainOpts), 1);
      const resumed = await collect(new DataLoader(ds, { ...trainOpts, prefetch: 4, concurrency: 3 }), 1, { startStep: 5 });
      assert.equal(resumed.length, 3);
      for (let k = 0; k < 3; k++) {
        assert.equal(resumed[k].step, 5 + k);
        assert.deepEqual(resumed[k].indices, full[5 + k].indices);
        assert.deepEqual(resumed[k].data, full[5 + k].data);
      }
      const other = await collect(new DataLoader(ds, trainOpts), 2);
      assert.notDeepEqual(other[0].data, full[0].data); // a new epoch draws new augmentations
    });

    it('does not decode the batches startStep skips', async () => {
      const root = smallFolder('resume-bad', { a: 2, b: 2 }, { 'a/-bad0.png': 'junk', 'a/-bad1.png': 'junk' });
      const ds = await loadDataset(root); // unshuffled: '-' sorts before '0', so the two junk files make up batch 0
      const loader = new DataLoader(ds, { batchSize: 2, imageSize: 32 });
      await rejectsWith(collect(loader, 0), /Cannot load image ".*-bad0\.png" \(item #0, class 'a'\)/);
      const rest = await collect(loader, 0, { startStep: 1 });
      assert.deepEqual(
        rest.map((b) => b.indices),
        [
          [2, 3],
          [4, 5],
        ],
      );
    });

    it('skips and counts undecodable images with skipInvalid', async () => {
      const good = fs.readFileSync(digits.items[0].path);
      const root = smallFolder('loader-bad', { a: 3, b: 3 }, { 'a/trunc.png': good.subarray(0, good.length - 30), 'b/junk.png': 'junk' });
      const ds = await loadDataset(root);
      const loader = new DataLoader(ds, { batchSize: 4, imageSize: 32, skipInvalid: true });
      const batches = await collect(loader, 0);
      assert.equal(batches.flatMap((b) => b.indices).length, 6);
      assert.equal(
        batches.reduce((n, b) => n + b.skipped.length, 0),
        2,
      );
      assert.deepEqual(loader.skipped.map((s) => path.basename(s.path)).sort(), ['junk.png', 'trunc.png']);
      for (const b of batches) assert.equal(b.shape[0], b.indices.length);
      await collect(loader, 1);
      assert.equal(loader.skipped.length, 2); // counted once per item, not per epoch
    });

    it('stops cleanly on abort and on break', async () => {
      const loader = new DataLoader(digits, { ...base, prefetch: 3 });
      const ac = new AbortController();
      let seen = 0;
      const err = await rejectsWith(
        (async () => {
          for await (const _ of loader.epoch(0, { signal: ac.signal })) {
            seen++;
            if (seen === 2) ac.abort();
          }
        })(),
        /abort/i,
        Error,
      );
      assert.equal(err.name, 'AbortError');
      assert.equal(seen, 2);
      for await (const _ of loader.epoch(0)) break; // finally-block stops the prefetch; nothing unhandled
      const pre = new AbortController();
      pre.abort();
      await rejectsWith(collect(loader, 0, { signal: pre.signal }), /abort/i, Error);
    });

    it('checks its options up front', () => {
      assert.throws(() => new DataLoader(digits, { batchSize: 0 }), /Expected an integer between 1 and .* for options\.batchSize but received 0/);
      assert.throws(() => new DataLoader(digits, { batchSize: 4, resize: 'crop' as never }), /options\.resize/);
      assert.throws(
        () => new DataLoader(digits, { batchSize: 4, imageSize: 32, augment: resolveAugmentOptions({ size: 64 }) }),
        /options\.augment\.size/,
      );
      assert.throws(() => new DataLoader(digits, { batchSize: 2000, dropLast: true }), /fewer than one batch of 2000/);
      // The loader takes augment options resolved at the public boundary, never raw ones it would check per image.
      assert.throws(() => new DataLoader(digits, { batchSize: 4, augment: { hflip: 2 } as never }), {
        name: 'TypeError',
        message: /resolveAugmentOptions/,
      });
      assert.throws(() => resolveAugmentOptions({ hflip: 2 }, 'options.augment'), { name: 'RangeError', message: /options\.augment\.hflip/ });
    });
  });
});
