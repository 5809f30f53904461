// timm's VGG layout (issue 22 item 2): a timm-layout model.safetensors
// (torchvision's weights through timm's _filter_fn, test/fixtures/make_timm.py)
// loads with vgg({ weights }), the architecture read from the file, and its
// logits match torchvision's forward with the same weights (the oracle).
// Each file is 0.5 GB: two variants here; VGG_TEST_ALL_VARIANTS=1 runs all eight.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { vgg } from '../src';
import { ARCHITECTURES } from '../src/arch';
import { FIXTURES } from './helpers/reference';
import { python, readF32, relError, tempDir } from './helpers/python';

const VARIANTS = process.env.VGG_TEST_ALL_VARIANTS === '1' ? [...ARCHITECTURES] : ['vgg11_bn', 'vgg13'];

describe('timm layout', function () {
  for (const arch of VARIANTS) {
    it(`${arch}: timm's model.safetensors loads and matches torchvision's logits within 1e-5`, async () => {
      const { dir, cleanup } = tempDir();
      try {
        await python(path.join(FIXTURES, 'make_timm.py'), [arch, dir]);
        const model = await vgg({ weights: path.join(dir, 'model.safetensors') });
        try {
          assert.equal(model.arch, arch);
          assert.equal(model.numClasses, 1000);
          assert.equal(model.weightsInfo?.format, 'safetensors');
          assert.equal(model.weightsInfo?.layout, 'timm');
          const input = { data: readF32(path.join(dir, 'input.f32')), shape: [2, 3, 224, 224] };
          const logits = await model.forward(input);
          const err = relError(logits.data, readF32(path.join(dir, 'logits.f32')));
          assert.ok(err < 1e-5, `relative error ${err}`);
        } finally {
          model.dispose();
        }
      } finally {
        cleanup();
      }
    });
  }
});
