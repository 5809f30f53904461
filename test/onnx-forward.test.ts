// Issue 3, ONNX parity: a model built from an ONNX file computes what the
// ONNX graph computes. The oracle executes the graph node by node with
// torch.nn.functional (test/fixtures/onnx_execute.py), sharing no code with
// our reader. Files come from test/fixtures/make_onnx.py.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { vgg } from '../src';
import { FIXTURES, randomInput } from './helpers/reference';
import { python, readF32, relError, tempDir } from './helpers/python';

interface Case {
  name: string;
  kind: string;
  depth: number;
  bn: boolean;
  classes: number;
  opset: number;
  [k: string]: unknown;
}

const CASES: Array<{ c: Case; file: string; what: string; size?: number }> = [
  {
    c: { name: 'p_vgg11_o17', kind: 'torch', depth: 11, bn: false, classes: 10, opset: 17 },
    file: 'p_vgg11_o17.onnx',
    what: 'torch.onnx.export, opset 17',
  },
  {
    c: { name: 'p_vgg11bn_o11', kind: 'torch', depth: 11, bn: true, classes: 10, opset: 11, bn_export: 'preserve' },
    file: 'p_vgg11bn_o11.onnx',
    what: 'torch.onnx.export with BatchNormalization, opset 11',
  },
  {
    c: { name: 'p_vgg13bn_fold', kind: 'torch', depth: 13, bn: true, classes: 10, opset: 13, bn_export: 'fold' },
    file: 'p_vgg13bn_fold.onnx',
    what: 'torch.onnx.export with BN folded into the convs, opset 13',
  },
  {
    c: { name: 'p_zoo_vgg16bn', kind: 'helper', depth: 16, bn: true, classes: 1000, opset: 7, ir: 3, archive: 'stored', producer: 'MXNet' },
    file: 'p_zoo_vgg16bn.model',
    what: "the zoo's MXNet style (IR 3, opset 7, initializers as inputs, Flatten + Gemm) in a .model archive",
  },
  // Attributes that change the numbers are honoured (issue 8): BatchNormalization epsilon 1e-3,
  // whatever `spatial` says (per-channel parameters make 0 and 1 the same computation).
  {
    c: { name: 'p_bn_eps_spatial1', kind: 'helper', depth: 11, bn: true, classes: 0, opset: 7, eps: 1e-3, spatial: 1 },
    file: 'p_bn_eps_spatial1.onnx',
    what: 'BatchNormalization epsilon 1e-3, spatial 1',
  },
  {
    c: { name: 'p_bn_eps_spatial0', kind: 'helper', depth: 11, bn: true, classes: 0, opset: 7, eps: 1e-3, spatial: 0 },
    file: 'p_bn_eps_spatial0.onnx',
    what: 'BatchNormalization epsilon 1e-3, spatial 0',
  },
  {
    c: { name: 'p_bn_eps_nospatial', kind: 'helper', depth: 11, bn: true, classes: 0, opset: 9, eps: 1e-3 },
    file: 'p_bn_eps_nospatial.onnx',
    what: 'BatchNormalization epsilon 1e-3, no spatial attribute (opset 9)',
  },
  {
    c: { name: 'p_ceil', kind: 'helper', depth: 11, bn: false, classes: 0, opset: 10, ceil_mode: true },
    file: 'p_ceil.onnx',
    what: 'MaxPool ceil_mode 1 on a 230x230 input (odd sizes round up)',
    size: 230,
  },
  // Graphs as exporters write them: the last MaxPool's [N,512,7,7] fed straight to the first dense layer.
  {
    c: { name: 'p_gemm_noflatten', kind: 'helper', depth: 11, bn: false, classes: 10, opset: 8, flatten: 'none', check: false },
    file: 'p_gemm_noflatten.onnx',
    what: "Gemm fed the 4-D MaxPool output, no Flatten (the zoo's opset-8 vgg19 style)",
  },
  {
    c: {
      name: 'p_matmul_noflatten',
      kind: 'helper',
      depth: 11,
      bn: false,
      classes: 10,
      opset: 9,
      flatten: 'none',
      check: false,
      dense: ['matmul', 'gemm_t1', 'gemm_t1'],
    },
    file: 'p_matmul_noflatten.onnx',
    what: 'MatMul + Add fed the 4-D MaxPool output, no Flatten',
  },
];

describe('ONNX: our forward equals the ONNX graph executed by PyTorch (relative error < 1e-5)', () => {
  for (const { c, file, what, size = 224 } of CASES) {
    it(`${c.name}: ${what}`, async function () {
      this.timeout(300000);
      const { dir, cleanup } = tempDir();
      try {
        await python(path.join(FIXTURES, 'make_onnx.py'), [dir, JSON.stringify([c])]);
        // torch.onnx.export traced batch 1 (its Reshape keeps it), so the graph runs one image.
        const x = randomInput([1, 3, size, size], 17);
        fs.writeFileSync(path.join(dir, 'x.f32'), Buffer.from(x.data.buffer));
        await python(path.join(FIXTURES, 'onnx_execute.py'), [
          path.join(dir, file),
          path.join(dir, 'x.f32'),
          '1',
          path.join(dir, 'y.f32'),
          String(size),
          String(size),
        ]);
        const m = await vgg({ weights: path.join(dir, file) });
        try {
          assert.equal(m.numClasses, c.classes);
          assert.equal(m.spec.depth, c.depth);
          const ours = await m.forward(x);
          const want = readF32(path.join(dir, 'y.f32'));
          assert.equal(ours.data.length, want.length, `output shape [${ours.shape}]`);
          const err = relError(ours.data, want);
          assert.ok(err < 1e-5, `relative error ${err}`);
          assert.deepEqual(m.weightsInfo?.warnings, [], 'nothing left to warn about');
          if (file.endsWith('.model')) assert.equal(m.weightsInfo?.format, 'onnx-model');
        } finally {
          m.dispose();
        }
      } finally {
        cleanup();
      }
    });
  }
});
