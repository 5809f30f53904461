#!/usr/bin/env node
// `npm run bench`: vgg-native against its peers on this machine, in one run,
// the contenders interleaved rep by rep so a change in load hits all alike.
// Every figure that matters is a ratio between numbers of the same run.
//
//   node bench/run.js [--json] [--reps N] [--threads N] [--prebuilt FILE] [--only forward,bf16,e2e,train,builds,transfer,load]
//
// Peers: onnxruntime-node (devDependency) on a torch.onnx export of the same
// weights; PyTorch on Debian's /usr/bin/python3 (the same LibTorch and oneDNN
// as ours) as eager, channels_last and torch.jit.optimize_for_inference, and
// its bf16 paths; PIL + torchvision transforms for the end-to-end pipeline
// (bench/peer.py). Needs the built package (npm run build).
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
    only: ['forward', 'bf16', 'e2e', 'train', 'builds', 'transfer', 'load'],
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
    else if (k === '--prebuilt') o.prebuilt = path.resolve(v);
    else throw new Error(`unknown argument ${k}`);
  }
  return o;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, d = 2) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);

/** bench/peer.py as a request/reply server. */
function startPeer(threads) {
  return startServer(PY, [path.join(__dirname, 'peer.py'), String(threads)], { OMP_NUM_THREADS: String(threads) });
}

/** bench/addon-peer.js with another build of the addon: the `builds` section's second contender. */
function startAddonPeer(addon) {
  return startServer(process.execPath, [path.join(__dirname, 'addon-peer.js')], { VGG_NATIVE_ADDON: addon });
}

/** A child answering one JSON line per JSON line it reads. */
function startServer(cmd, args, env) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
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

function seededInput(shape, seed) {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s / 2 ** 32) * 4 - 2;
  }
  return { data, shape };
}

/** Largest gap between 1 ms timer ticks while `work` runs (the event loop's responsiveness). */
async function withLoopGap(work) {
  let last = performance.now();
  let gap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
  }, 1);
  try {
    const result = await work();
    return { result, gap: Math.max(gap, performance.now() - last) };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Waits before each timed call: every contender's thread pool spins for a while after its
 * work (libgomp's workers, onnxruntime's intra-op pool, caffe2's pthreadpool), and interleaved
 * rep by rep those spinning threads would take cores from whichever contender runs next.
 */
const SETTLE_MS = Number(process.env.VGG_BENCH_SETTLE_MS ?? 250);
const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

async function timed(fn) {
  await settle();
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

// ---------------------------------------------------------------------------

async function header(peer, o) {
  const rt = runtime();
  const hello = await peer.ask({ cmd: 'hello' });
  const gemm = await peer.ask({ cmd: 'gemm' });
  return {
    cpu: os.cpus()[0].model.trim(),
    cpus: os.cpus().length,
    isa: cpuFlags(),
    threads: o.threads,
    libtorch: rt.torchVersion,
    onednn: rt.onednn,
    pytorch: hello.torch,
    node: process.version,
    gemmGflops: { fp32: round(gemm.fp32, 0), bf16: round(gemm.bf16, 0) },
    loadavg: os.loadavg().map((l) => round(l)),
  };
}

async function forwardSection(peer, o, dir, report) {
  const ort = require('onnxruntime-node');
  const rows = [];
  for (const depth of [16, 11]) {
    await peer.ask({ cmd: 'prepare', depth, dir });
    const model = await vgg({ weights: path.join(dir, `vgg${depth}.pth`), threads: o.threads });
    const session = await ort.InferenceSession.create(path.join(dir, `vgg${depth}.onnx`), {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: o.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    });
    const gflop = (2 * model.summary().macs) / 1e9;
    try {
      for (const batch of [1, 8]) {
        const x = seededInput([batch, 3, 224, 224], depth * 100 + batch);
        const input = path.join(dir, `x${depth}_${batch}.f32`);
        fs.writeFileSync(input, Buffer.from(x.data.buffer));
        const req = { depth, input, shape: x.shape };
        const feeds = { x: new ort.Tensor('float32', x.data, x.shape) };
        // Logits: ours and onnxruntime's against PyTorch eager.
        await peer.ask({ cmd: 'logits', ...req, out: `${input}.logits` });
        const buf = fs.readFileSync(`${input}.logits`);
        const ref = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
        const ours = (await model.forward(x)).data;
        const theirs = (await session.run(feeds)).logits.data;
        const t = { ours: [], ort: [], eager: [], channels_last: [], ofi: [] };
        let gap = 0;
        for (const p of ['eager', 'channels_last', 'ofi']) await peer.ask({ cmd: 'time', ...req, path: p, reps: 1 }); // warm-up
        for (let r = 0; r < o.reps; r++) {
          const g = await withLoopGap(() => timed(() => model.forward(x)));
          t.ours.push(g.result);
          gap = Math.max(gap, g.gap);
          t.ort.push(await timed(() => session.run(feeds)));
          for (const p of ['eager', 'channels_last', 'ofi']) {
            await settle();
            t[p].push(...(await peer.ask({ cmd: 'time', ...req, path: p, reps: 1 })).seconds);
          }
        }
        const ips = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, batch / median(v)]));
        const bestName = ips.ofi >= ips.channels_last ? 'ofi' : 'channels_last';
        const row = {
          arch: `vgg${depth}`,
          batch,
          'ours img/s': round(ips.ours),
          'onnxruntime img/s': round(ips.ort),
          'torch eager img/s': round(ips.eager),
          [`torch best img/s`]: round(ips[bestName]),
          'torch best path': bestName,
          'ours/ort': round(ips.ours / ips.ort),
          'ours/eager': round(ips.ours / ips.eager),
          'ours/best': round(ips.ours / ips[bestName]),
          'GFLOP/s': round(ips.ours * gflop, 0),
          'rel err vs torch': relError(ours, ref).toExponential(1),
          'ort rel err': relError(theirs, ref).toExponential(1),
          'loop gap ms': round(gap, 1),
        };
        rows.push(row);
        console.error(
          `  forward vgg${depth} b${batch}: ours ${row['ours img/s']}, ort ${row['onnxruntime img/s']}, eager ${row['torch eager img/s']}, best ${row['torch best img/s']} img/s`,
        );
      }
    } finally {
      model.dispose();
    }
  }
  report.forward = rows;
  const peak = report.header.gemmGflops.fp32;
  const v16 = rows.find((r) => r.arch === 'vgg16' && r.batch === 8);
  if (v16) report.header.vgg16EffectiveVsGemm = round(v16['GFLOP/s'] / peak);
}

