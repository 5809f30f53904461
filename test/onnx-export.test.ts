// ONNX export (src/weights/onnx/export): the file a model writes runs in
// onnxruntime with our forward's numbers, passes onnx.checker's full check
// (strict shape inference) in Debian's python3-onnx, says what it is in
// metadata_props, and reads back through the package's own reader into the
// same weights. Oracles: onnxruntime-node, python onnx (checker, shape
// inference, protobuf decoding) and protobufjs's own encoder for the framing.
// Files go to a temp folder and are deleted; the two models with a
// classifier (500+ MB files) are made one at a time.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { type Architecture, ARCHITECTURES, STAGE_BLOCKS, parseArch, stateShapes } from '../src/arch';
import type { NamedTensor } from '../src/binding';
import { CheckpointError, OnnxFormatError, type Vgg, vgg } from '../src';
import { coreOf } from '../src/model';
import { readWeights } from '../src/weights';
import { EXPORT_IR_VERSION, EXPORT_OPSET, type OnnxExportContent, type OnnxPreprocessing, onnxLayers, writeOnnx } from '../src/weights/onnx/export';
import { pythonCode, relError, tempDir } from './helpers/python';
import { randomInput } from './helpers/reference';
import { perturb } from './helpers/perturb';

const PACKAGE_VERSION = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;

/** What python onnx says about a file (after check_model(full_check=True) passed). */
interface PyReport {
  ir: number;
  opset: Array<[string, number]>;
  producer: string;
  version: string;
  meta: Record<string, unknown>;
  inputs: Array<[string, Array<string | number>, number]>;
  outputs: Array<[string, Array<string | number>, number]>;
  nodes: Array<[string, string]>;
  initializers: Array<[string, number[], number, boolean]>;
  attrs: Record<string, Record<string, unknown>>;
  /** Shapes onnx's strict shape inference gives each node output. */
  shapes: Record<string, Array<string | number>>;
}

const PY_REPORT = `
import json, sys, onnx
from onnx import helper
def dims(v):
    return [d.dim_param if d.HasField('dim_param') else (d.dim_value if d.HasField('dim_value') else '?') for d in v.type.tensor_type.shape.dim]
out = []
for f in json.loads(sys.argv[1]):
    m = onnx.load(f)
    onnx.checker.check_model(m, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    g = m.graph
    out.append(dict(
        ir=m.ir_version, opset=[[o.domain, o.version] for o in m.opset_import],
        producer=m.producer_name, version=m.producer_version,
        meta={p.key: json.loads(p.value) for p in m.metadata_props},
        inputs=[[v.name, dims(v), v.type.tensor_type.elem_type] for v in g.input],
        outputs=[[v.name, dims(v), v.type.tensor_type.elem_type] for v in g.output],
        nodes=[[n.op_type, n.name] for n in g.node],
        initializers=[[t.name, list(t.dims), t.data_type, t.HasField('raw_data')] for t in g.initializer],
        attrs={n.name: {a.name: helper.get_attribute_value(a) for a in n.attribute} for n in g.node},
        shapes={v.name: dims(v) for v in list(inferred.graph.value_info) + list(inferred.graph.output)},
    ))
print(json.dumps(out))
`;

async function pyReports(files: string[]): Promise<PyReport[]> {
  return JSON.parse(await pythonCode(PY_REPORT, [JSON.stringify(files)])) as PyReport[];
}

function contentOf(model: Vgg, state: NamedTensor[], preprocessing: OnnxPreprocessing, labels?: string[]): OnnxExportContent {
  return { arch: model.spec, numClasses: model.numClasses, backbone: coreOf(model).backbone, state, preprocessing, ...(labels ? { labels } : {}) };
}

async function ortRun(file: string, x: { data: Float32Array; shape: number[] }): Promise<{ name: string; data: Float32Array; dims: number[] }> {
  const session = await ort.InferenceSession.create(file);
  try {
    assert.deepEqual(session.inputNames, ['input']);
    const out = await session.run({ input: new ort.Tensor('float32', x.data, x.shape) });
    const name = session.outputNames[0];
    return { name, data: out[name].data as Float32Array, dims: [...out[name].dims] };
  } finally {
    await session.release();
  }
}

/** onnxruntime's output for `x` against our forward's. */
async function expectOrtMatches(model: Vgg, file: string, x: { data: Float32Array; shape: number[] }, output: string): Promise<Float32Array> {
  const ref = await model.forward(x);
  const got = await ortRun(file, x);
  assert.equal(got.name, output);
  assert.deepEqual(got.dims, ref.shape);
  const err = relError(got.data, ref.data);
  assert.ok(err < 1e-4, `${file}: onnxruntime vs forward: relative error ${err}`);
  return got.data;
}

