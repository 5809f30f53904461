// ONNX export: a model's graph and weights as one .onnx file that
// onnxruntime, PyTorch users' tools and this package's own reader load.
//
// Choices worth knowing:
// - Opset 17, IR version 8 (ONNX 1.12, whose checker knows opsets up to 17;
//   onnxruntime 1.12 and later run it). The reader of src/weights/onnx reads it back.
// - Batch norm stays as BatchNormalization nodes (running statistics, epsilon
//   1e-5) instead of being folded into the convolutions, so reading the file
//   back gives the same state, BN tensors included (num_batches_tracked, a
//   training counter, is not written and reads back as 0). The int8 QDQ form
//   (content.quantization, export/qdq) folds it: int8 weights are quantized
//   after folding, as the int8 engine quantizes them.
// - Dropout is not exported (the identity at inference); frozen stages and
//   norm_eval only matter when training.
// - The graph's H and W are fixed to the preprocessing's input size; only the
//   batch is dynamic ('N'). A classifier reads the last map through the
//   model's adaptive pool to 7x7: nothing at 224x224, an AveragePool when the
//   map is a multiple of 7, refused otherwise (see onnxLayers).
// - One ModelProto holds everything (protobuf's 2 GiB limit; VGG-19 with
//   1000 classes is about 575 MB), written in pieces without copying the weights.
//
// Layout: export/content (the input and its check), export/graph (the nodes),
// export/qdq (the int8 QDQ form of those nodes, with its weights),
// export/metadata (producer, doc strings, metadata_props), export/encode (the
// protobuf pieces). This file ties them together.
import { archName } from '../../../arch';
import type { NamedTensor } from '../../../binding';
import { withAtomicFile } from '../../../fs/atomic-file';
import { checkString } from '../../../validate';
import { resolveExportContent, type OnnxExportContent } from './content';
import { type OnnxInitializer, encodeModel } from './encode';
import { FEATURES_NAME, INPUT_NAME, LOGITS_NAME, type OnnxLayer, nodeProtos, onnxLayers, valueInfo } from './graph';
import { packageVersion } from '../../../fs/package';
import { PRODUCER_NAME, metadataProps, modelDocString } from './metadata';
import { qdqGraph } from './qdq';

export type { OnnxBackboneOptions, OnnxExportContent, OnnxPreprocessing, OnnxQuantization } from './content';
export { BATCH_DIM, FEATURES_NAME, INPUT_NAME, LOGITS_NAME, onnxLayers, type OnnxGraphSpec, type OnnxLayer } from './graph';
export { MAX_PROTO_BYTES, type OnnxInitializer } from './encode';
export { PRODUCER_NAME } from './metadata';
export { QDQ_DESCRIPTION, WEIGHT_QMAX, type FoldedConv, foldBatchNorm, quantizeBias, quantizeWeights, roundHalfEven } from './qdq';

/** The tensors the nodes read, in node order (each once): the state's float32 arrays themselves. */
function initializersOf(layers: readonly OnnxLayer[], state: readonly NamedTensor[]): OnnxInitializer[] {
  const byName = new Map(state.map((t) => [t.name, t]));
  return layers.flatMap((l) =>
    l.params.map((p) => {
      const t = byName.get(p)!;
      // resolveExportContent kept float32 tensors only.
      return { name: t.name, shape: t.shape, data: t.data as Float32Array };
    }),
  );
}

/** The default-domain opset of every exported file. */
export const EXPORT_OPSET = 17;
/** The IR version of every exported file (the one opset 17 came with, ONNX 1.12). */
export const EXPORT_IR_VERSION = 8;