async function bf16Section(peer, o, dir, report) {
  const rows = [];
  for (const depth of [16, 11]) {
    const model = await vgg({ weights: path.join(dir, `vgg${depth}.pth`), threads: o.threads });
    try {
      const batch = 8;
      const x = seededInput([batch, 3, 224, 224], depth * 100 + batch);
      const input = path.join(dir, `x${depth}_${batch}.f32`);
      const req = { depth, input, shape: x.shape };
      const paths = ['autocast_bf16', 'autocast_bf16_cl', 'bf16_cl'];
      await model.forward(x, { precision: 'bf16' });
      for (const p of paths) await peer.ask({ cmd: 'time', ...req, path: p, reps: 1 });
      const t = { ours: [], autocast_bf16: [], autocast_bf16_cl: [], bf16_cl: [] };
      for (let r = 0; r < o.reps; r++) {
        t.ours.push(await timed(() => model.forward(x, { precision: 'bf16' })));
        for (const p of paths) {
          await settle();
          t[p].push(...(await peer.ask({ cmd: 'time', ...req, path: p, reps: 1 })).seconds);
        }
      }
      const ips = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, batch / median(v)]));
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
      });
      console.error(`  bf16 vgg${depth} b${batch}: ours ${round(ips.ours)}, torch best ${round(best)} img/s`);
    } finally {
      model.dispose();
    }
  }
  report.bf16 = rows;
}

/** 64 JPEG photographs: crops, flips and scales of the Debian test photos. */
async function makePhotos(dir) {
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
      await coreOf(model).configureOptimizer({
        type: 'sgd',
        lr: 0.01,
        headLr: 0.01,
        momentum: 0.9,
        nesterov: false,
        weightDecay: 5e-4,
        betas: [0.9, 0.999],
        eps: 1e-8,
      });
      const x = seededInput([batch, 3, size, size], size);
      const labels = BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 10));
      const opts = { labelSmoothing: 0, clipGradNorm: 0, lr: [0.01, 0.01], precision: 'fp32' };
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
  const them = await peer.ask({ cmd: 'runtime' });
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
      const session = await ort.InferenceSession.create(path.join(dir, `vgg${depth}.onnx`), {
        graphOptimizationLevel: 'all',
        intraOpNumThreads: o.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
      });
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
          const feeds = { x: new ort.Tensor('float32', x.data, x.shape) };
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
    const optimizer = { type: 'sgd', lr: 0.01, headLr: 0.01, momentum: 0.9, nesterov: false, weightDecay: 5e-4, betas: [0.9, 0.999], eps: 1e-8 };
    const opts = { labelSmoothing: 0, clipGradNorm: 0, lr: [0.01, 0.01], precision: 'fp32' };
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

function printTables(report) {
  const h = report.header;
  console.log(
    `vgg-native bench: ${h.cpu}, ${h.cpus} CPUs, ISA ${h.isa.join(' ')}; ${h.threads} threads; ` +
      `LibTorch ${h.libtorch}, oneDNN ${h.onednn.version} (${h.onednn.isa}, engine ${h.onednn.enabled ? 'on' : 'off'}), PyTorch ${h.pytorch}, Node ${h.node}; ` +
      `GEMM 4096^3: fp32 ${h.gemmGflops.fp32} GFLOP/s, bf16 ${h.gemmGflops.bf16} GFLOP/s; load ${h.loadavg.join(' ')}`,
  );
  if (h.vgg16EffectiveVsGemm !== undefined) console.log(`VGG-16 fp32 batch 8: ${h.vgg16EffectiveVsGemm}x the fp32 GEMM rate`);
  for (const [name, rows] of Object.entries(report)) {
    if (name === 'header' || !Array.isArray(rows)) continue;
    console.log(`\n${name}`);
    console.table(rows);
  }
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
    if (o.only.includes('bf16')) {
      if (bf16) await bf16Section(peer, o, dir, report);
      else report.bf16 = [{ note: 'this CPU has no avx512_bf16 or AMX: bf16 skipped' }];
    }
    if (o.only.includes('e2e')) await e2eSection(peer, o, dir, report);
    if (o.only.includes('train')) await trainSection(peer, o, report);
    if (o.only.includes('builds')) await buildsSection(o, dir, report);
    if (o.only.includes('transfer')) await transferSection(o, dir, report);
    if (o.only.includes('load')) loadSection(dir, report);
  } finally {
    peer.quit();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (o.json) console.log(JSON.stringify(report, null, 2));
  else printTables(report);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
