// Issue 2: the native model against mmcls's published table and against an
// independent PyTorch re-implementation of mmcls's VGG.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ARCHITECTURES, runtime, vgg, type Architecture } from '../src';
import { coreOf } from '../src/model';
import { randomInput, referenceForward } from './helpers/reference';
import { relError, tempDir } from './helpers/python';
import { assertLoopFree, describeLoop, watchEventLoop } from './helpers/event-loop';

// mmcls VGG README: params (M) and "Flops" (G multiply-adds at 224x224).
const PUBLISHED: Record<Architecture, { params: number; gmacs: number }> = {
  vgg11: { params: 132.86, gmacs: 7.63 },
  vgg13: { params: 133.05, gmacs: 11.34 },
  vgg16: { params: 138.36, gmacs: 15.5 },
  vgg19: { params: 143.67, gmacs: 19.67 },
  vgg11_bn: { params: 132.87, gmacs: 7.63 },
  vgg13_bn: { params: 133.05, gmacs: 11.34 },
  vgg16_bn: { params: 138.37, gmacs: 15.5 },
  vgg19_bn: { params: 143.68, gmacs: 19.67 },
};

describe('native core', () => {
  it('reports the runtime', () => {
    const r = runtime();
    assert.match(r.torchVersion, /^\d+\.\d+/);
    assert.equal(typeof r.cuda, 'boolean');
    assert.ok(r.threads >= 1);
  });

  describe('summary() matches the mmcls table', () => {
    for (const arch of ARCHITECTURES) {
      it(arch, async () => {
        const m = await vgg(arch);
        try {
          const s = m.summary();
          assert.equal(Math.round(s.params / 1e4) / 100, PUBLISHED[arch].params, `params ${s.params}`);
          const want = PUBLISHED[arch].gmacs;
          const got = s.macs / 1e9;
          // BN variants count a little more (2 ops per element), as the table notes.
          assert.ok(got >= want * 0.99 && got <= want * 1.01 + (arch.endsWith('_bn') ? 0.03 : 0), `macs ${got} vs ${want}`);
          assert.equal(s.layers.at(-1)!.outShape[1], 1000);
        } finally {
          m.dispose();
        }
      });
    }
  });

  describe('forward equals the PyTorch reference (relative error < 1e-5)', () => {
    for (const arch of ARCHITECTURES) {
      it(arch, async function () {
        this.timeout(300000);
        const { dir, cleanup } = tempDir();
        const m = await vgg(arch, { seed: 7 });
        try {
          const x = randomInput([2, 3, 224, 224], 11);
          const ours = await m.forward(x);
          const [ref] = await referenceForward(m, x, dir);
          assert.deepEqual(ours.shape, ref.shape);
          const err = relError(ours.data, ref.data);
          assert.ok(err < 1e-5, `relative error ${err}`);
        } finally {
          m.dispose();
          cleanup();
        }
      });
    }
  });

  it('after training steps a forward uses the new weights and batch-norm statistics (equals the reference)', async function () {
    // The CPU engine packs weights and folds BN once; training changes both (BN's running
    // statistics without a version bump), so a stale pack would show here.
    this.timeout(300000);
    const { dir, cleanup } = tempDir();
    const m = await vgg('vgg11_bn', { seed: 5, numClasses: 10, dropout: 0 });
    try {
      const x = randomInput([2, 3, 224, 224], 3); // 224: the reference (mmcls) has no adaptive pool
      await m.forward(x); // the engine packs the initial weights
      await coreOf(m).configureOptimizer({
        type: 'sgd',
        lr: 0.05,
        headLr: 0.05,
        momentum: 0.9,
        nesterov: false,
        weightDecay: 0,
        betas: [0.9, 0.999],
        eps: 1e-8,
      });
      const batch = randomInput([8, 3, 64, 64], 9);
      const labels = BigInt64Array.from({ length: 8 }, (_, i) => BigInt(i % 10));
      for (let i = 0; i < 3; i++) {
        await coreOf(m).trainStep(
          { ...batch, labels },
          {
            labelSmoothing: 0,
            clipGradNorm: 0,
            lr: [0.05, 0.05],
            precision: 'fp32',
          },
        );
      }
      const ours = await m.forward(x);
      const [ref] = await referenceForward(m, x, dir);
      const err = relError(ours.data, ref.data);
      assert.ok(err < 1e-5, `relative error ${err}`);
    } finally {
      m.dispose();
      cleanup();
    }
  });

  it('stage outputs for outIndices equal the reference (vgg13_bn, all indices)', async function () {
    this.timeout(300000);
    const { dir, cleanup } = tempDir();
    const m = await vgg('vgg13_bn', { numClasses: 10, outIndices: [0, 1, 2, 3, 4, 5], seed: 3 });
    try {
      const x = randomInput([1, 3, 224, 224], 5);
      const ours = await m.forwardStages(x);
      const refs = await referenceForward(m, x, dir, { outIndices: [0, 1, 2, 3, 4, 5] });
      assert.deepEqual(
        ours.map((o) => o.name),
        ['stage1', 'stage2', 'stage3', 'stage4', 'stage5', 'logits'],
      );
      assert.equal(refs.length, 6);
      ours.forEach((o, i) => {
        assert.deepEqual(o.shape, refs[i].shape);
        const err = relError(o.data, refs[i].data);
        assert.ok(err < 1e-5, `${o.name}: relative error ${err}`);
      });
    } finally {
      m.dispose();
      cleanup();
    }
  });

  it('backbone options (no classifier, ceilMode, no last pool, dilations) equal the reference', async function () {
    this.timeout(300000);
    const { dir, cleanup } = tempDir();
    const opts = { numClasses: 0, outIndices: [2, 4], ceilMode: true, withLastPool: false, dilations: [1, 1, 1, 2, 2], seed: 9 };
    const m = await vgg('vgg11', opts);
    try {
      const x = randomInput([1, 3, 100, 75], 8);
      const ours = await m.forwardStages(x);
      const refs = await referenceForward(m, x, dir, opts);
      assert.equal(ours.length, 2);
      ours.forEach((o, i) => {
        assert.deepEqual(o.shape, refs[i].shape);
        assert.ok(relError(o.data, refs[i].data) < 1e-5);
      });
    } finally {
      m.dispose();
      cleanup();
    }
  });

  it('keeps the event loop free while a VGG-16 forward runs (the main thread never runs 20 ms at a stretch, GC aside)', async function () {
    this.timeout(120000);
    const m = await vgg('vgg16');
    try {
      const x = randomInput([4, 3, 224, 224]);
      await m.forward(x); // warm-up
      const t0 = performance.now();
      const report = await watchEventLoop(() => m.forward(x));
      const elapsed = performance.now() - t0;
      assert.ok(elapsed > 100, `forward took ${elapsed} ms: too short to tell`);
      console.log(`      VGG-16 forward, batch 4, ${elapsed.toFixed(0)} ms: ${describeLoop(report)}`);
      assertLoopFree(report);
    } finally {
      m.dispose();
    }
  });

  // A leak is linear in the cycles; the allocator's own growth is a few steps (a new arena, a pool
  // thread's first use) that once took CI 5.1% above a fixed baseline. So the test fits RSS against
  // the cycle count: a leaked model (37 MB) or even one leaked activation (256 KiB) per cycle is far
  // above the bound, a one-off 14 MiB step (~21 KiB per cycle over the run) is below it.
  it('1,000 create / forward / dispose cycles leak nothing model-sized (RSS slope < 64 KiB per cycle)', async function () {
    this.timeout(600000);
    const cycle = async (): Promise<void> => {
      const m = await vgg('vgg11', { numClasses: 0 });
      await m.forward(randomInput([1, 3, 32, 32]));
      m.dispose();
    };
    for (let i = 0; i < 50; i++) await cycle(); // reach the allocator's steady state
    const samples: Array<[number, number]> = [];
    for (let i = 0; i <= 1000; i++) {
      if (i % 50 === 0) {
        global.gc?.();
        samples.push([i, process.memoryUsage().rss]);
      }
      if (i < 1000) await cycle();
    }
    const slope = leastSquaresSlope(samples);
    const mib = (b: number) => (b / 2 ** 20).toFixed(0);
    const trace = `RSS ${mib(samples[0][1])} -> ${mib(samples[samples.length - 1][1])} MiB, slope ${(slope / 1024).toFixed(1)} KiB per cycle`;
    console.log(`      ${trace}`);
    assert.ok(slope < 64 * 1024, trace);
  });

  describe('bad input is refused at the boundary', () => {
    let m: Awaited<ReturnType<typeof vgg>>;
    before(async () => {
      m = await vgg('vgg11', { numClasses: 4 });
    });
    after(() => m.dispose());
    const x = (shape: number[], n = shape.reduce((a, b) => a * b, 1)) => ({ data: new Float32Array(n), shape });

    it('unknown arch', async () => {
      await assert.rejects(vgg('vgg15' as Architecture), { name: 'RangeError', message: /for arch but received "vgg15"/ });
      await assert.rejects(vgg(16 as unknown as Architecture), { name: 'TypeError', message: /for arch/ });
    });
    it('bad options', async () => {
      await assert.rejects(vgg('vgg11', { numClasses: -1 }), { name: 'RangeError', message: /options\.numClasses.*-1/ });
      await assert.rejects(vgg('vgg11', { numClasses: 2.5 }), { name: 'RangeError', message: /options\.numClasses/ });
      await assert.rejects(vgg('vgg11', { device: 'tpu' as 'cpu' }), { name: 'RangeError', message: /options\.device/ });
      await assert.rejects(vgg('vgg11', { dilations: [1, 1] }), { name: 'RangeError', message: /options\.dilations/ });
      await assert.rejects(vgg('vgg11', { bogus: 1 } as never), { name: 'RangeError', message: /options/ });
    });
    it('vgg(undefined, options) keeps the options (the architecture is left to the weights)', async () => {
      await assert.rejects(
        vgg(undefined, { weights: '/no/such/dir/missing.pth', numClasses: 7 }),
        /weights file not found: \/no\/such\/dir\/missing\.pth/,
      );
      const a = await vgg(undefined, { numClasses: 7, withLastPool: true });
      try {
        assert.equal(a.arch, 'vgg16');
        assert.equal(a.numClasses, 7);
      } finally {
        a.dispose();
      }
      await assert.rejects(vgg({ numClasses: 3 }, { numClasses: 4 }), { name: 'TypeError', message: /for arch/ });
    });
    it('CUDA without a CUDA LibTorch says how to get one', async function () {
      if (runtime().cuda) this.skip();
      await assert.rejects(vgg('vgg11', { device: 'cuda' }), /no CUDA.*LIBTORCH/s);
    });
    it('wrong data length, NaN sizes, wrong channels, wrong types', async () => {
      await assert.rejects(m.forward(x([1, 3, 64, 64], 10)), { name: 'RangeError', message: /12288 elements.*for x\.data/ });
      await assert.rejects(m.forward(x([1, 3, NaN, 64], 0)), { name: 'RangeError', message: /x\.shape\[2\]/ });
      await assert.rejects(m.forward(x([1, 4, 64, 64])), { name: 'RangeError', message: /3 channels.*for x\.shape\[1\]/ });
      await assert.rejects(m.forward(x([1, 3, 8, 8])), { name: 'RangeError', message: /at least 32/ });
      await assert.rejects(m.forward(x([3, 64]) as never), { name: 'RangeError', message: /NCHW/ });
      await assert.rejects(m.forward({ data: [1, 2, 3], shape: [3] } as never), { name: 'TypeError', message: /Float32Array for x\.data/ });
      await assert.rejects(m.forward('cat.jpg' as never), { name: 'TypeError', message: /for x/ });
    });
    it('malformed state entries are refused at the boundary', async () => {
      await assert.rejects(m.loadStateDict('x' as never), { name: 'TypeError', message: /for entries/ });
      await assert.rejects(
        m.loadStateDict([{ name: 'classifier.6.weight', tensor: { kind: 'array', data: new Float32Array(4 * 4096), shape: [4, 4095, 1] } }]),
        { name: 'RangeError', message: /for entries\[0\]\.tensor\.data/ },
      );
      await assert.rejects(
        m.loadStateDict([{ name: 'classifier.6.weight', tensor: { kind: 'array', data: new Float32Array(4 * 4095), shape: [4, 4095] } }]),
        /classifier\.6\.weight expected \[4, 4096\] but got \[4, 4095\]/,
      );
    });
    it('stateDict() is a snapshot: later loadStateDict does not change what it returned', async () => {
      const before = await m.stateDict();
      const bias = before.find((t) => t.name === 'classifier.6.bias')!;
      const conv = before.find((t) => t.name === 'features.0.conv.weight')!;
      const wanted = { bias: Float32Array.from(bias.data as Float32Array), conv: Float32Array.from(conv.data as Float32Array) };
      await m.loadStateDict(
        [
          { name: 'classifier.6.bias', tensor: { kind: 'array', data: new Float32Array(4).fill(7), shape: [4] } },
          { name: 'features.0.conv.weight', tensor: { kind: 'array', data: new Float32Array(64 * 27).fill(0.25), shape: [64, 3, 3, 3] } },
        ],
        { strict: false },
      );
      assert.deepEqual(bias.data, wanted.bias);
      assert.deepEqual(conv.data, wanted.conv);
      const after = await m.stateDict();
      assert.deepEqual([...(after.find((t) => t.name === 'classifier.6.bias')!.data as Float32Array)], [7, 7, 7, 7]);
    });
    it('a LibTorch error becomes a rejected Promise, not a crash', async () => {
      // Passes every check in TypeScript; the native reader finds the file too short.
      const { dir, cleanup } = tempDir();
      try {
        const file = path.join(dir, 'short.bin');
        fs.writeFileSync(file, Buffer.alloc(16));
        await assert.rejects(
          m.loadStateDict(
            [
              {
                name: 'classifier.6.bias',
                tensor: {
                  kind: 'file',
                  path: file,
                  byteOffset: 8,
                  dtype: 'float32',
                  storageNumel: 4,
                  storageOffset: 0,
                  shape: [4],
                  stride: [1],
                },
              },
            ],
            { strict: false },
          ),
          /loading 'classifier\.6\.bias': storage claims 16 bytes at offset 8 but the file has 16 bytes/,
        );
      } finally {
        cleanup();
      }
    });
  });

  describe('devices and precision', () => {
    it('CUDA forward equals the CPU forward', async function () {
      if (!runtime().cuda) {
        this.test!.title += ' (skipped: this LibTorch has no CUDA or no GPU is visible)';
        this.skip();
      }
      const cpu = await vgg('vgg11', { numClasses: 10, seed: 2, device: 'cpu' });
      const gpu = await vgg('vgg11', { numClasses: 10, seed: 2, device: 'cuda' });
      try {
        const x = randomInput([2, 3, 224, 224]);
        assert.ok(relError((await gpu.forward(x)).data, (await cpu.forward(x)).data) < 1e-4);
        const half = await gpu.forward(x, { precision: 'fp16', channelsLast: true });
        assert.ok(relError(half.data, (await cpu.forward(x)).data) < 2e-2);
      } finally {
        cpu.dispose();
        gpu.dispose();
      }
    });

    it('bf16 autocast on the CPU stays close to fp32; fp16 on the CPU is refused clearly', async function () {
      this.timeout(120000);
      const m = await vgg('vgg11', { numClasses: 10, seed: 2, device: 'cpu' });
      try {
        const x = randomInput([1, 3, 64, 64]);
        const full = await m.forward(x);
        const bf16 = await m.forward(x, { precision: 'bf16' });
        const err = relError(bf16.data, full.data);
        assert.ok(err > 0 && err < 5e-2, `bf16 relative error ${err}`);
        await assert.rejects(m.forward(x, { precision: 'fp16' }), /fp16.*needs a CUDA device/);
      } finally {
        m.dispose();
      }
    });
  });

  it('ESM import and require give the same API', async () => {
    const root = path.resolve(__dirname, '..');
    if (!fs.existsSync(path.join(root, 'dist', 'index.mjs'))) throw new Error('dist/ not built: run npm run build:ts');
    const esm = await import(path.join(root, 'dist', 'index.mjs'));
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const cjs = require(path.join(root, 'dist', 'index.js'));
    assert.equal(typeof esm.vgg, 'function');
    assert.deepEqual(
      Object.keys(esm)
        .filter((k) => k !== 'default')
        .sort(),
      Object.keys(cjs).sort(),
    );
  });
});

/** Ordinary least-squares slope of y on x. */
function leastSquaresSlope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxy / sxx;
}
