// ONNX VGG reader against the oracle: fixtures built by PyTorch / onnx in
// Python (test/fixtures/make_onnx.py), which also dumps the canonical tensors
// the reader must produce. Large files (full classifiers) are made one at a
// time and deleted right after.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OnnxFormatError, type OnnxWeights, parseSynset, readOnnx } from '../src/weights/onnx';
import { type Depth, classifierKeys, convKeys, convSlots } from '../src/arch';
import { python, pythonCode, readF32, relError, tempDir } from './helpers/python';

const SCRIPT = path.join(__dirname, 'fixtures', 'make_onnx.py');

interface Expected {
  meta: { depth: Depth; batchNorm: boolean; numClasses: number; opset: number; exact: boolean; labels?: string[] | null };
  tensors: Array<{ name: string; shape: number[]; offset: number }>;
}

type Case = Record<string, unknown> & { name: string; kind: 'torch' | 'helper' | 'twoconv' };

async function make(dir: string, cases: Case[]): Promise<void> {
  await python(SCRIPT, [dir, JSON.stringify(cases)]);
}

/** Every tensor the reader gives equals the Python side's, under canonical names and in state_dict order. */
function expectTensors(w: OnnxWeights, base: string): Expected {
  const index = JSON.parse(fs.readFileSync(`${base}.expected.json`, 'utf8')) as Expected;
  const values = readF32(`${base}.expected.bin`);
  const m = index.meta;
  assert.deepEqual(w.arch, { depth: m.depth, batchNorm: m.batchNorm });
  assert.equal(w.numClasses, m.numClasses);
  assert.equal(w.opset, m.opset);
  const keys = convSlots(m.depth)
    .flatMap((s) => convKeys(s, m.batchNorm))
    .concat(m.numClasses > 0 ? classifierKeys() : []);
  assert.deepEqual(
    w.tensors.map((t) => t.name),
    keys,
  );
  const floats = w.tensors.filter((t) => !t.name.endsWith('.num_batches_tracked'));
  assert.deepEqual(
    floats.map((t) => t.name),
    index.tensors.map((t) => t.name),
  );
  floats.forEach((t, i) => {
    const e = index.tensors[i];
    assert.equal(t.tensor.kind, 'array');
    if (t.tensor.kind !== 'array') return;
    assert.ok(t.tensor.data instanceof Float32Array, `${t.name} is float32`);
    assert.deepEqual(t.tensor.shape, e.shape, `${t.name} shape`);
    const n = e.shape.reduce((a, b) => a * b, 1);
    const want = values.subarray(e.offset, e.offset + n);
    const got = t.tensor.data as Float32Array;
    assert.equal(got.length, n, `${t.name} length`);
    if (m.exact) {
      // A reader only copies, converts or transposes: bit-for-bit equal.
      const same = Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength));
      if (!same) {
        const k = got.findIndex((v, j) => !Object.is(v, want[j]));
        assert.fail(`${t.name}[${k}] = ${got[k]}, PyTorch/onnx says ${want[k]}`);
      }
    } else {
      assert.ok(relError(got, want) < 1e-5, `${t.name}: relative error ${relError(got, want)}`);
    }
  });
  for (const t of w.tensors.filter((x) => x.name.endsWith('.num_batches_tracked'))) {
    assert.equal(t.tensor.kind, 'array');
    if (t.tensor.kind === 'array') {
      assert.ok(t.tensor.data instanceof BigInt64Array);
      assert.deepEqual([...t.tensor.data], [0n]);
      assert.deepEqual(t.tensor.shape, []);
    }
  }
  return index;
}

async function rejectsFormat(input: string | Buffer, pattern: RegExp, code?: string, node?: string): Promise<void> {
  await assert.rejects(readOnnx(input), (err: unknown) => {
    assert.ok(err instanceof OnnxFormatError, `expected OnnxFormatError, got ${String(err)}`);
    assert.match(err.message, pattern);
    if (code) assert.equal(err.code, code);
    if (node) assert.equal(err.node, node);
    return true;
  });
}

/** Deterministic bytes (xorshift), so a failing hostile input can be reproduced. */
function randomBytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

