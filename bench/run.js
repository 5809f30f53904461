#!/usr/bin/env node
// `npm run bench`: vgg-native against its peers on this machine, in one run,
// the contenders interleaved rep by rep so a change in load hits all alike.
// Every figure that matters is a ratio between numbers of the same run.
//
//   node bench/run.js [--json] [--reps N] [--threads N] [--prebuilt FILE] [--seconds N] [--soak N]
//     [--only forward,bf16,int8,e2e,train,train-bf16,builds,transfer,load,serve]
// (serve: bench/serve.js, `vgg-native serve` under 32 connections for --seconds, and a soak of --soak requests)
//
// Peers: onnxruntime-node (devDependency) on a torch.onnx export of the same
// weights, and on our own QDQ int8 export; PyTorch on Debian's /usr/bin/python3
// (the same LibTorch and oneDNN as ours) as eager, channels_last and
// torch.jit.optimize_for_inference, its bf16 paths and its bf16 autocast
// training step; PIL + torchvision transforms for the end-to-end pipeline
// (bench/peer.py). Needs the built package (npm run build).
//
// The header's peak is oneDNN's fp32 GEMM: VGG-16 at batch 8 is then put
// against the limits of issue 23 (direct convolution, and Winograd F(4x4,3x3)),
// and the summary states each ratio the issue targets beside its target.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const sharp = require('sharp');
const { vgg, runtime } = require('../dist');
const { coreOf } = require('../dist/model');
const { relError } = require('../scripts/rel-error');
const { serveSection, serveTargets } = require('./serve');
const { formatTarget, median, round, seededInput, settle, timed } = require('./common');

const ROOT = path.resolve(__dirname, '..');
const PY = process.env.VGG_BENCH_PYTHON || '/usr/bin/python3';
const SKI = '/usr/lib/python3/dist-packages/skimage/data';
const SKL = '/usr/lib/python3/dist-packages/sklearn/datasets/images';
const PHOTOS = ['chelsea.png', 'coffee.png', 'astronaut.png', 'rocket.jpg', 'motorcycle_left.png', 'hubble_deep_field.jpg', 'camera.png']
  .map((f) => `${SKI}/${f}`)
  .concat([`${SKL}/china.jpg`, `${SKL}/flower.jpg`, `${SKI}/coins.png`]);

function parseArgs(argv) {
  const o = {
    json: false,
    reps: 5,
    threads: os.cpus().length,
    prebuilt: undefined,
    only: ['forward', 'bf16', 'int8', 'e2e', 'train', 'train-bf16', 'builds', 'transfer', 'load', 'serve'],
  };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--json') {
      o.json = true;
      continue;
    }
    const v = argv[++i];
    if (k === '--reps') o.reps = Number(v);
    else if (k === '--threads') o.threads = Number(v);
    else if (k === '--only') o.only = v.split(',');
    else if (k === '--seconds') o.seconds = Number(v);
    else if (k === '--soak') o.soak = Number(v);
    else if (k === '--prebuilt') o.prebuilt = path.resolve(v);
    else throw new Error(`unknown argument ${k}`);
  }
  return o;
}

/** The training sections' optimizer and step options: SGD with momentum, no clipping or smoothing. */
const SGD = { type: 'sgd', lr: 0.01, headLr: 0.01, momentum: 0.9, nesterov: false, weightDecay: 5e-4, betas: [0.9, 0.999], eps: 1e-8 };
const TRAIN_OPTS = { labelSmoothing: 0, clipGradNorm: 0, lr: [0.01, 0.01], precision: 'fp32' };

/** Issue 23's targets, and the most an event-loop gap may be during a forward. */
const TARGETS = { int8VsFp32: 1.8, int8VsOrt: 1.0, ofWinograd: 0.6, bf16Train: 1.5, loopGapMs: 20 };

/**
 * This machine sets OPENBLAS_CORETYPE=Haswell and OPENBLAS_L2_SIZE (for the tests' reproducibility),
 * which hold OpenBLAS to AVX2 kernels on an AVX-512 CPU; PyTorch eager's fp32 linear layers and torch.mm
 * run on OpenBLAS, so the peer runs without them and gets the kernels OpenBLAS picks for this CPU.
 */
const OPENBLAS_OVERRIDES = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'];

/** bench/peer.py as a request/reply server. */
function startPeer(threads) {
  return startServer(PY, [path.join(__dirname, 'peer.py'), String(threads)], { OMP_NUM_THREADS: String(threads) }, OPENBLAS_OVERRIDES);
}

/** bench/addon-peer.js with another build of the addon: the `builds` section's second contender. */
function startAddonPeer(addon) {
  return startServer(process.execPath, [path.join(__dirname, 'addon-peer.js')], { VGG_NATIVE_ADDON: addon });
}

/** A child answering one JSON line per JSON line it reads; `env` added to ours, `unset` taken from it. */
function startServer(cmd, args, env, unset = []) {
  const childEnv = { ...process.env, ...env };
  for (const k of unset) delete childEnv[k];
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'], env: childEnv });
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = [];
  lines.on('line', (l) => {
    const reply = JSON.parse(l);
    const w = waiting.shift();
    if (reply.error) w?.reject(new Error(`${path.basename(args[0])}: ${reply.error}`));
    else w?.resolve(reply);
  });
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`${path.basename(args[0])} exited with ${code}`));
  });
  return {
    ask(obj) {
      const p = new Promise((resolve, reject) => waiting.push({ resolve, reject }));
      child.stdin.write(`${JSON.stringify(obj)}\n`);
      return p;
    },
    quit() {
      child.stdin.end(`${JSON.stringify({ cmd: 'quit' })}\n`);
    },
  };
}

