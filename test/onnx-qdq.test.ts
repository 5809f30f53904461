// The int8 QDQ form of the ONNX export (content.quantization): onnxruntime
// runs the file with its int8 kernels (the DQ -> Conv -> Q groups fused into
// QLinearConv) and gets what a PyTorch oracle of the same arithmetic gets
// (test/fixtures/qdq/qdq_reference.py: batch norm folded in float64, per-channel
// int8 weights, int32 biases at s_in * s_w, round-half-to-even fake
// quantization in float64), whose int8 and int32 tensors equal the file's bit
// for bit; onnx.checker's full check passes. The activation scales are
// calibrated by the oracle itself (min-max over a random batch), independent
// of any calibration code of the package.
//
// onnxruntime's QLinearConv accumulates in int32 and requantizes in float32,
// the oracle in float64: a value near a rounding tie may land one quantum
// apart, and that can carry into later layers. Hence a tolerance of 1% of the
// output's range rather than equality.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { type Vgg, vgg } from '../src';
import { convSlots } from '../src/arch';
import { coreOf } from '../src/model';
import type { Tensor } from '../src/tensor';
import { type OnnxExportContent, writeOnnx } from '../src/weights/onnx/export';
import { python, relError, tempDir } from './helpers/python';
import { FIXTURES, dumpState, randomInput } from './helpers/reference';
import { perturb } from './helpers/perturb';

const ORACLE = path.join(FIXTURES, 'qdq', 'qdq_reference.py');

/** What the oracle says about a file (after check_model(full_check=True) passed). */
interface QdqReport {
  /** Per compared initializer (int8 weights, int32 biases, their scales and zero points), how many bytes differ from the oracle's. */
  mismatches: Record<string, number>;
  compared: Record<string, number>;
  init_types: Record<string, string>;
  /** `axis` of each QuantizeLinear / DequantizeLinear node ([] = none, per tensor). */
  axes: Record<string, number[]>;
  opset: Array<[string, number]>;
  meta_quantization: unknown;
  nodes: Array<[string, string]>;
  output_shape: number[];
  scales: number[];
  saturated_weights: number;
}

function writeF32(file: string, t: Tensor): void {
  fs.writeFileSync(file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

/** Dumps the state and both batches, and lets the oracle calibrate: the activation scales, in convolution order then the last output. */
async function calibrate(model: Vgg, caseDir: string, calib: Tensor, input: Tensor): Promise<number[]> {
  fs.mkdirSync(caseDir);
  const tensors = await dumpState(model, caseDir);
  const b = coreOf(model).backbone;
  const spec = {
    depth: model.spec.depth,
    bn: model.spec.batchNorm,
    num_classes: model.numClasses > 0 ? model.numClasses : -1,
    ceil_mode: b.ceilMode,
    with_last_pool: b.withLastPool,
    dilations: b.dilations,
    calib_shape: calib.shape,
    input_shape: input.shape,
    tensors,
  };
  fs.writeFileSync(path.join(caseDir, 'spec.json'), JSON.stringify(spec));
  writeF32(path.join(caseDir, 'calib.f32'), calib);
  writeF32(path.join(caseDir, 'input.f32'), input);
  await python(ORACLE, ['calibrate', caseDir]);
  return JSON.parse(fs.readFileSync(path.join(caseDir, 'scales.json'), 'utf8')) as number[];
}

/** The oracle's check of the file and its reference output (float64) for the input. */
async function oracle(caseDir: string, file: string): Promise<{ report: QdqReport; ref: Float64Array }> {
  const report = JSON.parse(await python(ORACLE, ['check', caseDir, file])) as QdqReport;
  const buf = fs.readFileSync(path.join(caseDir, 'ref.f64'));
  return { report, ref: new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8).slice() };
}

async function ortRun(file: string, x: Tensor, options: ort.InferenceSession.SessionOptions = {}): Promise<{ data: Float32Array; dims: number[] }> {
  const session = await ort.InferenceSession.create(file, options);
  try {
    const out = await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape) });
    const name = session.outputNames[0];
    return { data: out[name].data as Float32Array, dims: [...out[name].dims] };
  } finally {
    await session.release();
  }
}