/** Reads the file back with the package's reader: the same architecture and, bit for bit, the same float tensors. */
async function expectRoundTrip(file: string, state: NamedTensor[], numClasses: number, arch: Architecture, ceilMode: boolean): Promise<void> {
  const w = await readWeights(file);
  assert.equal(w.format, 'onnx');
  assert.deepEqual(w.arch, parseArch(arch));
  assert.equal(w.numClasses, numClasses);
  assert.equal(w.ceilMode, ceilMode);
  assert.deepEqual(
    w.warnings.filter((m) => !/with_last_pool/.test(m)),
    [],
  );
  const floats = state.filter((t) => t.dtype === 'float32');
  assert.deepEqual(
    [...w.tensors.keys()].filter((n) => !n.endsWith('num_batches_tracked')),
    floats.map((t) => t.name),
  );
  for (const t of floats) {
    const src = w.tensors.get(t.name)!;
    assert.equal(src.kind, 'array', t.name);
    if (src.kind !== 'array') continue;
    assert.deepEqual(src.shape, t.shape, t.name);
    const a = Buffer.from(src.data.buffer, src.data.byteOffset, src.data.byteLength);
    assert.ok(a.equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), `${t.name} differs after the round trip`);
  }
}

/** The op sequence of a VGG's forward, from the architecture table. */
function expectedOps(arch: Architecture, numClasses: number, withLastPool: boolean, avgpool: boolean): string[] {
  const spec = parseArch(arch);
  const blocks = STAGE_BLOCKS[spec.depth];
  const ops = blocks.flatMap((n, s) => [
    ...Array.from({ length: n }, () => (spec.batchNorm ? ['Conv', 'BatchNormalization', 'Relu'] : ['Conv', 'Relu'])).flat(),
    ...(s < blocks.length - 1 || withLastPool ? ['MaxPool'] : []),
  ]);
  if (numClasses === 0) return ops;
  return [...ops, ...(avgpool ? ['AveragePool'] : []), 'Flatten', 'Gemm', 'Relu', 'Gemm', 'Relu', 'Gemm'];
}

/** Checks what python onnx reads against what the file should say. */
function expectReport(
  r: PyReport,
  o: { arch: Architecture; numClasses: number; size: [number, number]; out: Array<string | number>; labels?: string[] },
): void {
  assert.equal(r.ir, EXPORT_IR_VERSION);
  assert.deepEqual(r.opset, [['', EXPORT_OPSET]]);
  assert.equal(r.producer, 'vgg-native');
  assert.equal(r.version, PACKAGE_VERSION);
  const output = o.numClasses > 0 ? 'logits' : 'features';
  assert.deepEqual(r.inputs, [['input', ['N', 3, ...o.size], 1]], 'one float input, batch dim_param N');
  assert.deepEqual(r.outputs, [[output, o.out, 1]]);
  assert.equal(r.meta.arch, o.arch);
  assert.equal(r.meta.num_classes, o.numClasses);
  assert.equal(r.meta.input_name, 'input');
  assert.equal(r.meta.output_name, output);
  assert.deepEqual(r.meta.input_size, o.size);
  assert.deepEqual(r.meta.mean, [123.675, 116.28, 103.53]);
  assert.deepEqual(r.meta.std, [58.395, 57.12, 57.375]);
  assert.deepEqual(r.meta.pixel_range, [0, 255]);
  assert.equal(r.meta.channel_order, 'RGB');
  assert.deepEqual(r.meta.labels, o.labels);
  assert.ok(
    r.initializers.every(([, , type, raw]) => type === 1 && raw),
    'float32 raw_data initializers',
  );
  assert.ok(!r.nodes.some(([op]) => op === 'Dropout'));
}

