#!/usr/bin/env node
// Forward throughput of VGG-16 and VGG-11 on the CPU, vgg-native against
// PyTorch (Debian's /usr/bin/python3, same thread count, inference_mode,
// the mmcls-style model of test/fixtures/mmcls_vgg.py), measured in the same
// run: for each configuration both warm up, then their timed forwards
// alternate so a change in machine load hits both alike. Reports the median.
// Then end-to-end classify (decode + preprocess + forward) on real photos.
//
//   node bench/forward.js [--reps N] [--threads N] [--archs vgg16,vgg11] [--batches 1,8]
// Needs the built package (npm run build). VGG_BENCH_PYTHON overrides the interpreter.
// On a shared or small machine, OpenMP's spin-waiting threads (both sides use
// libgomp) cost a lot when other processes want the CPUs: compare with
// OMP_WAIT_POLICY=PASSIVE node bench/forward.js, which both processes inherit.
'use strict';
const { spawn } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { vgg, runtime } = require('../dist');

function parseArgs(argv) {
  const o = { reps: 5, threads: os.cpus().length, archs: ['vgg16', 'vgg11'], batches: [1, 8], e2e: 16 };
  for (let i = 2; i < argv.length; i++) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === '--reps') o.reps = Number(v);
    else if (k === '--threads') o.threads = Number(v);
    else if (k === '--archs') o.archs = v.split(',');
    else if (k === '--batches') o.batches = v.split(',').map(Number);
    else if (k === '--e2e') o.e2e = Number(v);
    else throw new Error(`unknown argument ${k}`);
    i++;
  }
  return o;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** The PyTorch server (bench/forward_torch.py): send a request, await its one-line reply. */
function startTorch(threads) {
  const py = process.env.VGG_BENCH_PYTHON || '/usr/bin/python3';
  const child = spawn(py, [path.join(__dirname, 'forward_torch.py'), String(threads)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, OMP_NUM_THREADS: String(threads) },
  });
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = [];
  lines.on('line', (l) => waiting.shift()?.resolve(JSON.parse(l)));
  child.on('exit', (code) => { for (const w of waiting.splice(0)) w.reject(new Error(`python exited with ${code}`)); });
  const next = () => new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  const hello = next();
  return {
    hello,
    request(obj) {
      const p = next();
      child.stdin.write(`${JSON.stringify(obj)}\n`);
      return p;
    },
    quit() { child.stdin.end(`${JSON.stringify({ cmd: 'quit' })}\n`); },
  };
}

function randomInput(batch) {
  const data = new Float32Array(batch * 3 * 224 * 224);
  let s = 1;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s / 2 ** 32) * 4 - 2;
  }
  return { data, shape: [batch, 3, 224, 224] };
}

async function timeOurs(model, x) {
  const t0 = performance.now();
  await model.forward(x);
  return (performance.now() - t0) / 1000;
}

function pad(s, n, right = false) {
  s = String(s);
  return right ? s.padEnd(n) : s.padStart(n);
}

async function main() {
  const o = parseArgs(process.argv);
  const torch = startTorch(o.threads);
  const hello = await torch.hello;
  const rt = runtime();
  const load0 = os.loadavg();
  console.log(`vgg-native (LibTorch ${rt.torchVersion}) vs PyTorch ${hello.torch}; ${o.threads} threads each, ` +
    `${os.cpus().length} CPUs (${os.cpus()[0].model.trim()}); load average ${load0.map((l) => l.toFixed(2)).join(' ')}; ` +
    `OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY ?? '(unset)'}`);
  console.log(`forward on a random [batch,3,224,224] input, 1000 classes, fp32; median of ${o.reps} after 1 warm-up each, runs alternating\n`);

  const rows = [];
  for (const arch of o.archs) {
    const depth = Number(arch.replace(/\D/g, ''));
    const model = await vgg(arch, { device: 'cpu', threads: o.threads, seed: 0 });
    try {
      for (const batch of o.batches) {
        const x = randomInput(batch);
        await timeOurs(model, x); // warm-up
        await torch.request({ cmd: 'time', depth, batch, reps: 1 });
        const ours = [];
        const theirs = [];
        for (let r = 0; r < o.reps; r++) {
          ours.push(await timeOurs(model, x));
          theirs.push(...(await torch.request({ cmd: 'time', depth, batch, reps: 1 })).seconds);
        }
        const a = batch / median(ours);
        const b = batch / median(theirs);
        rows.push({ arch, batch, ours: a, torch: b, ratio: a / b, spread: [Math.min(...ours), Math.max(...ours), Math.min(...theirs), Math.max(...theirs)] });
        console.error(`  ${arch} b${batch}: ours ${ours.map((t) => t.toFixed(3)).join(' ')} s; torch ${theirs.map((t) => t.toFixed(3)).join(' ')} s`);
      }
    } finally {
      model.dispose();
    }
  }
  torch.quit();

  console.log(`| model | batch | vgg-native img/s | PyTorch img/s | ratio (vgg-native / PyTorch) |`);
  console.log(`| --- | ---: | ---: | ---: | ---: |`);
  for (const r of rows) {
    console.log(`| ${pad(r.arch, 6, true)} | ${r.batch} | ${r.ours.toFixed(2)} | ${r.torch.toFixed(2)} | ${r.ratio.toFixed(2)} |`);
  }

  // End to end: sharp decode + resize/crop/normalise + forward, batched and pipelined.
  const SKI = '/usr/lib/python3/dist-packages/skimage/data';
  const SKL = '/usr/lib/python3/dist-packages/sklearn/datasets/images';
  const photos = [`${SKI}/chelsea.png`, `${SKI}/coffee.png`, `${SKI}/astronaut.png`, `${SKI}/rocket.jpg`, `${SKL}/china.jpg`, `${SKL}/flower.jpg`];
  const inputs = Array.from({ length: o.e2e }, (_, i) => photos[i % photos.length]);
  console.log(`\nend to end: classify() on ${inputs.length} photos (${photos.length} distinct, PNG and JPEG, decode + preprocess + forward), batch 8`);
  console.log(`| model | images | seconds | img/s |`);
  console.log(`| --- | ---: | ---: | ---: |`);
  for (const arch of o.archs) {
    const model = await vgg(arch, { device: 'cpu', threads: o.threads, seed: 0 });
    try {
      await model.classify(inputs.slice(0, 8), { batchSize: 8 }); // warm-up
      const t0 = performance.now();
      const items = await model.classify(inputs, { batchSize: 8 });
      const s = (performance.now() - t0) / 1000;
      const bad = items.filter((r) => r.error);
      if (bad.length) throw bad[0].error;
      console.log(`| ${arch} | ${inputs.length} | ${s.toFixed(2)} | ${(inputs.length / s).toFixed(2)} |`);
    } finally {
      model.dispose();
    }
  }
  console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
