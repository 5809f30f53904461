// Issue 3: checkpoints written by PyTorch load into our model and give
// PyTorch's logits; our saved .pth loads back into PyTorch.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ARCHITECTURES, vgg, type Architecture } from '../src';
import { FIXTURES, randomInput } from './helpers/reference';
import { python, pythonCode, readF32, relError, tempDir } from './helpers/python';

describe('weights: PyTorch checkpoints give PyTorch logits (relative error < 1e-5)', () => {
  for (const arch of ARCHITECTURES) {
    it(`${arch}: legacy, zip (mmcls meta, backbone. keys) and torchvision layouts`, async function () {
      this.timeout(600000);
      const { dir, cleanup } = tempDir();
      try {
        await python(path.join(FIXTURES, 'make_parity_checkpoints.py'), [dir, arch]);
        const info = JSON.parse(fs.readFileSync(path.join(dir, 'info.json'), 'utf8'));
        const x = { data: readF32(path.join(dir, 'input.f32')), shape: info.input_shape as number[] };
        const ref = readF32(path.join(dir, 'logits.f32'));
        for (const file of ['legacy.pth', 'zip.pth', 'torchvision.pth']) {
          const m = await vgg({ weights: path.join(dir, file) }); // the architecture is inferred
          try {
            assert.equal(m.arch, arch, file);
            assert.equal(m.numClasses, 1000);
            const out = await m.forward(x);
            const err = relError(out.data, ref);
            assert.ok(err < 1e-5, `${file}: relative error ${err}`);
            if (file !== 'torchvision.pth') assert.equal(m.labels?.[3], 'class 3', 'labels from meta.CLASSES');
            assert.equal(m.weightsInfo?.format, file === 'legacy.pth' ? 'pth-legacy' : 'pth-zip');
          } finally {
            m.dispose();
          }
        }
      } finally {
        cleanup();
      }
    });
  }
});

describe('weights: memory', () => {
  it('loading a full VGG-16 checkpoint peaks below 1.3x the file size in RSS above the baseline', async function () {
    this.timeout(600000);
    const { dir, cleanup } = tempDir();
    try {
      await python(path.join(FIXTURES, 'make_parity_checkpoints.py'), [dir, 'vgg16']);
      for (const file of ['zip.pth', 'legacy.pth']) {
        // A fresh process (bench/load-peak.js, on the built dist/) so VmHWM measures this load alone.
        const out = execFileSync(process.execPath, [path.join(__dirname, '..', 'bench', 'load-peak.js'), path.join(dir, file)], { encoding: 'utf8' });
        const r = JSON.parse(out);
        assert.equal(r.arch, 'vgg16');
        assert.ok(r.fileSize > 500e6, `a full-size checkpoint (${r.fileSize} bytes)`);
        assert.ok(
          r.above / r.fileSize < 1.3,
          `${file}: peak RSS ${(r.above / 2 ** 20).toFixed(0)} MiB above baseline for a ${(r.fileSize / 2 ** 20).toFixed(0)} MiB file`,
        );
      }
    } finally {
      cleanup();
    }
  });
});

describe('weights: errors and head replacement', () => {
  let dir: string;
  let cleanup: () => void;
  before(async function () {
    this.timeout(300000);
    ({ dir, cleanup } = tempDir());
    await python(path.join(FIXTURES, 'make_parity_checkpoints.py'), [dir, 'vgg11', '10']);
  });
  after(() => cleanup());

  it('an arch that contradicts the file is refused, naming both', async () => {
    await assert.rejects(vgg('vgg16', { weights: path.join(dir, 'zip.pth') }), /arch 'vgg16'.*holds a vgg11/);
  });
  it('a different numClasses re-initialises the head and says what was skipped', async () => {
    const m = await vgg('vgg11', { weights: path.join(dir, 'legacy.pth'), numClasses: 3 });
    try {
      assert.equal(m.numClasses, 3);
      assert.deepEqual(m.weightsInfo?.skipped.sort(), ['classifier.6.bias', 'classifier.6.weight']);
      const out = await m.forward(randomInput([1, 3, 224, 224]));
      assert.deepEqual(out.shape, [1, 3]);
    } finally {
      m.dispose();
    }
  });
  it('a missing file names the path', async () => {
    await assert.rejects(vgg({ weights: path.join(dir, 'nope.pth') }), /not found: .*nope\.pth/);
  });
  it("256x256 inputs: mmcls-layout weights are pooled to 7x7 as torchvision's VGG does (mmcls itself raises)", async function () {
    this.timeout(300000);
    const x = randomInput([1, 3, 256, 256], 5);
    fs.writeFileSync(path.join(dir, 'x256.f32'), Buffer.from(x.data.buffer));
    // Oracle: torchvision's VGG-11 (AdaptiveAvgPool2d(7) before the classifier) with the same weights.
    await pythonCode(
      `
import sys, numpy as np, torch, torchvision
d = sys.argv[1]
m = torchvision.models.vgg11(num_classes=10)
m.load_state_dict(torch.load(d + '/torchvision.pth', weights_only=True))
m.eval()
x = torch.from_numpy(np.fromfile(d + '/x256.f32', dtype=np.float32).reshape(1, 3, 256, 256))
with torch.no_grad():
    m(x).numpy().astype(np.float32).tofile(d + '/y256.f32')
`,
      [dir],
    );
    const m = await vgg({ weights: path.join(dir, 'zip.pth') });
    try {
      assert.equal(m.weightsInfo?.layout, 'mmcls');
      const err = relError((await m.forward(x)).data, readF32(path.join(dir, 'y256.f32')));
      assert.ok(err < 1e-5, `relative error ${err}`);
    } finally {
      m.dispose();
    }
  });
});

describe('model.save() round-trips through PyTorch', () => {
  for (const [arch, layout] of [
    ['vgg11_bn', 'mmcls'],
    ['vgg11_bn', 'torchvision'],
    ['vgg13', 'torchvision'],
  ] as Array<[Architecture, 'mmcls' | 'torchvision']>) {
    it(`${arch} in ${layout} layout: torch.load(weights_only=True), load_state_dict, same logits`, async function () {
      this.timeout(300000);
      const { dir, cleanup } = tempDir();
      const m = await vgg(arch, { numClasses: 5, seed: 4, labels: ['a', 'b', 'c', 'd', 'e'] });
      try {
        const file = path.join(dir, 'saved.pth');
        await m.save(file, { layout });
        assert.deepEqual(fs.readdirSync(dir), ['saved.pth'], 'no temp file left behind');
        const x = randomInput([1, 3, 224, 224], 21);
        fs.writeFileSync(path.join(dir, 'input.f32'), Buffer.from(x.data.buffer));
        const ours = await m.forward(x);
        await python(path.join(FIXTURES, 'load_saved.py'), [file, arch, layout, '5', dir]);
        const ref = readF32(path.join(dir, 'logits.f32'));
        assert.ok(relError(ours.data, ref) < 1e-5);
        if (layout === 'mmcls') {
          const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
          assert.equal(meta.arch, arch);
          assert.deepEqual(meta.CLASSES, ['a', 'b', 'c', 'd', 'e']);
        }
        // and back into us
        const again = await vgg({ weights: file });
        try {
          assert.equal(again.arch, arch);
          assert.ok(relError((await again.forward(x)).data, ref) < 1e-5);
        } finally {
          again.dispose();
        }
      } finally {
        m.dispose();
        cleanup();
      }
    });
  }
});
