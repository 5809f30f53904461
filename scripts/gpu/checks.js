#!/usr/bin/env node
// The GPU checks of issue 14, run by scripts/gpu/run.sh inside the unpacked
// kit: vgg-native on CUDA against PyTorch eager on the same GPU in the same
// run (scripts/gpu/torch_ref.py is PyTorch's side). Every check reports pass,
// fail, error or skipped with its reason; without CUDA each CUDA check is
// skipped visibly. --plumbing also runs the same code on the CPU at small
// sizes, so a machine without a GPU proves the checks themselves work.
//
//   node scripts/gpu/checks.js --out DIR [--plumbing] [--python python3]
// Results: DIR/results.json and DIR/results.md.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { relError } = require('../rel-error');

const ROOT = path.resolve(__dirname, '..', '..');
const ARCHS = ['vgg11', 'vgg13', 'vgg16', 'vgg19', 'vgg11_bn', 'vgg13_bn', 'vgg16_bn', 'vgg19_bn'];
const GFLOP = { vgg16: 30.95, vgg11: 15.22 }; // 2 x multiply-adds per 224x224 image
const BF16_ROOFLINE_TFLOPS = 790; // dense bf16 GEMM measured on this workplace's H200 (KINDS.md)
const FORWARD_TOL = 1e-4;
const LOSS_TOL = 1e-3;
const DP_TOL = 1e-4;

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

// Full-float32 convolutions for the parity checks: src/settings.ts reads it when the addon loads and hands it to native configure().
if (!process.argv.includes('--throughput-ours')) process.env.VGG_NATIVE_TF32 = '0';
const vn = require(path.join(ROOT, 'dist'));
const { coreOf } = require(path.join(ROOT, 'dist', 'model.js'));

const PYTHON = arg('--python', process.env.PYTHON || 'python3');
const TORCH_REF = path.join(__dirname, 'torch_ref.py');

function py(cmd, dir, device) {
  const args = [TORCH_REF, cmd, dir, ...(device ? [device] : [])];
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${PYTHON} torch_ref.py ${cmd} failed (${r.status}): ${(r.stderr || '').slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function pythonStatus() {
  const r = spawnSync(PYTHON, ['-c', 'import torch, torchvision; print(torch.__version__, torch.cuda.is_available())'], { encoding: 'utf8' });
  return r.status === 0 ? { ok: true, version: r.stdout.trim() } : { ok: false, reason: `${PYTHON} cannot import torch and torchvision` };
}

function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
}

function writeRaw(file, typed) {
  fs.writeFileSync(file, Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength));
}

/** A seeded normal generator (mulberry32 + Box-Muller): the same batches in every process. */
function normals(seed, n) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const a = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

function topk(row, k) {
  return Array.from(row.keys())
    .sort((a, b) => row[b] - row[a])
    .slice(0, k);
}

function rows(t) {
  const [n, c] = t.shape;
  return Array.from({ length: n }, (_, i) => t.data.subarray(i * c, (i + 1) * c));
}

function tmpDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `vgg-gpu-${name}-`));
}