/**
 * Writes a VGG as an ONNX model (a protobuf `ModelProto`, ONNX IR spec
 * version 8, default-domain opset 17; https://onnx.ai/onnx/repo-docs/IR.html
 * and the operator docs at https://onnx.ai/onnx/operators/) that
 * onnxruntime runs and `onnx.checker.check_model(m, full_check=True)` accepts.
 *
 * The graph computes what `model.forward()` does in eval mode:
 * - input `'input'`: float32 `[N, 3, H, W]`, N dynamic (dim_param `'N'`), H and W
 *   the preprocessing's input size; RGB normalised as `(pixel - mean) / std`
 *   with pixels on 0..255;
 * - per convolution `Conv` (3x3, stride 1, pads = dilation, 1 by default),
 *   `BatchNormalization` (BN models; eval, epsilon 1e-5), `Relu`; a
 *   `MaxPool` (2x2, stride 2, ceil_mode as the model's) closing each stage
 *   (not the last with `withLastPool: false`);
 * - with a classifier: `AveragePool` only when the last map is a multiple of
 *   7 larger than 7x7 (the model's adaptive pool), `Flatten`, then `Gemm`
 *   (transB=1) / `Relu` / `Gemm` / `Relu` / `Gemm` to output `'logits'`:
 *   float32 `[N, numClasses]`, raw scores before softmax (Dropout omitted);
 * - without one (numClasses 0): output `'features'`, float32 `[N, 512, h, w]`,
 *   the last stage's map.
 *
 * Nodes are named after the modules ('features.0.conv', 'features.0.bn',
 * 'features.0.activate', 'features.1', 'avgpool', 'flatten', 'classifier.0'),
 * each node's output tensor after its node; initializers carry the canonical
 * state names ('features.0.conv.weight') as float32 raw_data, little-endian.
 * producer_name is 'vgg-native', producer_version the package's version.
 * metadata_props, each value JSON-encoded: `arch` ("vgg16_bn"), `num_classes`,
 * `backbone` ({ ceil_mode, with_last_pool, dilations }), `input_name`,
 * `input_shape` (["N", 3, H, W]), `output_name`, `output_shape`, `input_size`
 * ([H, W]), `resize` ("short" | "squash"), `resize_short` (short side before
 * the crop, 'short' only), `interpolation`, `channel_order` ("RGB"),
 * `pixel_range` ([0, 255]: the scale mean and std apply to), `mean`, `std`,
 * and `labels` (string[]) when given.
 *
 * With `content.quantization` the graph is the int8 QDQ form
 * (QuantizeLinear / DequantizeLinear around float operators, as
 * onnxruntime's `quantize_static` writes it and fuses into QLinearConv;
 * https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html,
 * operators at https://onnx.ai/onnx/operators/onnx__QuantizeLinear.html):
 * - `input` -> QuantizeLinear (scale `activationScales[0]`, int8 zero point 0)
 *   -> DequantizeLinear, then per convolution k: `Conv` on the dequantized
 *   input, its weight the output of a DequantizeLinear (axis 0) of an INT8
 *   initializer `<weight>_quantized` (per output channel, symmetric:
 *   scale max|w'| / 127, values round_half_even(w' / scale) in [-127, 127]),
 *   its bias one of an INT32 `<bias>_quantized` at scale
 *   `activationScales[k] * weight scale` per channel (QLinearConv's bias);
 *   w' and b' are the weights with batch norm folded in (float64, then
 *   float32, as the native trunk folds), so there is no BatchNormalization;
 * - the Conv's output -> QuantizeLinear (scale `activationScales[k + 1]`,
 *   uint8 zero point 0) -> DequantizeLinear: the uint8 clamp at 0 is the
 *   ReLU (no Relu node); a stage's `MaxPool` runs on that and is followed by
 *   a QuantizeLinear / DequantizeLinear of the same scale;
 * - after the last one the float classifier (Flatten, Gemm, Relu, ...) as
 *   above, or the DequantizeLinear's output is `'features'`;
 * - metadata_props `quantization`: `{ format: 'QDQ', weights: 'int8
 *   per-channel symmetric', activations: 'int8 input / uint8 after ReLU,
 *   per-tensor, zero point 0', activation_scales }` (the float32 values written).
 *
 * Same input and output, opset and IR version. The package's reader reads
 * float graphs: it does not load this form back.
 *
 * The file is written atomically (a temporary next to it, renamed over it):
 * it appears whole or not at all. The weights are not copied: each tensor's
 * bytes go to the file from `content.state`, which must not change until the
 * promise settles.
 *
 * @param file - the .onnx path to write (replaced if it exists)
 * @param content - architecture, class count, backbone options, state, preprocessing, labels; see {@link OnnxExportContent}
 * @returns when the file is complete and flushed
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a malformed `file` or `content` member
 *   (e.g. an input side outside 32..16384, labels not one per class); the promise rejects
 * @throws {@link CheckpointError} 'STATE_MISMATCH' when `content.state` lacks a tensor, has an unknown one, or one of
 *   another shape or dtype than the architecture's; 'BAD_VALUE' when the model would exceed protobuf's 2 GiB
 *   (a classifier of about 98 000 classes or more), or, quantizing, when a convolution's weight holds NaN or an infinity
 * @throws {@link OnnxFormatError} 'UNSUPPORTED_OP' (node "AdaptiveAvgPool2d 'avgpool'") for a model with a
 *   classifier whose last map is neither 7x7 nor a multiple of 7 on both sides (e.g. input 256: 8x8), which
 *   no exact AveragePool expresses
 * @throws the file system's error (e.g. code 'ENOENT' when the folder does not exist) when the file cannot be written
 * @example
 * ```ts
 * // Inside the package (model.save('x.onnx') is the public door):
 * import { vgg } from '../src';
 * import { coreOf } from '../src/model';
 * import { writeOnnx } from '../src/weights/onnx/export';
 *
 * const model = await vgg('vgg11_bn', { numClasses: 10 });
 * await writeOnnx('vgg11_bn.onnx', {
 *   arch: model.spec, // { depth: 11, batchNorm: true }
 *   numClasses: model.numClasses,
 *   backbone: coreOf(model).backbone, // ceilMode, withLastPool, dilations
 *   state: await model.stateDict(),
 *   preprocessing: { inputSize: 224, resize: 'short' }, // ImageNet mean/std by default
 *   labels: ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9'],
 * });
 * // onnxruntime-node: (await InferenceSession.create('vgg11_bn.onnx')).run({ input }) resolves { logits } ([N, 10])
 * ```
 */
