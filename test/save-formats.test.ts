// model.save() in each format and layout (issue 22 items 1, 2, 4), read by
// independent readers: the safetensors format's own description in Python
// (test/fixtures/safetensors_reader.py), torchvision's VGG for the timm
// layout (timm's _filter_fn undone), onnxruntime-node for ONNX.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { vgg } from '../src';
import { FIXTURES, randomInput } from './helpers/reference';
import { pythonCode, readF32, relError, tempDir } from './helpers/python';

const READER = path.join(FIXTURES, 'safetensors_reader.py');

describe('model.save formats', function () {
  const { dir, cleanup } = tempDir();
  after(cleanup);

  it("'.safetensors' (mmcls layout by default): every tensor bit-exact for the format's reader, labels and pipeline in __metadata__, and read back", async () => {
    const model = await vgg('vgg11_bn', { numClasses: 0, seed: 3 });
    const file = path.join(dir, 'a.safetensors');
    try {
      await model.save(file, { meta: { epoch: 4 } });
      const py = JSON.parse(
        await pythonCode(
          `import sys, json, hashlib; sys.path.insert(0, ${JSON.stringify(FIXTURES)}); from safetensors_reader import read, raw_bytes\n` +
            `ts, meta, n = read(sys.argv[1]); print(json.dumps({'meta': meta, 'n': n, 'ts': [[k, list(t.shape), hashlib.sha256(raw_bytes(t)).hexdigest()] for k, t in ts]}))`,
          [file],
        ),
      ) as { meta: Record<string, string>; n: number; ts: Array<[string, number[], string]> };
      const state = await model.stateDict();
      const { createHash } = await import('node:crypto');
      assert.deepEqual(
        py.ts,
        state.map((t) => [
          `backbone.${t.name}`,
          t.shape,
          createHash('sha256')
            .update(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))
            .digest('hex'),
        ]),
      );
      assert.equal(py.n % 8, 0);
      assert.equal(py.meta.format, 'pt');
      assert.equal(py.meta.arch, 'vgg11_bn');
      assert.equal(py.meta.epoch, '4');
      assert.ok(
        fs.readdirSync(dir).every((f) => !f.includes('.tmp')),
        'no temp file left',
      );
      void READER;
    } finally {
      model.dispose();
    }
    const back = await vgg({ weights: file });
    try {
      assert.equal(back.arch, 'vgg11_bn');
      assert.equal(back.weightsInfo?.format, 'safetensors');
      assert.equal(back.weightsInfo?.layout, 'mmcls');
    } finally {
      back.dispose();
    }
  });

  it("layout 'timm': torchvision's VGG loads it after timm's reshapes are undone and gives our logits within 1e-5", async () => {
    const model = await vgg('vgg11', { numClasses: 5, seed: 4, labels: ['a', 'b', 'c', 'd', 'e'] });
    const file = path.join(dir, 't.safetensors');
    const x = randomInput([2, 3, 224, 224], 9);
    try {
      await model.save(file, { layout: 'timm' });
      const ours = await model.forward(x);
      fs.writeFileSync(path.join(dir, 'x.f32'), Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength));
      await pythonCode(
        `import sys, json, numpy as np, torch, torchvision; sys.path.insert(0, ${JSON.stringify(FIXTURES)}); from safetensors_reader import read\n` +
          `ts, meta, n = read(sys.argv[1])\n` +
          `names = {'pre_logits.fc1': 'classifier.0', 'pre_logits.fc2': 'classifier.3', 'head.fc': 'classifier.6'}\n` +
          `sd = {}\n` +
          `for k, t in ts:\n` +
          `    mod, leaf = k.rsplit('.', 1)\n` +
          `    sd[names.get(mod, mod) + '.' + leaf] = t.reshape(t.shape[0], -1) if mod.startswith('pre_logits') and leaf == 'weight' else t\n` +
          `assert [k for k, _ in ts if k.startswith('pre_logits.fc1.weight')] and dict(ts)['pre_logits.fc1.weight'].shape == (4096, 512, 7, 7)\n` +
          `assert dict(ts)['pre_logits.fc2.weight'].shape == (4096, 4096, 1, 1)\n` +
          `assert json.loads(meta['labels']) == ['a', 'b', 'c', 'd', 'e']\n` +
          `m = torchvision.models.vgg11(num_classes=5).eval(); m.load_state_dict(sd, strict=True)\n` +
          `x = torch.from_numpy(np.fromfile(sys.argv[2], dtype=np.float32).reshape(2, 3, 224, 224))\n` +
          `with torch.no_grad(): m(x).numpy().tofile(sys.argv[3])`,
        [file, path.join(dir, 'x.f32'), path.join(dir, 'y.f32')],
      );
      const err = relError(ours.data, readF32(path.join(dir, 'y.f32')));
      assert.ok(err < 1e-5, `relative error ${err}`);
    } finally {
      model.dispose();
    }
    const back = await vgg({ weights: file });
    try {
      assert.deepEqual([back.weightsInfo?.layout, back.labels], ['timm', ['a', 'b', 'c', 'd', 'e']]);
      // The same model through ONNX: labels come back from metadata_props, weights bit-exact.
      const onnxFile = path.join(dir, 't.onnx');
      await back.save(onnxFile);
      fs.rmSync(file);
      const again = await vgg({ weights: onnxFile });
      try {
        assert.deepEqual([again.weightsInfo?.format, again.labels], ['onnx', ['a', 'b', 'c', 'd', 'e']]);
        const [a, b] = [await back.stateDict(), await again.stateDict()];
        for (let i = 0; i < a.length; i++) {
          if (a[i].dtype !== 'float32') continue;
          assert.equal(a[i].name, b[i].name);
          assert.ok(
            Buffer.from(a[i].data.buffer, a[i].data.byteOffset, a[i].data.byteLength).equals(
              Buffer.from(b[i].data.buffer, b[i].data.byteOffset, b[i].data.byteLength),
            ),
            a[i].name,
          );
        }
      } finally {
        again.dispose();
      }
      fs.rmSync(onnxFile);
    } finally {
      back.dispose();
    }
  });

  it("'.onnx': onnxruntime-node runs what model.save wrote, within 1e-4 of our forward; a layout is refused", async () => {
    const model = await vgg('vgg13', { numClasses: 0, seed: 5 });
    const file = path.join(dir, 'm.onnx');
    try {
      await model.save(file);
      const x = randomInput([2, 3, 224, 224], 11);
      const ours = await model.forward(x);
      const session = await ort.InferenceSession.create(file);
      const out = await session.run({ input: new ort.Tensor('float32', x.data, x.shape) });
      const theirs = out.features.data as Float32Array;
      const err = relError(theirs, ours.data);
      assert.ok(err < 1e-4, `relative error ${err}`);
      await assert.rejects(model.save(file, { layout: 'timm' }), { code: 'ERR_OUT_OF_RANGE' });
      await assert.rejects(model.save(file, { format: 'keras' as never }), { code: 'ERR_OUT_OF_RANGE' });
    } finally {
      model.dispose();
    }
  });
});