describe('ONNX export: onnxruntime runs our forward, onnx.checker passes, the reader reads it back', function () {
  this.timeout(600000);
  const { dir, cleanup } = tempDir('vgg-onnx-export-');
  after(cleanup);

  // Headless (numClasses 0) at small inputs: every variant, with ceil_mode and without the last pool on some.
  const HEADLESS: Array<{ arch: Architecture; size: [number, number]; ceilMode: boolean; withLastPool: boolean }> = ARCHITECTURES.map((arch, i) => ({
    arch,
    size: i % 3 === 1 ? [50, 38] : [32, 32],
    ceilMode: i % 3 === 1,
    withLastPool: i % 4 !== 3,
  }));

  it('all 8 architectures without classifier: onnxruntime = forward (batch 1 and 3), full_check, metadata, shapes, round trip', async () => {
    const files: string[] = [];
    const expected: Array<{
      arch: Architecture;
      out: Array<string | number>;
      shapes: Map<string, Array<number | string>>;
      ops: string[];
      h: (typeof HEADLESS)[number];
    }> = [];
    for (const [i, h] of HEADLESS.entries()) {
      const model = await vgg(h.arch, { numClasses: 0, seed: 10 + i, ceilMode: h.ceilMode, withLastPool: h.withLastPool });
      try {
        await perturb(model, 100 + i);
        const state = await model.stateDict();
        const file = path.join(dir, `${h.arch}-headless.onnx`);
        await writeOnnx(file, contentOf(model, state, { inputSize: h.size }));
        const ref = await expectOrtMatches(model, file, randomInput([3, 3, ...h.size], 7 + i), 'features');
        assert.ok(
          ref.some((v) => v !== 0),
          'a non-zero map',
        );
        await expectOrtMatches(model, file, randomInput([1, 3, ...h.size], 70 + i), 'features');
        await expectRoundTrip(file, state, 0, h.arch, h.ceilMode);
        const layers = onnxLayers({ arch: model.spec, numClasses: 0, backbone: coreOf(model).backbone, inputSize: h.size });
        const out = (await model.forward(randomInput([1, 3, ...h.size], 1))).shape.slice(1);
        expected.push({
          arch: h.arch,
          out: ['N', ...out],
          shapes: new Map(layers.map((l) => [l.output, l.outputShape])),
          ops: expectedOps(h.arch, 0, h.withLastPool, false),
          h,
        });
        files.push(file);
      } finally {
        model.dispose();
      }
    }
    const reports = await pyReports(files);
    reports.forEach((r, i) => {
      const e = expected[i];
      expectReport(r, { arch: e.arch, numClasses: 0, size: e.h.size, out: e.out });
      assert.deepEqual(
        r.nodes.map(([op]) => op),
        e.ops,
        `${e.arch} op sequence`,
      );
      assert.deepEqual(r.meta.backbone, { ceil_mode: e.h.ceilMode, with_last_pool: e.h.withLastPool, dilations: [1, 1, 1, 1, 1] });
      for (const [name, shape] of e.shapes) assert.deepEqual(r.shapes[name], shape, `${e.arch}: shape of ${name}`);
      const pools = r.nodes.filter(([op]) => op === 'MaxPool').map(([, n]) => r.attrs[n]);
      assert.ok(pools.every((a) => a.ceil_mode === (e.h.ceilMode ? 1 : 0)));
      if (parseArch(e.arch).batchNorm) {
        const bns = r.nodes.filter(([op]) => op === 'BatchNormalization').map(([, n]) => r.attrs[n]);
        assert.ok(bns.every((a) => Math.abs((a.epsilon as number) - 1e-5) < 1e-10 && a.training_mode === undefined));
      }
    });
  });

  it('the framing equals protobufjs encoding the decoded file, and a dilated trunk runs in onnxruntime', async () => {
    const model = await vgg('vgg11', { numClasses: 0, seed: 3, dilations: [1, 1, 2, 2, 3] });
    try {
      await perturb(model, 5);
      const file = path.join(dir, 'dilated.onnx');
      await writeOnnx(file, contentOf(model, await model.stateDict(), { inputSize: 64, resize: 'squash' }));
      await expectOrtMatches(model, file, randomInput([2, 3, 64, 64], 9), 'features');
      const bytes = fs.readFileSync(file);
      const again = Buffer.from(onnx.ModelProto.encode(onnx.ModelProto.decode(bytes)).finish());
      assert.ok(again.equals(bytes), 'one-shot protobufjs encoding gives the same bytes');
      const [r] = await pyReports([file]);
      const conv = r.attrs['features.10.conv'];
      assert.deepEqual(
        [conv.dilations, conv.pads],
        [
          [3, 3],
          [3, 3, 3, 3],
        ],
      );
      assert.equal(r.meta.resize, 'squash');
      assert.equal(r.meta.resize_short, undefined);
    } finally {
      model.dispose();
    }
  });

  it('vgg11 with a 5-class classifier at 224: onnxruntime = forward, metadata with labels, round trip; refusals', async () => {
    const model = await vgg('vgg11', { numClasses: 5, seed: 21 });
    const file = path.join(dir, 'vgg11-5.onnx');
    const labels = ['cat', 'dog', 'fox', 'owl', 'élan "quoted"'];
    try {
      await perturb(model, 22);
      const state = await model.stateDict();
      await writeOnnx(file, contentOf(model, state, { inputSize: 224 }, labels));
      const x = randomInput([2, 3, 224, 224], 23);
      const fromOrt = await expectOrtMatches(model, file, x, 'logits');
      const [r] = await pyReports([file]);
      expectReport(r, { arch: 'vgg11', numClasses: 5, size: [224, 224], out: ['N', 5], labels });
      assert.deepEqual(
        r.nodes.map(([op]) => op),
        expectedOps('vgg11', 5, true, false),
      );
      assert.deepEqual(r.nodes.slice(-6), [
        ['Flatten', 'flatten'],
        ['Gemm', 'classifier.0'],
        ['Relu', 'classifier.1'],
        ['Gemm', 'classifier.3'],
        ['Relu', 'classifier.4'],
        ['Gemm', 'classifier.6'],
      ]);
      assert.ok(r.nodes.filter(([op]) => op === 'Gemm').every(([, n]) => r.attrs[n].transB === 1));
      assert.equal(r.meta.resize, 'short');
      assert.equal(r.meta.resize_short, 256);
      assert.equal(r.shapes.flatten[1], 25088);
      await expectRoundTrip(file, state, 5, 'vgg11', false);
      // The package's reader builds a model computing what onnxruntime computes.
      const back = await vgg({ weights: file });
      try {
        assert.equal(back.arch, 'vgg11');
        const err = relError((await back.forward(x)).data, fromOrt);
        assert.ok(err < 1e-4, `model read back vs onnxruntime: ${err}`);
      } finally {
        back.dispose();
      }
      fs.rmSync(file);

      // An 8x8 last map (input 256) has no exact AveragePool to 7x7: refused, nothing written.
      await assert.rejects(
        writeOnnx(file, contentOf(model, state, { inputSize: 256 })),
        (e: unknown) => e instanceof OnnxFormatError && e.code === 'UNSUPPORTED_OP' && /8x8/.test(e.message),
      );
      assert.deepEqual(
        fs.readdirSync(dir).filter((n) => n.startsWith('vgg11-5')),
        [],
      );
      // A state that does not fit the architecture.
      await assert.rejects(
        writeOnnx(file, { ...contentOf(model, state, {}), numClasses: 6 }),
        (e: unknown) => e instanceof CheckpointError && e.code === 'STATE_MISMATCH' && /classifier\.6\.weight/.test(e.message),
      );
      await assert.rejects(
        writeOnnx(file, contentOf(model, state.slice(1), {})),
        (e: unknown) => e instanceof CheckpointError && e.code === 'STATE_MISMATCH' && /missing: features\.0\.conv\.weight/.test(e.message),
      );
      await assert.rejects(writeOnnx(file, contentOf(model, state, { inputSize: 16 })), { code: 'ERR_OUT_OF_RANGE' });
      await assert.rejects(writeOnnx(file, contentOf(model, state, {}, ['a'])), { code: 'ERR_OUT_OF_RANGE' });
      assert.ok(!fs.existsSync(file));
    } finally {
      model.dispose();
    }
  });

  it('vgg13_bn without the last pool at 224 (14x14 map): the adaptive pool as a 2x2 AveragePool, onnxruntime = forward', async () => {
    const model = await vgg('vgg13_bn', { numClasses: 3, seed: 31, withLastPool: false });
    const file = path.join(dir, 'vgg13bn-3.onnx');
    try {
      await perturb(model, 32);
      const state = await model.stateDict();
      await writeOnnx(file, contentOf(model, state, { inputSize: 224, resize: 'squash' }));
      await expectOrtMatches(model, file, randomInput([2, 3, 224, 224], 33), 'logits');
      const [r] = await pyReports([file]);
      expectReport(r, { arch: 'vgg13_bn', numClasses: 3, size: [224, 224], out: ['N', 3] });
      assert.deepEqual(
        r.nodes.map(([op]) => op),
        expectedOps('vgg13_bn', 3, false, true),
      );
      assert.deepEqual(r.attrs.avgpool, { kernel_shape: [2, 2], strides: [2, 2] });
      assert.deepEqual(r.shapes.avgpool, ['N', 512, 7, 7]);
      // The reader takes AveragePool only as torchvision's 1x1 no-op: this graph is not one it maps.
      await assert.rejects(readWeights(file), (e: unknown) => e instanceof OnnxFormatError && e.code === 'UNSUPPORTED_OP');
    } finally {
      model.dispose();
      fs.rmSync(file, { force: true });
    }
  });

  it('a model past protobuf 2 GiB is refused before anything is written', async () => {
    // Zero-filled arrays: the kernel maps their pages only when touched, and nothing touches them.
    const spec = parseArch('vgg11');
    const numClasses = 120_000;
    const state: NamedTensor[] = stateShapes(spec, numClasses).map((e) => ({
      name: e.name,
      dtype: 'float32',
      shape: e.shape,
      data: new Float32Array(e.shape.reduce((a, b) => a * b, 1)),
    }));
    const file = path.join(dir, 'huge.onnx');
    await assert.rejects(
      writeOnnx(file, { arch: spec, numClasses, state, preprocessing: { inputSize: 224 } }),
      (e: unknown) => e instanceof CheckpointError && e.code === 'BAD_VALUE' && /2147483647/.test(e.message),
    );
    assert.ok(!fs.existsSync(file));
  });
});