export async function writeOnnx(file: string, content: OnnxExportContent): Promise<void> {
  checkString('file', file);
  const c = resolveExportContent(file, content);
  const layers = onnxLayers({ arch: c.arch, numClasses: c.numClasses, backbone: c.backbone, inputSize: c.preprocessing.inputSize });
  const last = layers[layers.length - 1];
  const graph = c.quantization ? qdqGraph(c, layers, file) : { nodes: nodeProtos(layers), initializers: initializersOf(layers, c.state) };
  const encoded = encodeModel(
    {
      irVersion: EXPORT_IR_VERSION,
      producerName: PRODUCER_NAME,
      producerVersion: packageVersion(),
      docString: modelDocString(c, layers),
      opsetImport: [{ domain: '', version: EXPORT_OPSET }],
      metadataProps: metadataProps(c, layers),
    },
    {
      node: graph.nodes,
      name: archName(c.arch),
      docString: `${archName(c.arch)}${c.quantization ? ' (int8 QDQ)' : ''}: '${INPUT_NAME}' [N, 3, ${c.preprocessing.inputSize.join(', ')}] -> '${last.output}' [${last.outputShape.join(', ')}]`,
      input: [valueInfo(INPUT_NAME, ['N', 3, ...c.preprocessing.inputSize])],
      output: [valueInfo(c.numClasses > 0 ? LOGITS_NAME : FEATURES_NAME, last.outputShape)],
    },
    graph.initializers,
    file,
  );
  await withAtomicFile(file, (fh) => encoded.write(fh));
}
