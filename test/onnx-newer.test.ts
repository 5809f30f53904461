// ONNX VGG files as newer exporters and tools write them: opsets 18-20,
// Reshape targets computed by Shape subgraphs or with allowzero, MatMul + Add
// heads, Constant-node weights, external data in subfolders, local functions,
// float16 models with Casts, nodes out of order. Files come from
// test/fixtures/onnx_newer/ (onnx.helper, torch 1.13, and the torch 2.x wheel
// when present). Two oracles: the canonical tensors' sha256 computed by numpy
// from the arrays the file was built from (bit-exact), and onnxruntime-node
// running the same file (or its float32 twin for a float16 model): our
// model's outputs must match within 1e-5 relative.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { vgg } from '../src';
import { OnnxFormatError, readOnnx } from '../src/weights/onnx';
import { castValues } from '../src/weights/onnx/cast';
import { randomInput } from './helpers/reference';
import { python, readF32, relError, tempDir } from './helpers/python';
import { torch2Python } from './helpers/torch2';

const FIXTURES = path.join(__dirname, 'fixtures', 'onnx_newer');
const DT = onnx.TensorProto.DataType;

interface Expected {
  meta: { depth: number; batchNorm: boolean; numClasses: number; opset: number; ort: string };
  tensors: Array<{ name: string; shape: number[]; sha256: string }>;
}

type Case = Record<string, unknown> & { name: string };

/** Canonical tensors equal, bit for bit, what numpy hashed. */
async function expectTensors(file: string): Promise<Expected> {
  const e = JSON.parse(fs.readFileSync(file.replace(/\.onnx$/, '.expected.json'), 'utf8')) as Expected;
  const w = await readOnnx(file);
  assert.deepEqual(w.arch, { depth: e.meta.depth, batchNorm: e.meta.batchNorm });
  assert.equal(w.numClasses, e.meta.numClasses);
  assert.equal(w.opset, e.meta.opset);
  assert.deepEqual(
    w.tensors.map((t) => t.name),
    e.tensors.map((t) => t.name),
  );
  w.tensors.forEach((t, i) => {
    assert.equal(t.tensor.kind, 'array');
    if (t.tensor.kind !== 'array') return;
    const d = t.tensor.data;
    assert.ok(d instanceof Float32Array, `${t.name} is float32`);
    assert.deepEqual(t.tensor.shape, e.tensors[i].shape, `${t.name} shape`);
    const hash = createHash('sha256')
      .update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength))
      .digest('hex');
    assert.equal(hash, e.tensors[i].sha256, `${t.name} differs from numpy's values`);
  });
  return e;
}

/** onnxruntime's output for x. */
async function ortForward(file: string, x: { data: Float32Array; shape: number[] }): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 2 });
  try {
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) });
    return out[session.outputNames[0]].data as Float32Array;
  } finally {
    await session.release();
  }
}

/** Weights bit-exact, then our forward against onnxruntime's on a batch of two; returns the load's warnings. */
async function expectOracle(file: string, size: number): Promise<string[]> {
  const e = await expectTensors(file);
  const x = randomInput([2, 3, size, size], 23);
  const want = await ortForward(path.join(path.dirname(file), e.meta.ort), x);
  const m = await vgg({ weights: file });
  try {
    const ours = await m.forward(x);
    assert.equal(ours.data.length, want.length, `output shape [${ours.shape}]`);
    const err = relError(ours.data, want);
    assert.ok(err < 1e-5, `relative error ${err}`);
    return m.weightsInfo?.warnings ?? [];
  } finally {
    m.dispose();
  }
}