function cpuFlags() {
  const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '').split(/\s+/));
  return ['avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile'].filter((f) => flags.has(f));
}

/** The main thread's time on a CPU and waiting for one (run queue), ns, from the kernel's schedstat; undefined off Linux. */
function mainThreadSched() {
  try {
    const [run, wait] = fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number);
    return { run, wait };
  } catch {
    return undefined;
  }
}

/**
 * Largest gap between 1 ms timer ticks while `work` runs (the event loop's responsiveness), and
 * where the main thread spent that gap: running (JS, or native code on the JS thread) or waiting
 * for a CPU on the run queue (the scheduler gave the cores to other threads).
 */
async function withLoopGap(work) {
  let last = performance.now();
  let lastSched = mainThreadSched();
  let gap = { ms: 0, runMs: undefined, waitMs: undefined };
  const timer = setInterval(() => {
    const now = performance.now();
    const sched = mainThreadSched();
    if (now - last > gap.ms) {
      gap = { ms: now - last, runMs: sched && (sched.run - lastSched.run) / 1e6, waitMs: sched && (sched.wait - lastSched.wait) / 1e6 };
    }
    last = now;
    lastSched = sched;
  }, 1);
  try {
    const result = await work();
    if (performance.now() - last > gap.ms) gap = { ms: performance.now() - last, runMs: undefined, waitMs: undefined };
    return { result, gap };
  } finally {
    clearInterval(timer);
  }
}

/** 'ran 0.4 / waited 18.1': the main thread during the largest gap (see withLoopGap). */
const gapSplit = (gap) => (gap.runMs === undefined ? '' : `ran ${round(gap.runMs, 1)} / waited ${round(gap.waitMs, 1)}`);

/** `timed` inside `withLoopGap`: seconds; the largest gap so far is kept in `gap` (ms, runMs, waitMs). */
async function timedWithGap(fn, gap) {
  const g = await withLoopGap(() => timed(fn));
  if (g.gap.ms > gap.ms) Object.assign(gap, g.gap);
  return g.result;
}

/** Images per second from each contender's seconds per call (the median). */
const perSecond = (t, batch) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, batch / median(v)]));

