#!/usr/bin/env node
// `node scripts/check-onnx-export.js [--keep DIR]`: the ONNX export's
// acceptance run at ImageNet size. For each of the 8 architectures: a model
// with a 1000-class head (random init with a fixed seed, biases and batch-norm
// statistics drawn from a seeded generator too), exported at 224x224; the
// file run in onnxruntime-node against our forward on a batch of 2, then
// `onnx.checker.check_model(onnx.load(f), full_check=True)` in the system
// python3 (Debian's python3-onnx; VGG_TEST_PYTHON overrides). Prints one line
// per variant (max relative error, file size, seconds); exit 1 on any failure.
// Uses dist/ when it holds the exporter, else the TypeScript sources via tsx.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { relError } = require('./rel-error');

const ROOT = path.resolve(__dirname, '..');
const fromDist = fs.existsSync(path.join(ROOT, 'dist', 'weights', 'onnx', 'export', 'index.js')) && !process.env.VGG_FROM_SRC;
if (!fromDist) require('tsx/cjs');
const base = path.join(ROOT, fromDist ? 'dist' : 'src');
const { vgg, ARCHITECTURES } = require(base);
const { coreOf } = require(path.join(base, 'model'));
const { writeOnnx } = require(path.join(base, 'weights', 'onnx', 'export'));
const ort = require('onnxruntime-node');

const PYTHON = process.env.VGG_TEST_PYTHON ?? '/usr/bin/python3';
const TOLERANCE = 1e-4;
const SIZE = 224;
const keepAt = process.argv.indexOf('--keep');
const dir = keepAt > 0 ? path.resolve(process.argv[keepAt + 1]) : fs.mkdtempSync(path.join(os.tmpdir(), 'vgg-onnx-check-'));
fs.mkdirSync(dir, { recursive: true });

/** Seeded floats in [lo, hi). */
function uniform(seed) {
  let s = seed >>> 0;
  return (lo, hi) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s / 2 ** 32) * (hi - lo);
  };
}

function input(n, seed) {
  const u = uniform(seed);
  const data = new Float32Array(n * 3 * SIZE * SIZE).map(() => u(-2, 2));
  return { data, shape: [n, 3, SIZE, SIZE] };
}

/** Biases and BN parameters/statistics off their init (zeros and ones), so their export counts. */
async function perturb(model, seed) {
  const u = uniform(seed);
  const ranges = [
    [/bn\.running_var$/, 0.5, 2],
    [/bn\.weight$/, 0.5, 1.5],
    [/(bn\.bias|bn\.running_mean)$/, -0.2, 0.2],
    [/bias$/, -0.1, 0.1],
  ];
  const entries = [];
  for (const t of await model.stateDict()) {
    const r = ranges.find(([re]) => re.test(t.name));
    if (!r || t.dtype !== 'float32') continue;
    entries.push({ name: t.name, tensor: { kind: 'array', data: new Float32Array(t.data.length).map(() => u(r[1], r[2])), shape: t.shape } });
  }
  await model.loadStateDict(entries, { strict: false });
}

async function checkOne(arch, i) {
  const t0 = Date.now();
  const file = path.join(dir, `${arch}.onnx`);
  const model = await vgg(arch, { numClasses: 1000, seed: 1000 + i });
  let exportSeconds = 0;
  let err = Number.NaN;
  try {
    await perturb(model, 2000 + i);
    const state = await model.stateDict();
    const t1 = Date.now();
    await writeOnnx(file, {
      arch: model.spec,
      numClasses: model.numClasses,
      backbone: coreOf(model).backbone,
      state,
      preprocessing: { inputSize: SIZE, resize: 'short' },
      labels: model.labels,
    });
    exportSeconds = (Date.now() - t1) / 1000;
    const x = input(2, 3000 + i);
    const ours = await model.forward(x);
    const session = await ort.InferenceSession.create(file);
    try {
      const out = await session.run({ input: new ort.Tensor('float32', x.data, x.shape) });
      if (out.logits.dims.join() !== ours.shape.join()) throw new Error(`onnxruntime gives [${out.logits.dims}], forward [${ours.shape}]`);
      err = relError(out.logits.data, ours.data);
    } finally {
      await session.release();
    }
  } finally {
    model.dispose();
  }
  const code = 'import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print(m.opset_import[0].version)';
  const opset = execFileSync(PYTHON, ['-c', code, file], { encoding: 'utf8', maxBuffer: 1 << 20 }).trim();
  const bytes = fs.statSync(file).size;
  if (keepAt < 0) fs.rmSync(file);
  return { arch, err, bytes, opset, exportSeconds, seconds: (Date.now() - t0) / 1000, ok: err < TOLERANCE };
}

(async () => {
  const loader = fromDist ? 'dist/' : 'src/ via tsx';
  console.log(
    `check-onnx-export: ${ARCHITECTURES.length} architectures, 1000 classes, ${SIZE}x${SIZE}, batch 2, tolerance ${TOLERANCE} (${loader}, onnxruntime-node ${require('onnxruntime-node/package.json').version})`,
  );
  let failed = 0;
  for (const [i, arch] of ARCHITECTURES.entries()) {
    try {
      const r = await checkOne(arch, i);
      if (!r.ok) failed++;
      console.log(
        `${arch.padEnd(9)} max rel err ${r.err.toExponential(2)}  size ${(r.bytes / 2 ** 20).toFixed(1)} MiB  opset ${r.opset} full_check ok  ` +
          `export ${r.exportSeconds.toFixed(1)} s  total ${r.seconds.toFixed(1)} s  ${r.ok ? 'ok' : 'FAIL'}`,
      );
    } catch (e) {
      failed++;
      console.log(`${arch.padEnd(9)} FAIL: ${e instanceof Error ? e.message.split('\n').slice(-3).join(' | ') : String(e)}`);
    }
  }
  if (keepAt < 0) fs.rmSync(dir, { recursive: true, force: true });
  console.log(failed ? `${failed} of ${ARCHITECTURES.length} failed` : `all ${ARCHITECTURES.length} passed`);
  process.exit(failed ? 1 : 0);
})();