/** Op types of the graph onnxruntime optimised (level 'extended': its QDQ fusions, without the hardware-specific layout changes), with counts. */
async function optimisedOps(file: string, x: Tensor, out: string): Promise<Record<string, number>> {
  await ortRun(file, x, { graphOptimizationLevel: 'extended', optimizedModelFilePath: out });
  const m = onnx.ModelProto.decode(fs.readFileSync(out));
  const ops: Record<string, number> = {};
  for (const n of m.graph?.node ?? []) ops[n.opType ?? '?'] = (ops[n.opType ?? '?'] ?? 0) + 1;
  return ops;
}

function contentOf(model: Vgg, state: OnnxExportContent['state'], inputSize: number, activationScales?: readonly number[]): OnnxExportContent {
  return {
    arch: model.spec,
    numClasses: model.numClasses,
    backbone: coreOf(model).backbone,
    state,
    preprocessing: { inputSize },
    ...(activationScales ? { quantization: { activationScales } } : {}),
  };
}

/** The file's structure: no BN, no Relu in the trunk, a Q/DQ pair per activation, INT8 weights and INT32 biases, all bytes equal to the oracle's. */
function expectStructure(r: QdqReport, model: Vgg, scales: number[], what: string): void {
  const convs = convSlots(model.spec.depth).length;
  assert.equal(scales.length, convs + 1);
  assert.deepEqual(r.opset, [['', 17]]);
  const count = (op: string) => r.nodes.filter(([o]) => o === op).length;
  const pools = count('MaxPool');
  assert.equal(count('Conv'), convs, what);
  assert.equal(count('BatchNormalization'), 0, `${what}: batch norm folded`);
  assert.equal(r.nodes.filter(([o, n]) => o === 'Relu' && n.startsWith('features.')).length, 0, `${what}: the ReLU is the uint8 clamp`);
  assert.equal(count('QuantizeLinear'), 1 + convs + pools, what);
  assert.equal(count('DequantizeLinear'), 1 + convs + pools + 2 * convs, what);
  for (const [name, axis] of Object.entries(r.axes)) assert.deepEqual(axis, /\.conv\.(weight|bias)_DequantizeLinear$/.test(name) ? [0] : [], name);
  for (const [name, type] of Object.entries(r.init_types)) {
    const want = name.endsWith('weight_quantized')
      ? 'INT8'
      : name.endsWith('bias_quantized') || name.endsWith('bias_zero_point')
        ? 'INT32'
        : name.endsWith('weight_zero_point') || name === 'input_zero_point'
          ? 'INT8'
          : name.endsWith('_zero_point')
            ? 'UINT8'
            : 'FLOAT';
    assert.equal(type, want, `${what}: type of ${name}`);
  }
  const compared = Object.keys(r.compared);
  assert.equal(compared.length, 6 * convs, what);
  const differing = Object.entries(r.mismatches).filter(([, n]) => n > 0);
  assert.deepEqual(differing, [], `${what}: int8 weights, int32 biases and their scales as the oracle computes them, bit for bit`);
  assert.deepEqual(r.meta_quantization, {
    format: 'QDQ',
    weights: 'int8 per-channel symmetric',
    activations: 'int8 input / uint8 after ReLU, per-tensor, zero point 0',
    activation_scales: scales.map((s) => Math.fround(s)),
  });
  assert.deepEqual(
    r.scales,
    scales.map((s) => Math.fround(s)),
  );
}