/** An onnxruntime session set as for every ORT row: all graph optimisations, o.threads intra-op, sequential. */
function ortSession(ort, file, threads) {
  return ort.InferenceSession.create(file, {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
}

/** The feed of a one-input session (the peer's export names it 'x', ours 'input'). */
const ortFeeds = (ort, session, x) => ({ [session.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) });

/** The peer writes dir/vggN.pth and dir/vggN.onnx (same weights) once per run. */
async function prepare(peer, dir, depth) {
  if (!fs.existsSync(path.join(dir, `vgg${depth}.onnx`))) await peer.ask({ cmd: 'prepare', depth, dir });
}

// ---------------------------------------------------------------------------

async function header(peer, o) {
  const rt = runtime();
  const hello = await peer.ask({ cmd: 'hello' });
  const gemm = await peer.ask({ cmd: 'gemm' });
  const gflops = (g) => ({ fp32: round(g.fp32, 0), bf16: round(g.bf16, 0) });
  return {
    cpu: os.cpus()[0].model.trim(),
    cpus: os.cpus().length,
    isa: cpuFlags(),
    threads: o.threads,
    libtorch: rt.torchVersion,
    onednn: rt.onednn,
    pytorch: hello.torch,
    pytorchBlas: hello.blas,
    node: process.version,
    // 4096^3 GEMM, best of 5, by oneDNN's inner product and by torch.mm (OpenBLAS's sgemm for fp32):
    // the peak is the faster of the two, what some kernel reaches on this CPU.
    peakGflops: { fp32: round(Math.max(gemm.onednn.fp32, gemm.mm.fp32), 0), bf16: round(Math.max(gemm.onednn.bf16, gemm.mm.bf16), 0) },
    onednnGflops: gflops(gemm.onednn),
    torchMmGflops: gflops(gemm.mm),
    loadavg: os.loadavg().map((l) => round(l)),
  };
}

/**
 * Issue 23's limits of an fp32 forward at `peak` GFLOP/s, in img/s. Direct convolution does every
 * multiply-add of model.summary() (VGG-16: 15.5 GMAC an image). Winograd F(4x4,3x3) does 36 multiplies
 * per 4x4 output tile where direct does 144, so the 3x3 convolutions cost a quarter; the rest (the
 * classifier, and the pools' few) stays at the direct rate.
 */
function convLimits(summary, peak) {
  const conv = summary.layers.filter((l) => l.type.startsWith('ConvModule')).reduce((n, l) => n + l.macs, 0);
  const rest = summary.macs - conv;
  return { direct: (peak * 1e9) / (2 * summary.macs), winograd: (peak * 1e9) / (2 * (conv / 4 + rest)) };
}

async function forwardSection(peer, o, dir, report) {
  const ort = require('onnxruntime-node');
  const peaks = [report.header.peakGflops.fp32];
  const rows = [];
  const summaries = {};
  for (const depth of [16, 11]) {
    await prepare(peer, dir, depth);
    const model = await vgg({ weights: path.join(dir, `vgg${depth}.pth`), threads: o.threads });
    const session = await ortSession(ort, path.join(dir, `vgg${depth}.onnx`), o.threads);
    summaries[`vgg${depth}`] = model.summary();
    try {
      for (const batch of [1, 8]) {
        rows.push(await forwardRow(peer, o, dir, { depth, batch, model, session, ort, peaks, gflop: (2 * summaries[`vgg${depth}`].macs) / 1e9 }));
      }
    } finally {
      model.dispose();
    }
  }
  // The best GEMM of the run: a peak measured once, at a busy moment, would flatter every ratio to it.
  const peak = Math.max(...peaks);
  report.header.peakGflops.fp32Best = round(peak, 0);
  for (const row of rows) {
    const limits = convLimits(summaries[row.arch], peak);
    row['of Winograd limit'] = round(row['ours img/s'] / limits.winograd);
    if (row.arch === 'vgg16' && row.batch === 8) report.header.vgg16b8 = vgg16Limits(row, limits, peak);
  }
  report.forward = rows;
}

/** One forward row: ours, onnxruntime and PyTorch's three fp32 paths, interleaved rep by rep. */
async function forwardRow(peer, o, dir, { depth, batch, model, session, ort, peaks, gflop }) {
  const x = seededInput([batch, 3, 224, 224], depth * 100 + batch);
  const input = path.join(dir, `x${depth}_${batch}.f32`);
  fs.writeFileSync(input, Buffer.from(x.data.buffer));
  const req = { depth, input, shape: x.shape };
  const feeds = ortFeeds(ort, session, x);
  // Logits: ours and onnxruntime's against PyTorch eager.
  await peer.ask({ cmd: 'logits', ...req, out: `${input}.logits` });
  const buf = fs.readFileSync(`${input}.logits`);
  const ref = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
  const ours = (await model.forward(x)).data;
  const theirs = (await session.run(feeds))[session.outputNames[0]].data;
  const t = { ours: [], ort: [], eager: [], channels_last: [], ofi: [] };
  const gap = { ms: 0 };
  for (const p of ['eager', 'channels_last', 'ofi']) await peer.ask({ cmd: 'time', ...req, path: p, reps: 1 }); // warm-up
  for (let r = 0; r < o.reps; r++) {
    t.ours.push(await timedWithGap(() => model.forward(x), gap));
    t.ort.push(await timed(() => session.run(feeds)));
    for (const p of ['eager', 'channels_last', 'ofi']) {
      await settle();
      t[p].push(...(await peer.ask({ cmd: 'time', ...req, path: p, reps: 1 })).seconds);
    }
    await settle();
    peaks.push((await peer.ask({ cmd: 'peak', dtype: 'fp32', reps: 2 })).gflops); // the peak under this rep's load
  }
  const ips = perSecond(t, batch);
  const bestName = ips.ofi >= ips.channels_last ? 'ofi' : 'channels_last';
  const row = {
    arch: `vgg${depth}`,
    batch,
    'ours img/s': round(ips.ours),
    'onnxruntime img/s': round(ips.ort),
    'torch eager img/s': round(ips.eager),
    'torch best img/s': round(ips[bestName]),
    'torch best path': bestName,
    'ours/ort': round(ips.ours / ips.ort),
    'ours/eager': round(ips.ours / ips.eager),
    'ours/best': round(ips.ours / ips[bestName]),
    'GFLOP/s': round(ips.ours * gflop, 0),
    'rel err vs torch': relError(ours, ref).toExponential(1),
    'ort rel err': relError(theirs, ref).toExponential(1),
    'loop gap ms': round(gap.ms, 1),
    'main thread in that gap ms': gapSplit(gap),
  };
  console.error(
    `  forward vgg${depth} b${batch}: ours ${row['ours img/s']}, ort ${row['onnxruntime img/s']}, eager ${row['torch eager img/s']}, best ${row['torch best img/s']} img/s`,
  );
  return row;
}

/** VGG-16 fp32 batch 8 against the oneDNN peak and the direct and Winograd limits (header line and JSON). */
function vgg16Limits(row, limits, peak) {
  return {
    'img/s': row['ours img/s'],
    'GFLOP/s': row['GFLOP/s'],
    'peak GFLOP/s': round(peak, 0),
    'x fp32 peak': round(row['GFLOP/s'] / peak),
    'direct limit img/s': round(limits.direct),
    'winograd limit img/s': round(limits.winograd),
    'ours / winograd limit': round(row['ours img/s'] / limits.winograd),
  };
}

async function bf16Section(peer, o, dir, report) {
  const rows = [];
  for (const depth of [16, 11]) {
    await prepare(peer, dir, depth);
    const model = await vgg({ weights: path.join(dir, `vgg${depth}.pth`), threads: o.threads });
    try {
      const batch = 8;
      const x = seededInput([batch, 3, 224, 224], depth * 100 + batch);
      const input = path.join(dir, `x${depth}_${batch}.f32`);
      fs.writeFileSync(input, Buffer.from(x.data.buffer));
      const req = { depth, input, shape: x.shape };
      const paths = ['autocast_bf16', 'autocast_bf16_cl', 'bf16_cl'];
      await model.forward(x, { precision: 'bf16' });
      for (const p of paths) await peer.ask({ cmd: 'time', ...req, path: p, reps: 1 });
      const t = { ours: [], autocast_bf16: [], autocast_bf16_cl: [], bf16_cl: [] };
      const gap = { ms: 0 };
      for (let r = 0; r < o.reps; r++) {
        t.ours.push(await timedWithGap(() => model.forward(x, { precision: 'bf16' }), gap));
        for (const p of paths) {
          await settle();
          t[p].push(...(await peer.ask({ cmd: 'time', ...req, path: p, reps: 1 })).seconds);
        }
      }
      const ips = perSecond(t, batch);
      const best = Math.max(ips.autocast_bf16, ips.autocast_bf16_cl, ips.bf16_cl);
      const fp32 = report.forward?.find((r) => r.arch === `vgg${depth}` && r.batch === batch);
      // Top-5 on real photos, bf16 against fp32, same model.
      const a = await model.classify(PHOTOS, { topK: 5 });
      const b = await model.classify(PHOTOS, { topK: 5, precision: 'bf16' });
      const same = a.filter((item, i) => item.predictions.every((p, k) => p.index === b[i].predictions[k].index)).length;
      const sameSet = a.filter((item, i) => item.predictions.every((p) => b[i].predictions.some((q) => q.index === p.index))).length;
      rows.push({
        arch: `vgg${depth}`,
        batch,
        'ours bf16 img/s': round(ips.ours),
        'torch autocast': round(ips.autocast_bf16),
        'torch autocast CL': round(ips.autocast_bf16_cl),
        'torch bf16 CL model': round(ips.bf16_cl),
        'ours/torch best bf16': round(ips.ours / best),
        'ours bf16/ort fp32': fp32 ? round(ips.ours / fp32['onnxruntime img/s']) : null,
        'top-5 = fp32 (order)': `${same}/${PHOTOS.length}`,
        'top-5 = fp32 (set)': `${sameSet}/${PHOTOS.length}`,
        'loop gap ms': round(gap.ms, 1),
        'main thread in that gap ms': gapSplit(gap),
      });
      console.error(`  bf16 vgg${depth} b${batch}: ours ${round(ips.ours)}, torch best ${round(best)} img/s`);
    } finally {
      model.dispose();
    }
  }
  report.bf16 = rows;
}

/**
 * int8 against fp32, VGG-16 and VGG-11 at batch 1 and 8: ours calibrated on the 64 photo crops
 * (makePhotos), and onnxruntime on the peer's fp32 export and on our QDQ int8 export
 * (save(x.onnx, { quantized: true })), the four interleaved rep by rep. Quality on the 10 real
 * photos (the crops' sources: close to the calibration set, as a deployment's own images would be).
 */
async function int8Section(peer, o, dir, report) {
  const { onednn } = runtime();
  if (!onednn.enabled || !onednn.int8) {
    const why = `runtime().onednn.enabled ${onednn.enabled}, .int8 ${onednn.int8}`;
    report.int8 = [{ note: `int8 needs the oneDNN engine and VNNI or AMX (${why}): skipped` }];
    return;
  }
  const ort = require('onnxruntime-node');
  const calibration = await makePhotos(dir);
  const rows = [];
  for (const depth of [16, 11]) {
    await prepare(peer, dir, depth);
    const model = await vgg({ weights: path.join(dir, `vgg${depth}.pth`), threads: o.threads });
    try {
      const q = await model.quantize({ calibration, samples: calibration.length });
      const qdq = path.join(dir, `vgg${depth}.qdq.onnx`);
      await model.save(qdq, { quantized: true });
      const sessions = {
        fp32: await ortSession(ort, path.join(dir, `vgg${depth}.onnx`), o.threads),
        int8: await ortSession(ort, qdq, o.threads),
      };
      const quality = await int8Quality(model);
      for (const batch of [1, 8]) {
        const row = { arch: `vgg${depth}`, batch, 'calib images': q.samples, 'calib s': round(q.seconds, 1) };
        Object.assign(row, await int8Timing(o, { depth, batch, model, sessions, ort }), quality);
        rows.push(row);
        const ips = (k) => row[`${k} img/s`];
        console.error(`  int8 vgg${depth} b${batch}: ours fp32 ${ips('ours fp32')}, int8 ${ips('ours int8')}, ort int8 ${ips('ort int8')} img/s`);
      }
    } finally {
      model.dispose();
    }
  }
  report.int8 = rows;
}

/** img/s of ours fp32 and int8 and ORT fp32 and int8 on one seeded batch, interleaved rep by rep. */
async function int8Timing(o, { depth, batch, model, sessions, ort }) {
  const x = seededInput([batch, 3, 224, 224], depth * 100 + batch);
  const run = {
    'ours fp32': () => model.forward(x, { precision: 'fp32' }),
    'ours int8': () => model.forward(x, { precision: 'int8' }),
    'ort fp32': () => sessions.fp32.run(ortFeeds(ort, sessions.fp32, x)),
    'ort int8': () => sessions.int8.run(ortFeeds(ort, sessions.int8, x)),
  };
  for (const f of Object.values(run)) await f(); // plans, packed weights, caches
  const t = Object.fromEntries(Object.keys(run).map((k) => [k, []]));
  const gap = { ms: 0 };
  for (let r = 0; r < o.reps; r++) {
    for (const [k, f] of Object.entries(run)) t[k].push(k.startsWith('ours') ? await timedWithGap(f, gap) : await timed(f));
  }
  const ips = perSecond(t, batch);
  return {
    ...Object.fromEntries(Object.entries(ips).map(([k, v]) => [`${k} img/s`, round(v)])),
    'ours int8/ours fp32': round(ips['ours int8'] / ips['ours fp32']),
    'ours int8/ort int8': round(ips['ours int8'] / ips['ort int8']),
    'ort int8/ort fp32': round(ips['ort int8'] / ips['ort fp32']),
    'loop gap ms': round(gap.ms, 1),
    'main thread in that gap ms': gapSplit(gap),
  };
}

/** int8 against fp32 on the 10 real photos: logits' relative error, top-1 agreement, the least pool5 cosine. */
async function int8Quality(model) {
  const features = (layer, precision) => model.extractFeatures(PHOTOS, { layer, precision, batchSize: PHOTOS.length });
  const [l32, l8] = [await features('logits', 'fp32'), await features('logits', 'int8')];
  const [p32, p8] = [await features('pool5', 'fp32'), await features('pool5', 'int8')];
  const [a, b] = [rowsOf(l32), rowsOf(l8)];
  const top1 = a.filter((v, i) => argmax(v) === argmax(b[i])).length;
  const [c, d] = [rowsOf(p32), rowsOf(p8)];
  const cosines = c.map((v, i) => cosine(v, d[i]));
  return {
    'logits rel err': relError(l8.data, l32.data).toExponential(1),
    'top-1 = fp32': `${top1}/${PHOTOS.length}`,
    'pool5 cos (min)': round(Math.min(...cosines), 4),
  };
}

/** The rows of an [N, ...] tensor, as views. */
function rowsOf(t) {
  const size = t.data.length / t.shape[0];
  return Array.from({ length: t.shape[0] }, (_, i) => t.data.subarray(i * size, (i + 1) * size));
}

const argmax = (v) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);

function cosine(a, b) {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.max(Math.sqrt(aa * bb), 1e-30);
}

const photoSets = new Map();

/** 64 JPEG photographs: crops, flips and scales of the Debian test photos (written once per folder). */
function makePhotos(dir) {
  if (!photoSets.has(dir)) photoSets.set(dir, writePhotos(dir));
  return photoSets.get(dir);
}

async function writePhotos(dir) {
  const files = [];
  for (let i = 0; files.length < 64; i++) {
    const src = PHOTOS[i % PHOTOS.length];
    const meta = await sharp(src).metadata();
    const f = 0.6 + (0.4 * ((i * 37) % 10)) / 10;
    const w = Math.max(64, Math.round(meta.width * f));
    const h = Math.max(64, Math.round(meta.height * f));
    const left = Math.round((meta.width - w) * (((i * 13) % 7) / 6));
    const top = Math.round((meta.height - h) * (((i * 7) % 5) / 4));
    let img = sharp(src).extract({ left, top, width: w, height: h });
    if (i % 2) img = img.flop();
    const file = path.join(dir, `photo${String(files.length).padStart(2, '0')}.jpg`);
    await img.jpeg({ quality: 90 }).toFile(file);
    files.push(file);
  }
  return files;
}

async function e2eSection(peer, o, dir, report) {
  const files = await makePhotos(dir);
  const model = await vgg({ weights: path.join(dir, 'vgg16.pth'), threads: o.threads });
  try {
    await model.classify(files.slice(0, 8), { topK: 5 });
    const ours = [];
    const theirs = [];
    let agree = 0;
    for (let r = 0; r < Math.max(2, Math.ceil(o.reps / 2)); r++) {
      let result;
      ours.push(
        await timed(async () => {
          result = await model.classify(files, { topK: 5, batchSize: 8 });
        }),
      );
      const t = await peer.ask({ cmd: 'e2e', depth: 16, files, batch: 8 });
      theirs.push(t.seconds);
      agree = result.filter((item, i) => item.predictions[0].index === t.top5[i][0]).length;
    }
    const a = files.length / median(ours);
    const b = files.length / median(theirs);
    report.e2e = [
      {
        arch: 'vgg16',
        images: files.length,
        'ours img/s': round(a),
        'PIL+torchvision+torch img/s': round(b),
        ratio: round(a / b),
        'top-1 agree': `${agree}/${files.length}`,
      },
    ];
    console.error(`  end to end: ours ${round(a)}, Python ${round(b)} img/s`);
  } finally {
    model.dispose();
  }
}

async function trainSection(peer, o, report) {
  const rows = [];
  for (const size of [32, 64]) {
    const batch = 32;
    const steps = 5;
    const model = await vgg('vgg11_bn', { numClasses: 10, seed: 0, threads: o.threads });
    try {
      await coreOf(model).configureOptimizer(SGD);
      const x = seededInput([batch, 3, size, size], size);
      const labels = BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 10));
      const opts = TRAIN_OPTS;
      await coreOf(model).trainStep({ ...x, labels }, opts); // warm-up
      const r0 = process.resourceUsage();
      const seconds = [];
      for (let s = 0; s < steps; s++) seconds.push(await timed(() => coreOf(model).trainStep({ ...x, labels }, opts)));
      const r1 = process.resourceUsage();
      const t = await peer.ask({ cmd: 'train', size, batch, steps });
      const a = batch / median(seconds);
      const b = batch / median(t.seconds);
      const user = (r1.userCPUTime - r0.userCPUTime) / 1e6;
      const sys = (r1.systemCPUTime - r0.systemCPUTime) / 1e6;
      rows.push({
        model: 'vgg11_bn',
        batch,
        size,
        'ours img/s': round(a),
        'torch img/s': round(b),
        ratio: round(a / b),
        'ours user/sys s': `${round(user, 1)}/${round(sys, 1)}`,
        'ours sys %': round((100 * sys) / (user + sys), 1),
        'ours faults': r1.minorPageFault - r0.minorPageFault,
        'torch user/sys s': `${round(t.user, 1)}/${round(t.sys, 1)}`,
        'torch sys %': round((100 * t.sys) / (t.user + t.sys), 1),
        'torch faults': t.faults,
      });
      console.error(`  train ${size}x${size}: ours ${round(a)}, torch ${round(b)} img/s`);
    } finally {
      model.dispose();
    }
  }
  report.train = rows;
}