function photos() {
  const dir = process.env.VGG_GPU_PHOTOS || path.join(ROOT, 'photos');
  try {
    return fs
      .readdirSync(dir)
      .filter((f) => /\.(jpe?g|png)$/i.test(f))
      .sort()
      .map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

// ---- checks -------------------------------------------------------------------------------

/** fp32 logits of the 8 variants against PyTorch's with the same weights; then fp16/bf16 top-5 on photos. */
async function forwardParity(device, small) {
  const dir = tmpDir('forward');
  const archs = small ? ['vgg11', 'vgg11_bn'] : ARCHS;
  const cfg = { batch: small ? 1 : 2, size: small ? 32 : 224, archs };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  try {
    py('weights', dir);
    py('forward', dir, device);
    const x = readF32(path.join(dir, 'input.f32'));
    const shape = [cfg.batch, 3, cfg.size, cfg.size];
    const variants = [];
    for (const arch of archs) {
      const m = await vn.vgg(arch, { weights: path.join(dir, `${arch}.pth`), device });
      try {
        const y = await m.forward({ data: x, shape });
        const rel = relError(y.data, readF32(path.join(dir, `${arch}.torch.f32`)));
        variants.push({ arch, rel, pass: rel < FORWARD_TOL });
      } finally {
        m.dispose();
      }
    }
    const out = { name: `forward fp32 vs PyTorch (${archs.length} variants, TF32 off)`, tolerance: FORWARD_TOL, variants };
    out.status = variants.every((v) => v.pass) ? 'pass' : 'fail';
    out.precision = await precisionTop5(device, path.join(dir, `${small ? 'vgg11_bn' : 'vgg16_bn'}.pth`), small);
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** fp16 and bf16 autocast (channels_last) against fp32 of the same model: top-5 per photo. */
async function precisionTop5(device, weights, small) {
  const files = photos();
  if (!files.length) return { status: 'skipped', reason: 'no photos in the kit (photos/ or VGG_GPU_PHOTOS)' };
  const size = small ? 64 : 224;
  const tensors = [];
  for (const f of files) tensors.push(await vn.preprocess(f, small ? { resize: 'squash', crop: size } : undefined));
  const per = tensors[0].data.length;
  const data = new Float32Array(per * tensors.length);
  tensors.forEach((t, i) => data.set(t.data, i * per));
  const shape = [tensors.length, ...tensors[0].shape.slice(-3)];
  const m = await vn.vgg(small ? 'vgg11_bn' : 'vgg16_bn', { weights, device });
  try {
    const ref = rows(await m.forward({ data, shape }, { channelsLast: true })).map((r) => topk(r, 5));
    const result = { status: 'pass', photos: files.map((f) => path.basename(f)), input: size };
    const precisions = device === 'cpu' ? ['bf16'] : ['fp16', 'bf16'];
    for (const precision of precisions) {
      const got = rows(await m.forward({ data, shape }, { precision, channelsLast: true })).map((r) => topk(r, 5));
      const sameSet = got.filter((g, i) => [...g].sort().join() === [...ref[i]].sort().join()).length;
      const sameOrder = got.filter((g, i) => g.join() === ref[i].join()).length;
      const top1 = got.filter((g, i) => g[0] === ref[i][0]).length;
      result[precision] = { top5SetEqual: sameSet, top5OrderEqual: sameOrder, top1Equal: top1, of: got.length };
      if (sameSet !== got.length) result.status = 'fail';
    }
    return result;
  } finally {
    m.dispose();
  }
}

/** classify() of the photos on CUDA against the CPU, same weights. */
async function classifyVsCpu(device, small) {
  const files = photos();
  if (!files.length) return { name: `classify ${device} vs CPU`, status: 'skipped', reason: 'no photos in the kit' };
  const arch = small ? 'vgg11' : 'vgg16';
  const seeded = await vn.vgg(arch, { seed: 21 });
  const dir = tmpDir('classify');
  try {
    const weights = path.join(dir, 'w.pth');
    await seeded.save(weights, { layout: 'torchvision' });
    seeded.dispose();
    const a = await vn.vgg(arch, { weights, device });
    const b = await vn.vgg(arch, { weights, device: 'cpu' });
    try {
      const opts = small ? { topK: 5, preprocess: { resize: 'squash', crop: 64 } } : { topK: 5 };
      const got = await a.classify(files, opts);
      const want = await b.classify(files, opts);
      const idx = (item) => (item.predictions || item).map((p) => p.index).join();
      const agree = got.filter((g, i) => idx(g) === idx(want[i])).length;
      return { name: `classify ${device} vs CPU (top-5, ${arch})`, status: agree === files.length ? 'pass' : 'fail', agree, of: files.length };
    } finally {
      a.dispose();
      b.dispose();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** 20 SGD steps (two groups, momentum, weight decay, label smoothing) against the same loop in PyTorch; save -> torch.load. */
async function fineTuneParity(device, small) {
  const dir = tmpDir('finetune');
  const cfg = {
    arch: 'vgg11_bn',
    numClasses: 10,
    steps: small ? 3 : 20,
    batch: small ? 4 : 16,
    size: small ? 32 : 64,
    lr: 0.002,
    headLr: 0.01,
    momentum: 0.9,
    weightDecay: 5e-4,
    labelSmoothing: 0.1,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  const init = await vn.vgg(cfg.arch, { numClasses: cfg.numClasses, seed: 3, dropout: 0 });
  try {
    await init.save(path.join(dir, 'initial.pth'), { layout: 'torchvision' });
    init.dispose();
    const m = await vn.vgg(cfg.arch, { weights: path.join(dir, 'initial.pth'), numClasses: cfg.numClasses, dropout: 0, device });
    const core = coreOf(m);
    await core.configureOptimizer({
      type: 'sgd',
      lr: cfg.lr,
      headLr: cfg.headLr,
      momentum: cfg.momentum,
      nesterov: false,
      weightDecay: cfg.weightDecay,
      betas: [0.9, 0.999],
      eps: 1e-8,
    });
    const shape = [cfg.batch, 3, cfg.size, cfg.size];
    const losses = [];
    for (let k = 0; k < cfg.steps; k++) {
      const x = normals(1000 + k, cfg.batch * 3 * cfg.size * cfg.size);
      const y = BigInt64Array.from({ length: cfg.batch }, (_, i) => BigInt((i + k) % cfg.numClasses));
      writeRaw(path.join(dir, `batch_${k}.f32`), x);
      writeRaw(path.join(dir, `labels_${k}.i64`), y);
      const out = await core.trainStep(
        { data: x, shape, labels: y },
        {
          labelSmoothing: cfg.labelSmoothing,
          clipGradNorm: 0,
          lr: [cfg.lr, cfg.headLr],
          precision: 'fp32',
        },
      );
      losses.push(out.loss);
    }
    await m.save(path.join(dir, 'saved.pth'), { layout: 'torchvision' });
    m.dispose();
    const ref = py('steps', dir, device);
    const rel = losses.map((l, k) => Math.abs(l - ref.losses[k]) / Math.abs(ref.losses[k]));
    const worst = Math.max(...rel);
    const loaded = py('load', dir);
    const steps = {
      name: `${cfg.steps} fine-tuning steps vs PyTorch (${cfg.arch}, batch ${cfg.batch}, ${cfg.size}x${cfg.size})`,
      status: worst < LOSS_TOL ? 'pass' : 'fail',
      tolerance: LOSS_TOL,
      worstRel: worst,
      losses,
      torchLosses: ref.losses,
    };
    const save = {
      name: 'save -> torch.load(weights_only=True)',
      status: loaded.missing.length === 0 ? 'pass' : 'fail',
      tensors: loaded.tensors,
      missing: loaded.missing,
      weightsRelL2VsTorch: loaded.relL2,
    };
    return [steps, save];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const DP = { arch: 'vgg11', numClasses: 10, steps: 4, size: 32, lr: 0.02, momentum: 0.9 };

/** One data-parallel rank (a child process): its shard of every global batch; prints losses and a weights file. */
async function dpRank(dir, rank, world, port, device, globalBatch) {
  const m = await vn.vgg(DP.arch, { weights: path.join(dir, 'initial.pth'), numClasses: DP.numClasses, dropout: 0, device });
  const core = coreOf(m);
  if (world > 1) await core.joinProcessGroup({ masterAddr: '127.0.0.1', masterPort: port, rank, worldSize: world, timeoutMs: 120000 });
  await core.configureOptimizer({
    type: 'sgd',
    lr: DP.lr,
    headLr: DP.lr,
    momentum: DP.momentum,
    nesterov: false,
    weightDecay: 0,
    betas: [0.9, 0.999],
    eps: 1e-8,
  });
  const per = 3 * DP.size * DP.size;
  const local = globalBatch / world;
  const losses = [];
  for (let k = 0; k < DP.steps; k++) {
    const x = normals(500 + k, globalBatch * per).subarray(rank * local * per, (rank + 1) * local * per);
    const y = BigInt64Array.from({ length: local }, (_, i) => BigInt((rank * local + i + k) % DP.numClasses));
    const out = await core.trainStep(
      { data: x.slice(), shape: [local, 3, DP.size, DP.size], labels: y },
      {
        labelSmoothing: 0,
        clipGradNorm: 0,
        lr: [DP.lr, DP.lr],
        precision: 'fp32',
        lossScale: 1,
      },
    );
    losses.push(out.loss);
  }
  const state = await m.stateDict();
  const total = state.reduce((n, t) => n + t.data.length, 0);
  const flat = new Float32Array(total);
  let o = 0;
  for (const t of state) {
    flat.set(Float32Array.from(t.data, Number), o);
    o += t.data.length;
  }
  writeRaw(path.join(dir, `final_${world}_${rank}.f32`), flat);
  m.dispose();
  return losses;
}

function runChild(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`child ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`))));
  });
}

/**
 * 2 ranks against 1 rank with the global batch. Gloo: both ranks on `device` (NCCL refuses two
 * ranks on one GPU). NCCL: one GPU per rank (cuda:0, cuda:1), where the machine has two.
 */
async function dataParallel(device, small, backend = 'gloo') {
  const perGpu = backend === 'nccl';
  const name = perGpu
    ? 'data-parallel (NCCL): 2 ranks, one GPU each, vs 1 rank, global batch'
    : `data-parallel: 2 ranks on one ${device === 'cpu' ? 'CPU' : 'GPU'} vs 1 rank, global batch`;
  const rt = vn.runtime();
  if (!rt.distributed) return { name, status: 'skipped', reason: 'this build has no torch.distributed (c10d)' };
  if (perGpu && !buildInfo().nccl) return { name, status: 'skipped', reason: 'this build has no NCCL (see build-info.json)' };
  if (perGpu && rt.cudaDevices < 2)
    return {
      name,
      status: 'skipped',
      reason: `NCCL needs a GPU per rank and this machine has ${rt.cudaDevices}; the Gloo check shares one GPU between 2 ranks`,
    };
  const dir = tmpDir('dp');
  const globalBatch = small ? 4 : 16;
  try {
    const init = await vn.vgg(DP.arch, { numClasses: DP.numClasses, seed: 5, dropout: 0 });
    await init.save(path.join(dir, 'initial.pth'), { layout: 'torchvision' });
    init.dispose();
    const port = 29500 + Math.floor(Math.random() * 2000);
    const base = ['--dp-rank', '--dir', dir, '--global-batch', String(globalBatch)];
    const env = { VGG_NATIVE_DIST_BACKEND: backend };
    const rankDevice = (r) => (perGpu ? `${device}:${r}` : device);
    const [r0, r1] = await Promise.all(
      [0, 1].map((r) => runChild([...base, '--device', rankDevice(r), '--rank', String(r), '--world', '2', '--port', String(port)], env)),
    );
    const one = JSON.parse(await runChild([...base, '--device', rankDevice(0), '--rank', '0', '--world', '1', '--port', '0'], env));
    const two = [JSON.parse(r0), JSON.parse(r1)];
    const lossRel = one.map((l, k) => Math.abs((two[0][k] + two[1][k]) / 2 - l) / Math.abs(l));
    const weightsRel = relError(readF32(path.join(dir, 'final_2_0.f32')), readF32(path.join(dir, 'final_1_0.f32')));
    const ranksEqual = relError(readF32(path.join(dir, 'final_2_1.f32')), readF32(path.join(dir, 'final_2_0.f32')));
    const worst = Math.max(...lossRel, weightsRel, ranksEqual);
    return {
      name,
      status: worst < DP_TOL ? 'pass' : 'fail',
      backend,
      ncclBuilt: Boolean(buildInfo().nccl),
      tolerance: DP_TOL,
      lossRel,
      weightsRel,
      ranksRel: ranksEqual,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const TP = {
  archs: ['vgg16', 'vgg11'],
  batches: [1, 8, 64, 256],
  precisions: ['fp32', 'fp16', 'bf16'],
  warmup: 3,
  minReps: 3,
  maxReps: 30,
  seconds: 0.5,
};

/** Ours, in a child process with TF32 at LibTorch's default (as PyTorch's). */
async function throughputOurs() {
  const rows = [];
  const inputs = new Map(TP.batches.map((b) => [b, { data: normals(b, b * 3 * 224 * 224), shape: [b, 3, 224, 224] }]));
  for (const arch of TP.archs) {
    const m = await vn.vgg(arch, { seed: 1, device: 'cuda' });
    for (const precision of TP.precisions) {
      for (const batch of TP.batches) {
        const x = inputs.get(batch);
        const opts = { precision, channelsLast: true };
        for (let i = 0; i < TP.warmup; i++) await m.forward(x, opts);
        let reps = 0;
        const t0 = process.hrtime.bigint();
        const secs = () => Number(process.hrtime.bigint() - t0) / 1e9;
        while (reps < TP.minReps || (secs() < TP.seconds && reps < TP.maxReps)) {
          await m.forward(x, opts);
          reps++;
        }
        rows.push({ arch, precision, batch, ours: (batch * reps) / secs() });
      }
    }
    m.dispose();
  }
  return rows;
}

async function throughput() {
  const name = 'throughput: VGG-16/VGG-11, channels_last, vgg-native vs PyTorch eager';
  const dir = tmpDir('throughput');
  try {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(TP));
    const ours = JSON.parse(await runChild(['--throughput-ours'], { VGG_NATIVE_TF32: '1' })); // TF32 as LibTorch's default
    const torch = py('throughput', dir, 'cuda');
    const table = ours.map((r) => {
      const t = torch.rows.find((x) => x.arch === r.arch && x.precision === r.precision && x.batch === r.batch) || {};
      const row = { ...r, torchDeviceInput: t.deviceInput, torchHostInput: t.hostInput };
      row.vsTorchHostInput = t.hostInput ? r.ours / t.hostInput : null;
      row.vsTorchDeviceInput = t.deviceInput ? r.ours / t.deviceInput : null;
      row.bf16RooflineFraction = (r.ours * GFLOP[r.arch]) / (BF16_ROOFLINE_TFLOPS * 1000);
      return row;
    });
    return { name, status: 'measured', gpu: torch.gpu, torch: torch.torch, rooflineTflops: BF16_ROOFLINE_TFLOPS, table };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- driver -------------------------------------------------------------------------------

function buildInfo() {
  try {
    return JSON.parse(fs.readFileSync(path.join(ROOT, 'build-info.json'), 'utf8'));
  } catch {
    return {};
  }
}

async function guarded(fn) {
  const started = Date.now();
  try {
    const r = await fn();
    const list = Array.isArray(r) ? r : [r];
    for (const x of list) x.seconds = (Date.now() - started) / 1000 / list.length;
    return list;
  } catch (e) {
    return [{ name: fn.checkName || fn.name, status: 'error', error: String(e?.stack || e).slice(0, 3000) }];
  }
}

function named(name, fn) {
  fn.checkName = name;
  return fn;
}

const CUDA_CHECKS = [
  'forward fp32 vs PyTorch (8 variants, TF32 off)',
  'classify cuda vs CPU (top-5, vgg16)',
  '20 fine-tuning steps vs PyTorch (vgg11_bn, batch 16, 64x64)',
  'save -> torch.load(weights_only=True)',
  'data-parallel: 2 ranks on one GPU vs 1 rank, global batch',
  'throughput: VGG-16/VGG-11, channels_last, vgg-native vs PyTorch eager',
  'data-parallel (NCCL): 2 ranks, one GPU each, vs 1 rank, global batch',
];

function fmt(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  if (Math.abs(x) < 1e-2 && x !== 0) return x.toExponential(1);
  return x.toFixed(digits);
}

function markdown(results) {
  const lines = ['# vgg-native GPU checks', ''];
  lines.push(`- when: ${results.when}`);
  lines.push(
    `- LibTorch: ${results.runtime.torchVersion}, CUDA: ${results.runtime.cuda} (${results.runtime.cudaDevices} device(s)), cuDNN: ${results.runtime.cudnn}`,
  );
  lines.push(`- build: ${results.build.describe || 'unknown'}`);
  lines.push(`- PyTorch (oracle): ${results.python.ok ? results.python.version : results.python.reason}`);
  lines.push('', '| check | status | detail |', '| --- | --- | --- |');
  for (const c of results.checks) {
    let detail = c.reason || c.error || '';
    if (c.variants) detail = c.variants.map((v) => `${v.arch} ${v.rel.toExponential(1)}`).join(', ');
    if (c.precision?.bf16) {
      detail += `; top-5 sets = fp32: ${['fp16', 'bf16']
        .filter((p) => c.precision[p])
        .map((p) => `${p} ${c.precision[p].top5SetEqual}/${c.precision[p].of}`)
        .join(', ')} (${c.precision.status})`;
    }
    if (c.agree !== undefined) detail = `${c.agree}/${c.of} photos agree`;
    if (c.worstRel !== undefined) detail = `worst loss rel ${c.worstRel.toExponential(1)}`;
    if (c.tensors !== undefined)
      detail = `${c.tensors} tensors, missing ${c.missing.length}, weights vs PyTorch's, relative L2 ${fmt(c.weightsRelL2VsTorch)}`;
    if (c.weightsRel !== undefined) detail = `${c.backend}; weights rel ${fmt(c.weightsRel)}, losses rel ${fmt(Math.max(...c.lossRel))}`;
    if (c.table) detail = 'table below';
    lines.push(`| ${c.name} | ${c.status} | ${String(detail).split('\n')[0].replace(/\|/g, '/')} |`);
  }
  const tp = results.checks.find((c) => c.table);
  if (tp) {
    lines.push('', `Throughput on ${tp.gpu} (img/s; PyTorch ${tp.torch}; bf16 roofline ${tp.rooflineTflops} TFLOP/s):`, '');
    lines.push(
      '| model | precision | batch | vgg-native | torch eager, host input | torch eager, device input | vs host | vs device | of bf16 roofline |',
    );
    lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of tp.table) {
      lines.push(
        `| ${r.arch} | ${r.precision} | ${r.batch} | ${fmt(r.ours, 1)} | ${fmt(r.torchHostInput, 1)} | ${fmt(r.torchDeviceInput, 1)} | ${fmt(r.vsTorchHostInput)}x | ${fmt(r.vsTorchDeviceInput)}x | ${fmt(100 * r.bf16RooflineFraction, 1)}% |`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

async function main() {
  if (process.argv.includes('--dp-rank')) {
    const losses = await dpRank(
      arg('--dir'),
      Number(arg('--rank')),
      Number(arg('--world')),
      Number(arg('--port')),
      arg('--device'),
      Number(arg('--global-batch')),
    );
    process.stdout.write(JSON.stringify(losses));
    return;
  }
  if (process.argv.includes('--throughput-ours')) {
    process.stdout.write(JSON.stringify(await throughputOurs()));
    return;
  }
  const out = arg('--out', path.join(ROOT, 'gpu-results'));
  fs.mkdirSync(out, { recursive: true });
  const rt = vn.runtime();
  const python = pythonStatus();
  const build = buildInfo();
  const results = { when: new Date().toISOString(), host: os.hostname(), runtime: rt, build, python, checks: [] };
  const started = Date.now();
  // Written after every check, so a run stopped at its time limit still reports what it finished.
  const flush = () => {
    results.seconds = (Date.now() - started) / 1000;
    fs.writeFileSync(path.join(out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    fs.writeFileSync(path.join(out, 'results.md'), markdown(results));
  };
  const run = async (name, fn, prefix = '') => {
    const got = await guarded(named(name, fn));
    for (const c of got) c.name = `${prefix}${c.name}`;
    results.checks.push(...got);
    flush();
  };
  if (!rt.cuda) {
    const reason = `no CUDA: runtime().cuda is false (LibTorch ${rt.torchVersion}${build.cuda === false ? ', a CPU-only build' : ''})`;
    for (const name of CUDA_CHECKS) results.checks.push({ name, status: 'skipped', reason });
  } else if (!python.ok) {
    for (const name of CUDA_CHECKS) results.checks.push({ name, status: 'skipped', reason: python.reason });
  } else {
    await run(CUDA_CHECKS[0], () => forwardParity('cuda', false));
    await run(CUDA_CHECKS[1], () => classifyVsCpu('cuda', false));
    await run(CUDA_CHECKS[2], () => fineTuneParity('cuda', false));
    await run(CUDA_CHECKS[4], () => dataParallel('cuda', false));
    await run(CUDA_CHECKS[5], () => throughput());
    await run(CUDA_CHECKS[6], () => dataParallel('cuda', false, 'nccl'));
  }
  flush();
  if (process.argv.includes('--plumbing')) {
    const prefix = '[CPU plumbing, small sizes] ';
    if (!python.ok) results.checks.push({ name: `${prefix}forward and fine-tuning vs PyTorch`, status: 'skipped', reason: python.reason });
    else {
      await run('forward fp32 vs PyTorch', () => forwardParity('cpu', true), prefix);
      await run('fine-tuning steps vs PyTorch', () => fineTuneParity('cpu', true), prefix);
    }
    await run('classify', () => classifyVsCpu('cpu', true), prefix);
    await run('data-parallel', () => dataParallel('cpu', true), prefix);
  }
  flush();
  process.stdout.write(markdown(results));
  const bad = results.checks.filter((c) => c.status === 'fail' || c.status === 'error').length;
  process.exitCode = bad ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