async function rejects(file: string, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(readOnnx(file), (err: unknown) => {
    assert.ok(err instanceof OnnxFormatError, `expected OnnxFormatError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('ONNX files as newer exporters write them (oracles: numpy values, onnxruntime)', function () {
  this.timeout(300_000);
  const tmp = tempDir('vgg-native-onnx-newer-');
  const dir = tmp.dir;
  const file = (name: string, sub = false) => (sub ? path.join(dir, name, `${name}.onnx`) : path.join(dir, `${name}.onnx`));
  const make = (cases: Case[]) => python(path.join(FIXTURES, 'make_newer.py'), [dir, JSON.stringify(cases)]);
  after(() => tmp.cleanup());

  it('rounds values cast to FLOAT16 as numpy astype(float16), to BFLOAT16 as torch (ties to even, subnormals, overflow)', async function () {
    const code = [
      'import sys, numpy as np, torch',
      'rng = np.random.default_rng(3)',
      'v = (rng.standard_normal(20000) * 2.0 ** rng.integers(-30, 20, 20000)).astype(np.float32)',
      'edges = [0, -0.0, 2**-25, 3 * 2**-25, 2**-24, 2**-14, 2049, 2051, 65504, 65519.99, 65520, -70000, 1e-45, np.inf, -np.inf, np.nan]',
      'v = np.concatenate([np.array(edges, np.float32), v])',
      'h = v.astype(np.float16).astype(np.float32)',
      'b = torch.from_numpy(v).to(torch.bfloat16).float().numpy()',
      'open(sys.argv[1], "wb").write(v.tobytes() + h.tobytes() + b.tobytes())',
    ].join('\n');
    const out = path.join(dir, 'rounding.f32');
    await python('-c', [code, out]);
    const all = readF32(out);
    const n = all.length / 3;
    const [v, half, bf16] = [0, 1, 2].map((k) => all.subarray(k * n, (k + 1) * n));
    const same = (a: Float32Array, b: Float32Array, what: string) => {
      const k = a.findIndex((x, i) => !Object.is(x, b[i]));
      assert.equal(k, -1, `${what}: ${v[k]} gives ${a[k]}, expected ${b[k]}`);
    };
    same(castValues(v, DT.FLOAT16), half, 'FLOAT16');
    same(castValues(v, DT.BFLOAT16), bf16, 'BFLOAT16');
  });

  describe('the trunk alone (64x64 images)', function () {
    before(async function () {
      await make([
        { name: 'fp16', float16: true, opset: 18 },
        { name: 'functions', functions: 'nested', opset: 18 },
        { name: 'unordered', constants: true, shuffle: true, pool_attrs: true, opset: 19 },
        { name: 'external', external: 'split', opset: 20 },
        { name: 'opset21', opset: 21 },
        { name: 'x_pool_dilation', bad: 'pool_dilation2' },
        { name: 'x_cast_int', bad: 'cast_int' },
        { name: 'x_cycle', bad: 'cycle' },
        { name: 'x_double_write', bad: 'double_write' },
        { name: 'x_custom_domain', bad: 'custom_domain' },
        { name: 'x_recursive', functions: 'recursive' },
        ...['dotdot', 'absolute', 'symlink', 'past_end'].map((how) => ({ name: `x_ext_${how}`, external: how })),
      ]);
    });

    it('float16 (onnxconverter-common form): FLOAT16 weights read as numpy astype(float32), Casts read as Identity, one warning', async function () {
      const warnings = await expectOracle(file('fp16'), 64);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /computes in FLOAT16 .* the model computes in float32/);
    });

    it('local functions, nested two deep, with attribute references and an attribute_proto default', async function () {
      assert.deepEqual(await expectOracle(file('functions'), 64), []);
    });

    it('opset 19: Constant-node weights, nodes out of topological order, MaxPool dilations [1,1] and storage_order 0', async function () {
      assert.deepEqual(await expectOracle(file('unordered'), 64), []);
    });

    it('opset 20: external data in two files, one in a subfolder, at offsets', async function () {
      assert.deepEqual(await expectOracle(file('external', true), 64), []);
    });

    it('opset 21 still loads with a warning (past the tested range)', async function () {
      const w = await readOnnx(file('opset21'));
      assert.match(w.warnings.join('\n'), /opset 21 is outside the tested range 7\.\.20/);
    });

    it('refuses what would change the numbers, naming the node', async function () {
      await rejects(file('x_pool_dilation'), 'UNSUPPORTED_ATTRIBUTE', /MaxPool node 'pool_\d+' has .*dilations \[2,2\]/);
      await rejects(file('x_cast_int'), 'UNSUPPORTED_ATTRIBUTE', /Cast node 'cast_\d+' casts the data to INT32/);
      await rejects(file('x_custom_domain'), 'UNSUPPORTED_OP', /Relu node 'relu_\d+' is in domain 'com\.example'/);
    });

    it('refuses broken graphs: a cycle, a tensor written twice, a function calling itself', async function () {
      await rejects(file('x_cycle'), 'NOT_VGG', /the graph has a cycle through Relu node 'cyc_a', Relu node 'cyc_b'/);
      await rejects(file('x_double_write'), 'NOT_VGG', /tensor '.*' is written by both .* and Identity node 'second_writer'/);
      await rejects(file('x_recursive'), 'NOT_VGG', /calls local functions nested more than 16 deep/);
    });

    it('refuses external data outside the model folder (.., absolute, symlink) or past its file end (EXTERNAL_DATA)', async function () {
      for (const how of ['dotdot', 'absolute', 'symlink']) {
        await rejects(file(`x_ext_${how}`, true), 'EXTERNAL_DATA', /points outside the model's folder/);
      }
      await rejects(file('x_ext_past_end', true), 'EXTERNAL_DATA', /'trunk_a\.bin' holds \d+ bytes but offset 0 and length \d+ were asked for/);
    });
  });

  describe('the classifier (224x224; weights shared through one external file)', function () {
    const accepted: Array<{ c: Case; what: string }> = [
      {
        c: { name: 'h_const', flatten: 'const_0m1', shuffle: true },
        what: 'Reshape to a Constant [0, -1] (allowzero 0), MatMul + Add, nodes shuffled',
      },
      {
        c: { name: 'h_init', flatten: 'init_m1', dense: ['gemm_t0', 'matmul', 'gemm_t0'], opset: 20 },
        what: 'Reshape to [-1, 25088] with allowzero 1, opset 20',
      },
      { c: { name: 'h_mul', flatten: 'shape_mul' }, what: 'Reshape to [N, C*H*W] gathered from Shape, Cast and multiplied' },
      { c: { name: 'h_slice', flatten: 'shape_slice', opset: 18 }, what: 'Reshape to Concat(Slice(Shape(x), 0, 1), [-1])' },
    ];
    const refused: Array<{ c: Case; code: string; pattern: RegExp }> = [
      {
        c: { name: 'x_allowzero', flatten: 'allowzero_zero' },
        code: 'UNSUPPORTED_ATTRIBUTE',
        pattern: /allowzero=1 and a 0 in its target \[0, -1\]/,
      },
      { c: { name: 'x_rank3', flatten: 'rank3' }, code: 'UNSUPPORTED_OP', pattern: /reshapes \[N, C, H, W\] to \[N, 512, -1\]; only the flatten/ },
      { c: { name: 'x_split', flatten: 'wrong_split' }, code: 'UNSUPPORTED_OP', pattern: /to \[-1, 512\]; only the flatten to \[N, C\*H\*W\]/ },
      { c: { name: 'x_input', flatten: 'graph_input' }, code: 'UNSUPPORTED_OP', pattern: /cannot compute \('target_shape' is a graph input/ },
      {
        c: { name: 'x_prod', flatten: 'reduceprod' },
        code: 'UNSUPPORTED_OP',
        pattern: /computed by ReduceProd node 'prod_\d+', which the reader does not follow/,
      },
    ];
    before(async function () {
      await make([...accepted, ...refused].map(({ c }) => ({ classes: 10, ...c })));
    });

    for (const { c, what } of accepted) {
      it(`${c.name}: ${what}`, async function () {
        assert.deepEqual(await expectOracle(file(c.name), 224), []);
      });
    }

    it('refuses Reshape targets that are not the flatten, or that it cannot compute', async function () {
      for (const { c, code, pattern } of refused) await rejects(file(c.name), code, pattern);
    });
  });

  describe('torch.onnx.export (TorchScript exporter)', function () {
    it('torch 1.13, opset 15, ConvModules exported as local functions (export_modules_as_functions)', async function () {
      await python(path.join(FIXTURES, 'torch_export.py'), [dir, 't_functions', '15', '0', '1']);
      assert.deepEqual(await expectOracle(file('t_functions'), 64), []);
    });

    it('torch 2.x, opset 20 (dynamo=False), dynamic batch: x.view(x.size(0), -1) as Shape/Gather/Unsqueeze/Concat', async function () {
      const py = torch2Python();
      if (!py) {
        console.log('      (skipped: no torch 2.x wheel in /opt/wheels or /opt/pypi-more/files)');
        this.skip();
      }
      await py(fs.readFileSync(path.join(FIXTURES, 'torch_export.py'), 'utf8'), [dir, 't2_o20', '20', '10', '0']);
      try {
        assert.deepEqual(await expectOracle(file('t2_o20'), 224), []);
      } finally {
        fs.rmSync(file('t2_o20'), { force: true });
      }
    });
  });
});