/**
 * Issue 23's bf16 fine-tuning target: VGG-11-BN, batch 32 at 64x64, one SGD step in bf16 against
 * fp32 on the same model and batch, ours and PyTorch's (autocast around forward and loss), the
 * four interleaved rep by rep.
 */
async function trainBf16Section(peer, o, report) {
  const [batch, size] = [32, 64];
  const model = await vgg('vgg11_bn', { numClasses: 10, seed: 0, threads: o.threads });
  try {
    await coreOf(model).configureOptimizer(SGD);
    const x = seededInput([batch, 3, size, size], size);
    const labels = BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 10));
    const ours = (precision) => () => coreOf(model).trainStep({ ...x, labels }, { ...TRAIN_OPTS, precision });
    const torch = (precision) => async () => (await peer.ask({ cmd: 'train_step', size, batch, precision })).seconds;
    const run = { 'ours fp32': ours('fp32'), 'ours bf16': ours('bf16'), 'torch fp32': torch('fp32'), 'torch bf16': torch('bf16') };
    for (const f of Object.values(run)) await f(); // warm-up: oneDNN's primitives, the allocator's caches
    const t = Object.fromEntries(Object.keys(run).map((k) => [k, []]));
    for (let r = 0; r < o.reps; r++) {
      for (const [k, f] of Object.entries(run)) {
        if (k.startsWith('ours')) t[k].push(await timed(f));
        else t[k].push(await settle().then(f)); // the peer's own clock: no pipe or JSON in it
      }
    }
    const ips = perSecond(t, batch);
    report['train-bf16'] = [
      {
        model: 'vgg11_bn',
        batch,
        size,
        ...Object.fromEntries(Object.entries(ips).map(([k, v]) => [`${k} img/s`, round(v)])),
        'ours bf16/fp32': round(ips['ours bf16'] / ips['ours fp32']),
        'torch bf16/fp32': round(ips['torch bf16'] / ips['torch fp32']),
        'ours bf16/torch bf16': round(ips['ours bf16'] / ips['torch bf16']),
      },
    ];
    console.error(`  train bf16 ${size}x${size}: ours fp32 ${round(ips['ours fp32'])}, bf16 ${round(ips['ours bf16'])} img/s`);
  } finally {
    model.dispose();
  }
}

