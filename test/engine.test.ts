// Every CPU inference path against PyTorch: the oneDNN engine with Winograd
// (the default where the CPU has avx512_core), with direct convolution, with
// oneDNN held to AVX2 (as on an AVX2-only machine: Winograd falls back to
// direct), and LibTorch's own kernels (VGG_NATIVE_ONEDNN=0). The switches are
// read once per process, so each path runs in a child process of its own.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runtime, vgg, type Architecture } from '../src';
import { randomInput, referenceForward } from './helpers/reference';
import { readF32, relError, tempDir } from './helpers/python';

const CHILD = `
const fs = require('node:fs');
const { vgg, runtime } = require(process.argv[1]);
(async () => {
  const m = await vgg({ weights: process.argv[2] });
  const buf = fs.readFileSync(process.argv[3]);
  const x = { data: new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4), shape: JSON.parse(process.argv[4]) };
  const y = await m.forward(x);
  fs.writeFileSync(process.argv[5], Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  console.log(JSON.stringify({ ...runtime().onednn, gemvKernel: runtime().gemvKernel }));
  m.dispose();
})().catch((e) => { console.error(e); process.exit(1); });
`;

// Batches of the same rows (BATCHES), their logits one after the other.
const CHILD_BATCHES = `
const fs = require('node:fs');
const { vgg, runtime } = require(process.argv[1]);
(async () => {
  const m = await vgg({ weights: process.argv[2] });
  const buf = fs.readFileSync(process.argv[3]);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const [, c, h, w] = JSON.parse(process.argv[4]);
  const outs = [];
  for (const n of JSON.parse(process.argv[6])) outs.push(Buffer.from((await m.forward({ data: all.subarray(0, n * c * h * w), shape: [n, c, h, w] })).data.buffer));
  fs.writeFileSync(process.argv[5], Buffer.concat(outs));
  console.log(JSON.stringify({ gemvKernel: runtime().gemvKernel }));
  m.dispose();
})().catch((e) => { console.error(e); process.exit(1); });
`;

/** Runs a child script (src/ as its first argument) with extra environment variables; returns the JSON it prints. */
function runChild(script: string, args: string[], env: Record<string, string>): unknown {
  const src = path.join(__dirname, '..', 'src');
  const stdout = execFileSync(process.execPath, ['-r', 'tsx/cjs', '-e', script, src, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return JSON.parse(stdout.trim());
}

const PATHS: Array<{ name: string; env: Record<string, string> }> = [
  { name: 'oneDNN engine, default algorithm', env: {} },
  { name: 'oneDNN engine, direct convolution', env: { VGG_NATIVE_CONV_ALGO: 'direct' } },
  { name: 'oneDNN engine, Winograd wherever it has a kernel', env: { VGG_NATIVE_CONV_ALGO: 'winograd' } },
  { name: 'oneDNN engine held to AVX2', env: { DNNL_MAX_CPU_ISA: 'AVX2' } },
  { name: "LibTorch's own kernels", env: { VGG_NATIVE_ONEDNN: '0' } },
];

describe('CPU inference paths: each equals PyTorch (relative error < 1e-5)', function () {
  this.timeout(300000);
  for (const arch of ['vgg11_bn', 'vgg16'] as Architecture[]) {
    it(`${arch}: ${PATHS.map((p) => p.name).join('; ')}`, async function () {
      const { dir, cleanup } = tempDir();
      const m = await vgg(arch, { seed: 13 });
      try {
        const x = randomInput([2, 3, 224, 224], 21); // batch 2: the classifier runs native/gemv.cc
        const [ref] = await referenceForward(m, x, dir);
        const weights = path.join(dir, 'w.pth');
        await m.save(weights);
        fs.writeFileSync(path.join(dir, 'x.f32'), Buffer.from(x.data.buffer));
        for (const p of PATHS) {
          const out = path.join(dir, 'y.f32');
          const info = runChild(CHILD, [weights, path.join(dir, 'x.f32'), JSON.stringify(x.shape), out], p.env) as {
            isa: string;
            enabled: boolean;
            gemvKernel: string;
          };
          if (p.env.DNNL_MAX_CPU_ISA && runtime().onednn.built) assert.equal(info.isa, 'avx2', 'oneDNN held to AVX2');
          if (p.env.VGG_NATIVE_ONEDNN === '0') assert.equal(info.enabled, false);
          const err = relError(readF32(out), ref.data);
          assert.ok(err < 1e-5, `${p.name}: relative error ${err}`);
        }
      } finally {
        m.dispose();
        cleanup();
      }
    });
  }

  it("fully connected layers at batch 1-16 (native/gemv.cc: AVX-512, AVX2, and LibTorch's linear) equal PyTorch", async function () {
    const { dir, cleanup } = tempDir();
    const m = await vgg('vgg11', { seed: 5 });
    // Each kernel width (1-4 rows), and past 4 rows the groups of 4 with a remainder (5, 11) or none (8, 16).
    const batches = [1, 2, 3, 4, 5, 8, 11, 16];
    try {
      const x = randomInput([16, 3, 224, 224], 8);
      const [ref] = await referenceForward(m, x, dir);
      const weights = path.join(dir, 'w.pth');
      await m.save(weights);
      fs.writeFileSync(path.join(dir, 'x.f32'), Buffer.from(x.data.buffer));
      const kernels = runtime().gemvKernel === 'avx512' ? ['', 'avx2', '0'] : ['', '0'];
      for (const kernel of kernels) {
        const out = path.join(dir, 'y.f32');
        const args = [weights, path.join(dir, 'x.f32'), JSON.stringify(x.shape), out, JSON.stringify(batches)];
        const info = runChild(CHILD_BATCHES, args, { VGG_NATIVE_GEMV: kernel }) as {
          gemvKernel: string;
        };
        if (kernel) assert.equal(info.gemvKernel, kernel === '0' ? 'none' : 'avx2');
        const y = readF32(out);
        let offset = 0;
        for (const batch of batches) {
          const err = relError(y.subarray(offset, offset + batch * 1000), ref.data.subarray(0, batch * 1000));
          offset += batch * 1000;
          assert.ok(err < 1e-5, `kernel ${info.gemvKernel}, batch ${batch}: relative error ${err}`);
        }
      }
    } finally {
      m.dispose();
      cleanup();
    }
  });

  it('runtime() says which engine runs and what the CPU offers', () => {
    const r = runtime().onednn;
    assert.equal(typeof r.built, 'boolean');
    if (r.built) {
      assert.match(r.version, /^\d+\.\d+\.\d+$/);
      assert.ok(r.isa.length > 0);
    }
  });

  it("runtime().cpu matches the kernel's CPU flags (/proc/cpuinfo)", function () {
    if (process.arch !== 'x64' || !fs.existsSync('/proc/cpuinfo')) this.skip();
    const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(/\s+/));
    const cpu = runtime().cpu;
    assert.deepEqual(cpu, {
      avx2: flags.has('avx2') && flags.has('fma'),
      avx512f: flags.has('avx512f'),
      avx512Vnni: flags.has('avx512_vnni'),
      avx512Bf16: flags.has('avx512_bf16'),
      amxBf16: flags.has('amx_bf16'),
      amxInt8: flags.has('amx_int8'),
    });
  });
});