describe('readOnnx', function () {
  const tmp = tempDir('vgg-native-onnx-');
  const dir = tmp.dir;
  const file = (name: string) => path.join(dir, name);
  after(() => tmp.cleanup());

  describe('small graphs (no classifier, so many opsets stay cheap)', function () {
    const torchCases: Case[] = [
      { name: 't_vgg11_o7', kind: 'torch', depth: 11, bn: false, classes: 0, opset: 7 },
      { name: 't_vgg11_o11', kind: 'torch', depth: 11, bn: false, classes: 0, opset: 11 },
      { name: 't_vgg11_o17', kind: 'torch', depth: 11, bn: false, classes: 0, opset: 17 },
      { name: 't_vgg11bn_o7_preserve', kind: 'torch', depth: 11, bn: true, classes: 0, opset: 7, bn_export: 'preserve' },
      { name: 't_vgg11bn_o11_preserve', kind: 'torch', depth: 11, bn: true, classes: 0, opset: 11, bn_export: 'preserve' },
      { name: 't_vgg11bn_o17_preserve', kind: 'torch', depth: 11, bn: true, classes: 0, opset: 17, bn_export: 'preserve' },
      { name: 't_vgg11bn_o11_fold', kind: 'torch', depth: 11, bn: true, classes: 0, opset: 11, bn_export: 'fold' },
      { name: 't_vgg13_o13', kind: 'torch', depth: 13, bn: false, classes: 0, opset: 13 },
      { name: 't_vgg16_o9', kind: 'torch', depth: 16, bn: false, classes: 0, opset: 9 },
      { name: 't_vgg19bn_o15_preserve', kind: 'torch', depth: 19, bn: true, classes: 0, opset: 15, bn_export: 'preserve' },
    ];
    const helperCases: Case[] = [
      { name: 'h_fp16', kind: 'helper', bn: true, dtype: 'float16', archive: 'deflated', synset_count: 3 },
      { name: 'h_f64', kind: 'helper', depth: 13, dtype: 'double' },
      { name: 'h_bf16', kind: 'helper', bn: true, dtype: 'bfloat16', opset: 13, ir: 7, inputs_include_initializers: false },
      { name: 'h_floatdata_eps', kind: 'helper', bn: true, float_data_small: true, eps: 1e-3, opset: 9, ir: 4, inputs_include_initializers: false },
      { name: 'h_nolastpool', kind: 'helper', last_pool: false },
      { name: 'h_external', kind: 'helper', opset: 11, ir: 6, external: true, inputs_include_initializers: false },
      { name: 'x_twoconv', kind: 'twoconv' },
      { name: 'x_stages', kind: 'helper', blocks: [2, 2, 3, 3], widths: [64, 128, 256, 512], expected: false },
      { name: 'x_width', kind: 'helper', widths: [32, 128, 256, 512, 512], expected: false },
      { name: 'x_missing', kind: 'helper', drop_init_conv: 3, check: false, expected: false },
      { name: 'x_sigmoid', kind: 'helper', insert_op_after_conv: 2, expected: false },
      { name: 'x_conv_attr', kind: 'helper', conv_extra_attr: { sparsity: 1 }, check: false, expected: false },
      { name: 'x_conv_valid', kind: 'helper', conv_extra_attr: { auto_pad: 'VALID' }, check: false, expected: false },
    ];
    before(async function () {
      await make(dir, [...torchCases, ...helperCases]);
    });

    for (const c of torchCases) {
      it(`${c.name}: torch.onnx.export of mmcls VGG-${c.depth}${c.bn ? ' BN' : ''} at opset ${c.opset}${c.bn_export ? ` (${c.bn_export})` : ''}`, async function () {
        const w = await readOnnx(file(`${c.name}.onnx`));
        expectTensors(w, file(c.name));
        assert.match(w.producer ?? '', /^pytorch/);
        assert.deepEqual(w.warnings, []);
        if (c.bn_export === 'fold') assert.equal(w.arch.batchNorm, false, 'folded BN reads as a VGG without BN');
        if (w.arch.batchNorm) assert.equal(w.bnEpsilon, 1e-5);
      });
    }

    it('reads FLOAT16 initializers (converted exactly) from a deflated .model archive; drops labels whose count disagrees', async function () {
      const w = await readOnnx(file('h_fp16.model'));
      expectTensors(w, file('h_fp16'));
      assert.equal(w.labels, undefined);
      assert.equal(w.warnings.length, 1);
      assert.match(w.warnings[0], /synset\.txt has 3 labels but the model has 0 classes/);
      expectTensors(await readOnnx(file('h_fp16.onnx')), file('h_fp16'));
    });

    it('reads DOUBLE and BFLOAT16 initializers', async function () {
      expectTensors(await readOnnx(file('h_f64.onnx')), file('h_f64'));
      expectTensors(await readOnnx(file('h_bf16.onnx')), file('h_bf16'));
    });

    it('reads float_data tensors; a BN epsilon of 1e-3 is folded into running_var (var + eps - 1e-5), not ignored', async function () {
      const w = await readOnnx(file('h_floatdata_eps.onnx'));
      expectTensors(w, file('h_floatdata_eps')); // make_onnx.py computes the folded running_var
      assert.equal(w.bnEpsilon, 1e-3);
      assert.deepEqual(w.warnings, []);
    });

    it('accepts a feature extractor without the last MaxPool (mmcls with_last_pool=False), with a warning', async function () {
      const w = await readOnnx(file('h_nolastpool.onnx'));
      expectTensors(w, file('h_nolastpool'));
      assert.match(w.warnings.join('\n'), /with_last_pool=False/);
    });

    it('reads tensors kept in an external data file next to the .onnx, and says why it cannot from a Buffer', async function () {
      expectTensors(await readOnnx(file('h_external.onnx')), file('h_external'));
      await rejectsFormat(fs.readFileSync(file('h_external.onnx')), /external file 'h_external\.data'.*pass the \.onnx file path/);
    });

    it('reads from a Buffer as from a path', async function () {
      const w = await readOnnx(fs.readFileSync(file('t_vgg11bn_o11_preserve.onnx')));
      expectTensors(w, file('t_vgg11bn_o11_preserve'));
    });

    it('rejects graphs that are not a VGG, naming what it found', async function () {
      await rejectsFormat(file('x_twoconv.onnx'), /x_twoconv\.onnx: not a VGG: found 2 convolutions in stages \[1,1\] — not a VGG-11\/13\/16\/19/);
      await rejectsFormat(file('x_stages.onnx'), /x_stages\.onnx: not a VGG: found 10 convolutions in stages \[2,2,3,3\] — not a VGG-11\/13\/16\/19/);
      await rejectsFormat(
        file('x_width.onnx'),
        /not a VGG-11: features\.0\.conv\.weight \(from 'vgg0_conv0_weight' of Conv node 'vgg0_conv0_fwd'\) should have shape \[64,3,3,3\] but has \[32,3,3,3\]/,
      );
    });

    it('rejects a missing initializer and an unsupported op in the trunk', async function () {
      await rejectsFormat(file('x_missing.onnx'), /missing initializer: Conv node 'vgg0_conv3_fwd' reads the weight from 'vgg0_conv3_weight'/);
      await rejectsFormat(file('x_sigmoid.onnx'), /unsupported op in the trunk: Sigmoid node 'vgg0_sigmoid0_fwd'/, 'UNSUPPORTED_OP');
    });

    it('refuses attributes it cannot honour or does not know, naming the node (code UNSUPPORTED_ATTRIBUTE)', async function () {
      await rejectsFormat(
        file('x_conv_attr.onnx'),
        /Conv node 'vgg0_conv0_fwd' has attribute 'sparsity', which the reader does not know/,
        'UNSUPPORTED_ATTRIBUTE',
        "Conv node 'vgg0_conv0_fwd'",
      );
      await rejectsFormat(
        file('x_conv_valid.onnx'),
        /Conv node 'vgg0_conv0_fwd' has .*auto_pad VALID; expected a 3x3 convolution with stride 1, padding 1/,
        'UNSUPPORTED_ATTRIBUTE',
        "Conv node 'vgg0_conv0_fwd'",
      );
    });

    it('rejects truncated files with OnnxFormatError, never a crash', async function () {
      const bytes = fs.readFileSync(file('t_vgg11_o7.onnx'));
      for (const n of [1, 2, 10, 100, 1000, 4096, 100_000, bytes.length >> 1, bytes.length - 1]) {
        await rejectsFormat(bytes.subarray(0, n), /<buffer>: /);
      }
    });
  });

  describe('hostile inputs', function () {
    this.timeout(20_000);

    it('rejects an empty file', async function () {
      fs.writeFileSync(file('empty.onnx'), '');
      await rejectsFormat(file('empty.onnx'), /empty\.onnx: not an ONNX file: it is empty/);
    });

    it('rejects random bytes, including ones that start like a zip', async function () {
      for (let seed = 1; seed <= 64; seed++) {
        const b = randomBytes(1 + ((seed * 7919) % 200_000), seed);
        await rejectsFormat(b, /^<buffer>: (not an ONNX file|not a readable zip|not a VGG)/);
      }
      const zipLike = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), randomBytes(5000, 99)]);
      await rejectsFormat(zipLike, /not a readable zip archive/);
    });

    it('rejects text and JSON files', async function () {
      await rejectsFormat(Buffer.from('{"not": "onnx"}\n'), /not an ONNX file/);
      await rejectsFormat(Buffer.from('hello world, this is not a model\n'.repeat(100)), /not an ONNX file/);
    });

    it('rejects a zip archive without an .onnx file', async function () {
      await pythonCode('import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], "w") as z: z.writestr("m/synset.txt", "n01440764 tench\\n")', [
        file('noonnx.model'),
      ]);
      await rejectsFormat(file('noonnx.model'), /noonnx\.model: expected one \.onnx file in the archive but found none/);
    });

    it('rejects wrong argument types with a TypeError and a missing file with ENOENT', async function () {
      await assert.rejects(readOnnx(42 as unknown as string), TypeError);
      await assert.rejects(readOnnx(file('nope.onnx')), { code: 'ENOENT' });
    });
  });

  describe('full classifiers (one large file at a time, deleted after)', function () {
    const run = async (c: Case, check: (w: OnnxWeights, e: Expected) => void, target = `${c.name}.onnx`) => {
      await make(dir, [c]);
      try {
        const w = await readOnnx(file(target));
        check(w, expectTensors(w, file(c.name)));
      } finally {
        for (const f of fs.readdirSync(dir)) if (f.startsWith(`${c.name}.`)) fs.rmSync(file(f));
      }
    };

    it('torch.onnx.export of mmcls VGG-11 with 10 classes at opset 17 (Reshape + Gemm)', async function () {
      await run({ name: 'f_vgg11_o17', kind: 'torch', depth: 11, bn: false, classes: 10, opset: 17 }, (w) => {
        assert.equal(w.numClasses, 10);
        assert.deepEqual(w.warnings, []);
      });
    });

    it('torch.onnx.export of mmcls VGG-11 BN with 10 classes at opset 11 (BN kept; Unsqueeze/Concat build the Reshape target)', async function () {
      await run({ name: 'f_vgg11bn_o11', kind: 'torch', depth: 11, bn: true, classes: 10, opset: 11, bn_export: 'preserve' }, (w) => {
        assert.deepEqual(w.arch, { depth: 11, batchNorm: true });
        assert.deepEqual(w.warnings, []);
      });
    });

    it('ONNX-zoo style VGG-16 BN, 1000 classes (IR 3, opset 7, initializers as inputs, Flatten + Gemm) in a .model archive with labels', async function () {
      const c: Case = {
        name: 'zoo_vgg16bn',
        kind: 'helper',
        depth: 16,
        bn: true,
        classes: 1000,
        opset: 7,
        ir: 3,
        archive: 'stored',
        producer: 'MXNet',
      };
      await run(
        c,
        (w, e) => {
          assert.deepEqual(w.arch, { depth: 16, batchNorm: true });
          assert.equal(w.numClasses, 1000);
          assert.equal(w.producer, 'MXNet 1.0');
          assert.ok(e.meta.labels);
          assert.deepEqual(w.labels, e.meta.labels);
          assert.equal(w.labels![0], 'class 0, synonym 0');
          assert.deepEqual(w.warnings, []);
        },
        'zoo_vgg16bn.model',
      );
    });

    it('Gemm transB=0, MatMul + Add (bias first), Gemm alpha/beta, Constant and Identity parameters, computed Reshape, trailing Softmax', async function () {
      const c: Case = {
        name: 'mixed_vgg11',
        kind: 'helper',
        depth: 11,
        classes: 10,
        opset: 11,
        ir: 6,
        inputs_include_initializers: false,
        dense: ['gemm_t0', 'matmul', 'gemm_scaled'],
        flatten: 'shape_reshape',
        conv0_nobias: true,
        constant_bias: true,
        identity_weight: true,
        identity_nodes: true,
        softmax: true,
      };
      await run(c, (w) => {
        assert.equal(w.numClasses, 10);
        assert.equal(w.warnings.length, 2);
        assert.match(w.warnings.join('\n'), /alpha=2, beta=0\.5; folded into the weight and bias/);
        assert.match(w.warnings.join('\n'), /ends with a softmax/);
      });
    });
  });

  describe('parseSynset', function () {
    it('drops the WordNet id, keeps the synonyms, skips blank lines, takes CRLF', function () {
      assert.deepEqual(parseSynset('n01440764 tench, Tinca tinca\r\nn01443537 goldfish, Carassius auratus\n\nplain label\n'), [
        'tench, Tinca tinca',
        'goldfish, Carassius auratus',
        'plain label',
      ]);
    });
  });
});