/**
 * This process's addon (the source build, e.g. Debian's LibTorch 1.13) against
 * another build in a child process (default: the prebuilt platform package of
 * `npm run pack:all`, LibTorch 2.x), and onnxruntime-node, interleaved rep by
 * rep: fp32 and bf16 forwards on the same weights and input, and the training step.
 */
async function buildsSection(o, dir, report) {
  const other = o.prebuilt || path.join(ROOT, 'build-prebuilt', 'pkg', 'linux-x64-gnu', 'vgg_native.node');
  if (!fs.existsSync(other) || path.resolve(other) === runtime().addon.path) {
    report.builds = [{ note: `no second build to compare (${other}); run npm run pack:all -- DIR first or pass --prebuilt FILE` }];
    return;
  }
  const ort = require('onnxruntime-node');
  const peer = startAddonPeer(other);
  let them;
  try {
    them = await peer.ask({ cmd: 'runtime' });
  } catch (e) {
    // A stale second build (older sources than dist/) must not cost the rest of the run its tables.
    peer.quit();
    report.builds = [{ note: `the second build (${other}) does not load: ${e.message.split('\n').slice(0, 2).join(' ')}` }];
    return;
  }
  const us = runtime();
  // The child's addon comes through VGG_NATIVE_ADDON; name it by its folder (linux-x64-gnu: the prebuilt).
  const source = (r) => (r.addon.kind === 'env' ? path.basename(path.dirname(r.addon.path)) : `${r.addon.kind} build`);
  const name = (r) => `LibTorch ${r.torchVersion ?? r.libtorch} (${source(r)}${r.onednn.enabled ? ', oneDNN engine' : ''})`;
  const rows = [];
  const row = (what, a, b, c) => {
    const r = { what, [`${name(us)} img/s`]: round(a), [`${name(them)} img/s`]: round(b), 'second/first': round(b / a) };
    if (c !== undefined) Object.assign(r, { 'onnxruntime img/s': round(c), 'second/ort': round(b / c) });
    rows.push(r);
    console.error(`  builds ${what}: ${round(a)} vs ${round(b)} img/s${c !== undefined ? `, ort ${round(c)}` : ''}`);
  };
  try {
    for (const depth of [16, 11]) {
      const weights = path.join(dir, `vgg${depth}.pth`);
      const model = await vgg({ weights, threads: o.threads });
      await peer.ask({ cmd: 'load', weights, threads: o.threads });
      const session = await ortSession(ort, path.join(dir, `vgg${depth}.onnx`), o.threads);
      try {
        const cases =
          depth === 16
            ? [
                [1, 'fp32'],
                [8, 'fp32'],
                [8, 'bf16'],
              ]
            : [[8, 'fp32']];
        for (const [batch, precision] of cases) {
          const x = seededInput([batch, 3, 224, 224], depth * 100 + batch);
          const input = path.join(dir, `builds${depth}_${batch}.f32`);
          fs.writeFileSync(input, Buffer.from(x.data.buffer));
          const req = { cmd: 'forward', input, shape: x.shape, precision };
          const feeds = ortFeeds(ort, session, x);
          await model.forward(x, { precision });
          await peer.ask(req);
          const t = { a: [], b: [], c: [] };
          for (let r = 0; r < o.reps; r++) {
            t.a.push(await timed(() => model.forward(x, { precision })));
            await settle();
            t.b.push((await peer.ask(req)).seconds);
            if (precision === 'fp32') t.c.push(await timed(() => session.run(feeds)));
          }
          row(`vgg${depth} b${batch} ${precision}`, batch / median(t.a), batch / median(t.b), t.c.length ? batch / median(t.c) : undefined);
        }
      } finally {
        model.dispose();
      }
    }
    // The training step: VGG-11-BN, 32 images of 32x32, SGD with momentum (as the train section).
    const batch = 32;
    const optimizer = SGD;
    const opts = TRAIN_OPTS;
    const x = seededInput([batch, 3, 32, 32], 32);
    const input = path.join(dir, 'builds_train.f32');
    fs.writeFileSync(input, Buffer.from(x.data.buffer));
    const labels = Array.from({ length: batch }, (_, i) => i % 10);
    const y = BigInt64Array.from(labels.map(BigInt));
    const model = await vgg('vgg11_bn', { numClasses: 10, seed: 0, threads: o.threads });
    try {
      await coreOf(model).configureOptimizer(optimizer);
      await peer.ask({ cmd: 'load', arch: 'vgg11_bn', numClasses: 10, threads: o.threads });
      await peer.ask({ cmd: 'configureOptimizer', optimizer });
      const step = { cmd: 'trainStep', input, shape: x.shape, labels, opts };
      await coreOf(model).trainStep({ ...x, labels: y }, opts);
      await peer.ask(step);
      const t = { a: [], b: [] };
      for (let r = 0; r < o.reps; r++) {
        t.a.push(await timed(() => coreOf(model).trainStep({ ...x, labels: y }, opts)));
        await settle();
        t.b.push((await peer.ask(step)).seconds);
      }
      row('vgg11_bn train step b32 32x32', batch / median(t.a), batch / median(t.b));
    } finally {
      model.dispose();
    }
  } finally {
    peer.quit();
  }
  report.builds = rows;
}