describe('ONNX export, int8 QDQ form: onnxruntime (fused QLinearConv) = a PyTorch oracle of the quantized arithmetic', function () {
  this.timeout(600000);
  const { dir, cleanup } = tempDir('vgg-onnx-qdq-');
  after(cleanup);

  for (const [i, arch] of (['vgg11', 'vgg11_bn'] as const).entries()) {
    it(`${arch} without classifier at 64x64: full_check, bytes = oracle's, QLinearConv fused, onnxruntime = oracle within 1% of the range`, async () => {
      const model = await vgg(arch, { numClasses: 0, seed: 40 + i });
      const caseDir = path.join(dir, arch);
      try {
        await perturb(model, 50 + i);
        const x = randomInput([3, 3, 64, 64], 60 + i);
        const scales = await calibrate(model, caseDir, randomInput([4, 3, 64, 64], 70 + i), x);
        const file = path.join(dir, `${arch}-qdq.onnx`);
        await writeOnnx(file, contentOf(model, await model.stateDict(), 64, scales));
        const { report, ref } = await oracle(caseDir, file);
        expectStructure(report, model, scales, arch);

        const got = await ortRun(file, x);
        assert.deepEqual(got.dims, report.output_shape);
        assert.deepEqual(got.dims, [3, 512, 2, 2]);
        // Both are whole multiples of the last scale: compare in quanta.
        const s = Math.fround(scales[scales.length - 1]);
        let maxQuanta = 0;
        let off = 0;
        for (let j = 0; j < ref.length; j++) {
          const q = Math.abs(got.data[j] - ref[j]) / s;
          maxQuanta = Math.max(maxQuanta, q);
          if (q > 0.5) off++;
        }
        const ofRange = maxQuanta / 255; // the range is 255 quanta
        const float = await model.forward(x);
        const quantError = relError(Float32Array.from(ref), float.data);
        console.log(
          `      ${arch} 64x64: onnxruntime vs oracle max ${maxQuanta.toFixed(2)} quanta (${(ofRange * 100).toFixed(3)}% of the range), ` +
            `${off}/${ref.length} values off; oracle vs float forward ${quantError.toExponential(2)}`,
        );
        assert.ok(ofRange < 1e-2, `${arch}: ${maxQuanta} quanta apart`);
        assert.ok(
          ref.some((v) => v > 0),
          'a non-zero map',
        );
        // Loosely: int8 stays near the float model (a gross error in the scheme would not).
        assert.ok(quantError < 0.2, `${arch}: the int8 arithmetic vs float: ${quantError}`);

        // One layer at a time, from onnxruntime's own previous output: what each int8 kernel does alone.
        await python(ORACLE, ['extract', caseDir, file]);
        for (let k = 0; k < scales.length - 1; k++) {
          const o = await ortRun(path.join(caseDir, `sub${k}.onnx`), x);
          fs.writeFileSync(path.join(caseDir, `sub${k}.f32`), Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength));
        }
        const steps = JSON.parse(await python(ORACLE, ['steps', caseDir, file])) as Array<{ off: number; max: number; n: number }>;
        console.log(`      ${arch} per layer alone (values off by a quantum / values): ${steps.map((t) => `${t.off}/${t.n}`).join(' ')}`);
        assert.equal(steps.length, scales.length - 1);
        for (const [k, t] of steps.entries()) {
          assert.ok(t.max <= 1 && t.off / t.n < 1e-3, `${arch}: convolution ${k} alone: ${t.off} of ${t.n} values off, by up to ${t.max} quanta`);
        }

        const ops = await optimisedOps(file, x, path.join(dir, `${arch}-opt.onnx`));
        console.log(`      ${arch}: onnxruntime ${ort.env.versions.common} optimised graph (level extended): ${JSON.stringify(ops)}`);
        assert.equal(ops.QLinearConv, convSlots(model.spec.depth).length, 'every Conv fused into a QLinearConv');
        assert.equal(ops.Conv, undefined);
      } finally {
        model.dispose();
      }
    });
  }

  it('vgg11 with a 5-class classifier at 224: the float classifier on the last DequantizeLinear, onnxruntime = oracle', async () => {
    const model = await vgg('vgg11', { numClasses: 5, seed: 81 });
    const caseDir = path.join(dir, 'vgg11-5');
    const file = path.join(dir, 'vgg11-5-qdq.onnx');
    try {
      await perturb(model, 82);
      const x = randomInput([2, 3, 224, 224], 83);
      const scales = await calibrate(model, caseDir, randomInput([2, 3, 224, 224], 84), x);
      await writeOnnx(file, contentOf(model, await model.stateDict(), 224, scales));
      const { report, ref } = await oracle(caseDir, file);
      expectStructure(report, model, scales, 'vgg11 + classifier');
      assert.deepEqual(
        report.nodes.slice(-8).map(([op, name]) => `${op} ${name}`),
        [
          'QuantizeLinear features.12_QuantizeLinear',
          'DequantizeLinear features.12_DequantizeLinear',
          'Flatten flatten',
          'Gemm classifier.0',
          'Relu classifier.1',
          'Gemm classifier.3',
          'Relu classifier.4',
          'Gemm classifier.6',
        ],
      );
      assert.ok(['classifier.0.weight', 'classifier.6.bias'].every((n) => report.init_types[n] === 'FLOAT'));
      fs.rmSync(path.join(caseDir), { recursive: true, force: true });
      const got = await ortRun(file, x);
      assert.deepEqual(got.dims, [2, 5]);
      const err = relError(got.data, Float32Array.from(ref));
      const quantError = relError(Float32Array.from(ref), (await model.forward(x)).data);
      console.log(
        `      vgg11 + 5 classes 224: onnxruntime vs oracle logits ${err.toExponential(2)} (of max |logit|); oracle vs float forward ${quantError.toExponential(2)}`,
      );
      assert.ok(err < 1e-2, `onnxruntime vs oracle: ${err}`);
      assert.ok(quantError < 0.2, `the int8 arithmetic vs float: ${quantError}`);
    } finally {
      model.dispose();
      fs.rmSync(file, { force: true });
    }
  });

  it('content.quantization is checked: one scale per convolution (plus, optionally, the last output), each a positive finite float32', async () => {
    const model = await vgg('vgg11', { numClasses: 0, seed: 91 });
    const file = path.join(dir, 'refused.onnx');
    try {
      const state = await model.stateDict();
      const good = Array.from({ length: 9 }, () => 0.05);
      const refused = async (activationScales: unknown, code: string, name: RegExp) => {
        const content = { ...contentOf(model, state, 32), quantization: { activationScales } } as unknown as OnnxExportContent;
        await assert.rejects(writeOnnx(file, content), (e: Error & { code?: string }) => e.code === code && name.test(e.message));
      };
      await refused(good.slice(2), 'ERR_OUT_OF_RANGE', /8 or 9 scales for vgg11 .* content\.quantization\.activationScales /);
      await refused([...good, 0.05], 'ERR_OUT_OF_RANGE', /content\.quantization\.activationScales /);
      await refused('0.05', 'ERR_INVALID_ARG_TYPE', /content\.quantization\.activationScales /);
      await refused(undefined, 'ERR_INVALID_ARG_TYPE', /content\.quantization\.activationScales /);
      for (const bad of [0, -0.1, Number.NaN, Number.POSITIVE_INFINITY, 1e-40, 1e39]) {
        await refused(
          good.map((s, j) => (j === 3 ? bad : s)),
          'ERR_OUT_OF_RANGE',
          /content\.quantization\.activationScales\[3\]/,
        );
      }
      await refused(
        good.map((s, j) => (j === 8 ? '0.1' : s)),
        'ERR_INVALID_ARG_TYPE',
        /content\.quantization\.activationScales\[8\]/,
      );
      await assert.rejects(writeOnnx(file, { ...contentOf(model, state, 32), quantization: 5 } as unknown as OnnxExportContent), {
        code: 'ERR_INVALID_ARG_TYPE',
      });
      assert.ok(!fs.existsSync(file));
    } finally {
      model.dispose();
    }
  });
});
