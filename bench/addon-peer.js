#!/usr/bin/env node
// A second vgg-native in its own process, for `npm run bench`'s `builds`
// section: one process can load one addon (two LibTorch versions would clash),
// so the parent runs its own build and asks this one, started with
// VGG_NATIVE_ADDON set to the other build, to time the same calls.
// Request/reply over stdin/stdout, one JSON object a line (as bench/peer.py).
'use strict';
const fs = require('node:fs');
const readline = require('node:readline');
const { vgg, runtime } = require('../dist');
const { coreOf } = require('../dist/model');

let model;

function readF32(file) {
  const buf = fs.readFileSync(file);
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
}

async function seconds(fn) {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

const handlers = {
  runtime: () => {
    const r = runtime();
    return { libtorch: r.torchVersion, onednn: r.onednn, addon: r.addon };
  },
  load: async ({ weights, threads, numClasses, arch }) => {
    model?.dispose();
    model = weights ? await vgg({ weights, threads }) : await vgg(arch, { numClasses, seed: 0, threads });
    return {};
  },
  forward: async ({ input, shape, precision }) => {
    const x = { data: readF32(input), shape };
    return { seconds: await seconds(() => model.forward(x, { precision })) };
  },
  configureOptimizer: async ({ optimizer }) => {
    await coreOf(model).configureOptimizer(optimizer);
    return {};
  },
  trainStep: async ({ input, shape, labels, opts }) => {
    const x = readF32(input);
    const y = BigInt64Array.from(labels.map(BigInt));
    return { seconds: await seconds(() => coreOf(model).trainStep({ data: x, shape, labels: y }, opts)) };
  },
};

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  const req = JSON.parse(line);
  if (req.cmd === 'quit') {
    model?.dispose();
    lines.close();
    return;
  }
  queue = queue.then(async () => {
    try {
      process.stdout.write(`${JSON.stringify(await handlers[req.cmd](req))}\n`);
    } catch (e) {
      process.stdout.write(`${JSON.stringify({ error: e.message })}\n`);
    }
  });
});