/**
 * Transfer learning on the photo-crops task (src/demo/photo-crops.ts: 3 classes, 64x64,
 * about 360 training and 120 validation crops) from a random VGG-11-BN: fineTune's
 * cacheFeatures against the same frozen trunk run on the images every epoch, and
 * against a full fine-tune; seconds per epoch, the cache's one-off cost, and top-1.
 */
async function transferSection(o, dir, report) {
  const { writePhotoCrops } = require('../dist/demo/photo-crops');
  const crops = await writePhotoCrops(path.join(dir, 'crops'));
  const paths = [
    ['cacheFeatures: frozen trunk once, classifier on the cache', { epochs: 2, freeze: 'features', cacheFeatures: true }, 5],
    ['frozen trunk, run on the images every epoch', { epochs: 2, freeze: 'features' }, 5],
    ['full fine-tune (nothing frozen)', { epochs: 1 }, 0],
  ];
  const rows = [];
  // 64: the test's size; 224: ImageNet's, where the trunk's share (what the cache saves) is largest.
  for (const imageSize of [64, 224]) {
    const base = { train: crops.train, val: crops.val, batchSize: 32, imageSize, augment: false, lr: 0.003, seed: 1 };
    const first = rows.length;
    for (const [name, opts, frozenStages] of paths) {
      const model = await vgg('vgg11_bn', { numClasses: 3, seed: 4, dropout: 0, frozenStages, threads: o.threads });
      try {
        const t0 = performance.now();
        const r = await model.fineTune({ ...base, ...opts });
        const total = (performance.now() - t0) / 1000;
        const epoch = median(r.epochs.map((e) => e.seconds));
        rows.push({
          size: imageSize,
          path: name,
          epochs: r.epochs.length,
          'val top-1 %': round(100 * r.epochs.at(-1).valTop1, 1),
          's/epoch': round(epoch),
          'cache s': round(r.featureCacheSeconds ?? 0),
          'total s': round(total, 1),
        });
        console.error(`  transfer ${imageSize}px ${name}: ${round(epoch)} s/epoch, ${round(total, 1)} s`);
      } finally {
        model.dispose();
      }
    }
    for (const row of rows.slice(first)) {
      row['s/epoch vs cache'] = round(row['s/epoch'] / rows[first]['s/epoch']);
      row['total s vs cache'] = round(row['total s'] / rows[first]['total s']);
    }
  }
  report.transfer = rows;
}

