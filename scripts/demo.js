#!/usr/bin/env node
// The main job, end to end, with no Python: fine-tune VGG-11-BN on the 1,797
// real handwritten digits that Debian's scikit-learn ships, evaluate it, save
// it as a .pth PyTorch can load, reload that file and classify a few digits.
//   node scripts/demo.js [--epochs 3] [--out digits-vgg11bn.pth]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const sharp = require('sharp');
const { SingleBar, Presets } = require('cli-progress');
const { vgg, runtime } = require(path.resolve(__dirname, '..', 'dist'));

const DIGITS = '/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz';
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};

/** digits.csv.gz: 64 pixel values in 0..16 then the digit, per line -> root/<digit>/<i>.png (32x32). */
async function writeDigits(root) {
  if (!fs.existsSync(DIGITS)) throw new Error(`${DIGITS} not found: install python3-sklearn (apt-get install python3-sklearn)`);
  const rows = zlib.gunzipSync(fs.readFileSync(DIGITS)).toString('utf8').trim().split('\n');
  const counts = new Array(10).fill(0);
  await Promise.all(
    rows.map(async (line, i) => {
      const v = line.split(',').map(Number);
      const label = v[64];
      const pixels = Buffer.from(v.slice(0, 64).map((p) => Math.round((p * 255) / 16)));
      const dir = path.join(root, String(label));
      fs.mkdirSync(dir, { recursive: true });
      counts[label]++;
      await sharp(pixels, { raw: { width: 8, height: 8, channels: 1 } })
        .resize(32, 32, { kernel: 'nearest' })
        .png()
        .toFile(path.join(dir, `${String(i).padStart(4, '0')}.png`));
    }),
  );
  return { n: rows.length, counts };
}

(async () => {
  const rt = runtime();
  console.log(`LibTorch ${rt.torchVersion}, ${rt.cuda ? `CUDA (${rt.cudaDevices} device(s))` : 'CPU'}, ${rt.threads} threads`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vgg-native-demo-'));
  const out = path.resolve(arg('--out', 'digits-vgg11bn.pth'));
  const epochs = Number(arg('--epochs', '3'));
  try {
    const data = path.join(work, 'digits');
    const { n, counts } = await writeDigits(data);
    console.log(`digits: ${n} images in ${data} (per class ${counts.join(' ')})`);

    const model = await vgg('vgg11_bn', { numClasses: 10, seed: 0 });
    const s = model.summary(32);
    console.log(
      `${model.arch} on ${model.device}: ${(s.params / 1e6).toFixed(2)} M parameters, ${(s.macs / 1e6).toFixed(0)} M multiply-adds per 32x32 image`,
    );
    const bar = new SingleBar(
      { format: 'epoch {epoch} |{bar}| {value}/{total} steps  loss {loss}  {ips} img/s  eta {eta}s' },
      Presets.shades_classic,
    );
    let started = false;
    const t0 = Date.now();
    const report = await model.fineTune({
      train: data,
      valFraction: 0.2,
      epochs,
      batchSize: 32,
      imageSize: 32,
      lr: 0.01,
      seed: 0,
      optimizer: { type: 'sgd', momentum: 0.9, weightDecay: 5e-4 },
      schedule: 'cosine',
      augment: false,
      onProgress: (p) => {
        const payload = { epoch: p.epoch + 1, loss: p.loss.toFixed(3), ips: p.imagesPerSecond.toFixed(0) };
        if (!started || p.step === 0) {
          if (started) bar.stop();
          bar.start(p.stepsPerEpoch, 0, payload);
          started = true;
        }
        bar.update(p.step + 1, payload);
      },
    });
    bar.stop();
    for (const e of report.epochs) {
      console.log(
        `epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(3)}, val loss ${e.valLoss?.toFixed(3)}, val top-1 ${(100 * e.valTop1).toFixed(1)}%, ${e.imagesPerSecond.toFixed(0)} img/s`,
      );
    }
    console.log(`fine-tuned in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    await model.save(out);
    console.log(`saved ${out} (${(fs.statSync(out).size / 2 ** 20).toFixed(0)} MiB; torch.load(path, weights_only=True) reads it)`);
    model.dispose();

    const reloaded = await vgg({ weights: out });
    const samples = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => path.join(data, String(d), fs.readdirSync(path.join(data, String(d)))[0]));
    // The checkpoint's meta remembers the 32x32 training pipeline; classify uses it.
    const results = await reloaded.classify(samples, { topK: 1 });
    const shown = results.map((r, i) => `${i}->${r.predictions ? r.predictions[0].label : 'error'}`);
    console.log(`reloaded ${reloaded.arch} (labels ${reloaded.labels.join(',')}); one image per digit, true->predicted: ${shown.join('  ')}`);
    reloaded.dispose();
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(`demo failed: ${e.message}`);
  process.exit(1);
});
