// The node-gyp build (binding.gyp, `npm run build:gyp`) of the same sources
// loads and runs: a forward in a child process using that addon equals
// PyTorch's output on the same weights. `npm test` builds nothing: without
// build-gyp/Release/vgg_native.node this test is reported as skipped (pending),
// with the reason in its title; CI builds it (its Debian LibTorch build), so
// there it always runs.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { vgg } from '../src';
import { randomInput, referenceForward } from './helpers/reference';
import { relError, readF32, tempDir } from './helpers/python';

const ROOT = path.resolve(__dirname, '..');
const GYP_ADDON = path.join(ROOT, 'build-gyp', 'Release', 'vgg_native.node');

describe('node-gyp build', () => {
  it("loads, reports its runtime and computes PyTorch's logits", async function () {
    this.timeout(300000);
    if (!fs.existsSync(GYP_ADDON)) {
      this.test!.title += ` [skipped: ${path.relative(ROOT, GYP_ADDON)} is absent; npm run build:gyp builds it]`;
      this.skip();
    }
    const { dir, cleanup } = tempDir();
    try {
      const x = randomInput([1, 3, 224, 224], 3);
      fs.writeFileSync(path.join(dir, 'x.f32'), Buffer.from(x.data.buffer));
      const child = `
        const fs = require('fs'); const path = require('path');
        const { vgg, runtime } = require(${JSON.stringify(path.join(ROOT, 'src'))});
        (async () => {
          const m = await vgg('vgg11', { numClasses: 7, seed: 5 });
          const buf = fs.readFileSync(path.join(process.argv[1], 'x.f32'));
          const y = await m.forward({ data: new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4), shape: [1, 3, 224, 224] });
          fs.writeFileSync(path.join(process.argv[1], 'y.f32'), Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
          console.log(JSON.stringify(runtime()));
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const out = execFileSync(process.execPath, ['-r', 'tsx/cjs', '-e', child, dir], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, VGG_NATIVE_ADDON: GYP_ADDON },
      });
      const rt = JSON.parse(out.trim().split('\n').pop()!);
      assert.match(rt.torchVersion, /^\d+\.\d+/);
      assert.equal(rt.distributed, true, 'the gyp build has c10d like the cmake build');
      // The same seed gives the same initial weights; PyTorch runs them.
      const m = await vgg('vgg11', { numClasses: 7, seed: 5 });
      try {
        const [ref] = await referenceForward(m, x, dir);
        assert.ok(relError(readF32(path.join(dir, 'y.f32')), ref.data) < 1e-5);
      } finally {
        m.dispose();
      }
    } finally {
      cleanup();
    }
  });
});