function loadSection(dir, report) {
  const file = path.join(dir, 'vgg16.pth');
  const torchLoad = `
import resource, sys, time, torch
sys.path.insert(0, sys.argv[2])
from mmcls_vgg import MmclsVGG
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
m = MmclsVGG(16, False, 1000)
ck = torch.load(sys.argv[1], map_location='cpu')
m.load_state_dict({k[9:]: v for k, v in ck['state_dict'].items()})
print(time.perf_counter() - t0, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
`;
  fs.readFileSync(file); // page cache warm for both
  const ours = [];
  const theirs = [];
  for (let i = 0; i < 3; i++) {
    ours.push(JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'load-peak.js'), file], { encoding: 'utf8' })));
    theirs.push(
      execFileSync(PY, ['-c', torchLoad, file, path.join(ROOT, 'test', 'fixtures')], { encoding: 'utf8' })
        .trim()
        .split(' ')
        .map(Number),
    );
  }
  const size = fs.statSync(file).size;
  const a = Math.min(...ours.map((r) => r.seconds));
  const b = Math.min(...theirs.map((r) => r[0]));
  report.load = [
    {
      file: 'vgg16 .pth (zip)',
      MB: round(size / 1e6, 0),
      'ours s': round(a, 3),
      'torch s': round(b, 3),
      'ratio (torch/ours)': round(b / a),
      'ours peak RSS / file': round(Math.max(...ours.map((r) => r.above)) / size),
      'torch peak RSS / file': round(Math.max(...theirs.map((r) => r[1])) / size),
    },
  ];
  console.error(`  load: ours ${round(a, 3)} s, torch ${round(b, 3)} s`);
}

/** Every ratio issue 23 targets that this run measured: { what, value, target, unit, met }. */
function targets(report) {
  const out = [];
  const add = (what, value, target, unit = 'x', lower = false) => {
    if (Number.isFinite(value)) out.push({ what, value, target, unit, met: lower ? value < target : value >= target });
  };
  const int8 = report.int8?.find((r) => r.arch === 'vgg16' && r.batch === 8);
  add('VGG-16 b8 int8/fp32', int8?.['ours int8/ours fp32'], TARGETS.int8VsFp32);
  add('VGG-16 b8 int8 vs ORT int8', int8?.['ours int8/ort int8'], TARGETS.int8VsOrt);
  add('VGG-16 b8 fp32 of the Winograd limit', report.header.vgg16b8?.['ours / winograd limit'], TARGETS.ofWinograd, '');
  add('VGG-11-BN b32 64x64 bf16 train step / fp32', report['train-bf16']?.[0]['ours bf16/fp32'], TARGETS.bf16Train);
  const gap = largestLoopGap(report);
  if (gap) add(`largest loop gap (${gap.where})`, gap.ms, TARGETS.loopGapMs, ' ms', true);
  out.push(...serveTargets(report));
  return out;
}

/** The largest event-loop gap over every row with a 'loop gap ms' (the forward, bf16 and int8 rows). */
function largestLoopGap(report) {
  let found;
  for (const [section, rows] of Object.entries(report)) {
    if (!Array.isArray(rows)) continue;
    for (const r of rows) {
      const ms = r['loop gap ms'];
      if (Number.isFinite(ms) && !(found?.ms >= ms))
        found = { ms, where: `${section} ${r.arch} b${r.batch}`, split: r['main thread in that gap ms'] };
    }
  }
  return found;
}

function printTables(report) {
  const h = report.header;
  const blas = h.pytorchBlas?.corename
    ? `OpenBLAS kernel ${h.pytorchBlas.corename} (${h.pytorchBlas.config})`
    : `BLAS ${h.pytorchBlas?.torch ?? '?'}`;
  console.log(
    `vgg-native bench: ${h.cpu}, ${h.cpus} CPUs, ISA ${h.isa.join(' ')}; ${h.threads} threads; ` +
      `LibTorch ${h.libtorch}, oneDNN ${h.onednn.version} (${h.onednn.isa}, engine ${h.onednn.enabled ? 'on' : 'off'}), ` +
      `PyTorch ${h.pytorch} with ${blas}, Node ${h.node}; load ${h.loadavg.join(' ')}`,
  );
  console.log(
    `GEMM 4096^3 peak (the faster kernel): fp32 ${h.peakGflops.fp32} GFLOP/s${h.peakGflops.fp32Best ? ` (best of the run ${h.peakGflops.fp32Best})` : ''}, ` +
      `bf16 ${h.peakGflops.bf16} GFLOP/s; oneDNN inner product fp32 ${h.onednnGflops.fp32}, bf16 ${h.onednnGflops.bf16}; ` +
      `torch.mm fp32 (OpenBLAS) ${h.torchMmGflops.fp32}, bf16 ${h.torchMmGflops.bf16}`,
  );
  const v = h.vgg16b8;
  if (v) {
    console.log(
      `VGG-16 fp32 batch 8: ${v['img/s']} img/s, ${v['GFLOP/s']} GFLOP/s = ${v['x fp32 peak']}x the fp32 peak ` +
        `(${v['peak GFLOP/s']} GFLOP/s, the run's best); ` +
        `fp32 direct limit ${v['direct limit img/s']} img/s, winograd limit ${v['winograd limit img/s']} img/s; ` +
        `ours / winograd limit ${v['ours / winograd limit']} (target ${TARGETS.ofWinograd})`,
    );
  }
  for (const [name, rows] of Object.entries(report)) {
    if (name === 'header' || name === 'targets' || !Array.isArray(rows)) continue;
    console.log(`\n${name}`);
    console.table(rows);
  }
  const gap = largestLoopGap(report);
  if (gap)
    console.log(
      `\nlargest event-loop gap in a forward row: ${gap.ms} ms (${gap.where}; main thread ${gap.split || 'n/a'} ms), ` +
        `${gap.ms < TARGETS.loopGapMs ? 'under' : 'NOT under'} ${TARGETS.loopGapMs} ms`,
    );
  if (report.targets.length) console.log(`targets: ${report.targets.map(formatTarget).join(', ')}`);
}

async function main() {
  const o = parseArgs(process.argv);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgg-bench-'));
  const peer = startPeer(o.threads);
  const report = {};
  try {
    report.header = await header(peer, o);
    if (o.only.some((s) => ['forward', 'bf16', 'e2e', 'load', 'builds'].includes(s))) await forwardSection(peer, o, dir, report);
    const bf16 = report.header.isa.includes('avx512_bf16') || report.header.isa.includes('amx_bf16');
    const noBf16 = (what) => [{ note: `this CPU has no avx512_bf16 or AMX: ${what} skipped` }];
    if (o.only.includes('bf16')) {
      if (bf16) await bf16Section(peer, o, dir, report);
      else report.bf16 = noBf16('bf16');
    }
    if (o.only.includes('int8')) await int8Section(peer, o, dir, report);
    if (o.only.includes('e2e')) await e2eSection(peer, o, dir, report);
    if (o.only.includes('train')) await trainSection(peer, o, report);
    if (o.only.includes('train-bf16')) {
      if (bf16) await trainBf16Section(peer, o, report);
      else report['train-bf16'] = noBf16('the bf16 training step');
    }
    if (o.only.includes('builds')) await buildsSection(o, dir, report);
    if (o.only.includes('transfer')) await transferSection(o, dir, report);
    if (o.only.includes('load')) loadSection(dir, report);
    if (o.only.includes('serve')) await serveSection(o, dir, report);
  } finally {
    peer.quit();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  report.targets = targets(report);
  if (o.json) console.log(JSON.stringify(report, null, 2));
  else printTables(report);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
