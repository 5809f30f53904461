// The exported graph, layer by layer: what the model's forward does
// (native/vgg_model.cc VggImpl::forward) as ONNX opset-17 nodes. Every name
// is derived from the canonical module paths (src/arch.ts), so nodes,
// activations and initializers are named as mmcls names the modules.
import { onnx } from 'onnx-proto';
import { type ArchSpec, POOLED_SIZE, STAGE_BLOCKS, STAGE_WIDTHS, classifierSlots, convSlots } from '../../../arch';
import { OnnxFormatError } from '../../errors';
import type { OnnxBackboneOptions } from './content';

/** Name of the graph input: float32 [N, 3, H, W], normalised RGB. */
export const INPUT_NAME = 'input';
/** Name of the graph output of a model with a classifier: float32 [N, numClasses], raw scores before softmax. */
export const LOGITS_NAME = 'logits';
/** Name of the graph output of a model without classifier (numClasses 0): float32 [N, 512, h, w], the last stage's map. */
export const FEATURES_NAME = 'features';
/** The symbolic batch dimension of the input and output. */
export const BATCH_DIM = 'N';
/** The model's BatchNorm2d epsilon (mmcls and torchvision; native/onednn_trunk.cc folds with the module's, the same). */
export const BN_EPSILON = 1e-5;

/** One node of the exported graph. */
export interface OnnxLayer {
  /** ONNX operator: 'Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'AveragePool', 'Flatten' or 'Gemm'. */
  op: string;
  /** Node name: the module path, e.g. 'features.0.conv', 'features.0.bn', 'features.0.activate', 'features.1' (MaxPool), 'avgpool', 'flatten', 'classifier.0'. */
  name: string;
  /** Canonical state names of the parameters it reads after the data input, e.g. ['features.0.conv.weight', 'features.0.conv.bias']. */
  params: string[];
  /** Its output tensor: the node name, except the last node's ('logits' or 'features'). */
  output: string;
  /** Shape of the output; 'N' is the batch. */
  outputShape: Array<number | 'N'>;
  /** Attributes, as ONNX names them. */
  attributes: Record<string, number | number[]>;
}

/** What fixes the graph's layers. */
export interface OnnxGraphSpec {
  /** Depth and batch norm. */
  arch: ArchSpec;
  /** Width of the logits; 0 = no classifier. */
  numClasses: number;
  /** ceilMode, withLastPool, dilations. */
  backbone: OnnxBackboneOptions;
  /** [H, W] of the input. */
  inputSize: readonly [number, number];
}

/** MaxPool2d(2, 2) output side, as PyTorch computes it (pooling_output_shape, no padding). */
function pooledSide(x: number, ceil: boolean): number {
  if (!ceil) return Math.floor((x - 2) / 2) + 1;
  const out = Math.ceil((x - 2) / 2) + 1;
  return (out - 1) * 2 >= x ? out - 1 : out; // the last window must start inside the input
}

/**
 * The nodes of the graph in order, with their outputs' shapes: what
 * {@link writeOnnx} writes, without the weights. Names are stable. The int8
 * QDQ form (content.quantization) is derived from this list: its Conv,
 * MaxPool and classifier nodes keep these names, batch norm is folded and
 * each trunk Relu becomes a QuantizeLinear / DequantizeLinear pair.
 * @param spec - architecture, class count, backbone options, input [H, W]
 * @returns one entry per node: Conv, [BatchNormalization], Relu per convolution,
 *   MaxPool per stage, then [AveragePool], Flatten, Gemm, Relu, Gemm, Relu, Gemm with a classifier
 * @throws OnnxFormatError UNSUPPORTED_OP when the model has a classifier and
 * its last map is neither 7x7 nor a multiple of 7 on both sides: the adaptive
 * average pool to 7x7 (torchvision's avgpool, the model's forward) then has
 * no exact AveragePool, and PyTorch's exporter refuses it too.
 * @example
 * ```ts
 * const layers = onnxLayers({ arch: { depth: 11, batchNorm: false }, numClasses: 0,
 *   backbone: { ceilMode: false, withLastPool: true, dilations: [1, 1, 1, 1, 1] }, inputSize: [224, 224] });
 * layers.at(-1); // { op: 'MaxPool', name: 'features.12', output: 'features', outputShape: ['N', 512, 7, 7], ... }
 * ```
 */
export function onnxLayers(spec: OnnxGraphSpec): OnnxLayer[] {
  const { arch, numClasses, backbone } = spec;
  const layers: OnnxLayer[] = [];
  let [h, w] = spec.inputSize;
  let channels = 3;
  const add = (op: string, name: string, params: string[], attributes: OnnxLayer['attributes'], shape: OnnxLayer['outputShape']) => {
    layers.push({ op, name, params, output: name, outputShape: shape, attributes });
  };
  const map = (): OnnxLayer['outputShape'] => [BATCH_DIM, channels, h, w];
  const slots = convSlots(arch.depth);
  const lastStage = STAGE_BLOCKS[arch.depth].length - 1;
  slots.forEach((slot, i) => {
    const p = `features.${slot.featureIndex}`;
    const d = backbone.dilations[slot.stage];
    channels = slot.outChannels;
    // padding = dilation keeps the size (native/vgg_model.cc ConvModuleImpl).
    add(
      'Conv',
      `${p}.conv`,
      [`${p}.conv.weight`, `${p}.conv.bias`],
      { kernel_shape: [3, 3], pads: [d, d, d, d], strides: [1, 1], dilations: [d, d] },
      map(),
    );
    if (arch.batchNorm) {
      const bn = ['weight', 'bias', 'running_mean', 'running_var'].map((t) => `${p}.bn.${t}`);
      add('BatchNormalization', `${p}.bn`, bn, { epsilon: BN_EPSILON }, map());
    }
    add('Relu', `${p}.activate`, [], {}, map());
    const closesStage = slots[i + 1]?.stage !== slot.stage;
    if (closesStage && (slot.stage < lastStage || backbone.withLastPool)) {
      h = pooledSide(h, backbone.ceilMode);
      w = pooledSide(w, backbone.ceilMode);
      add('MaxPool', `features.${slot.featureIndex + 1}`, [], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: backbone.ceilMode ? 1 : 0 }, map());
    }
  });
  if (numClasses > 0) {
    if (h !== POOLED_SIZE || w !== POOLED_SIZE) {
      if (h % POOLED_SIZE !== 0 || w % POOLED_SIZE !== 0) {
        throw new OnnxFormatError(
          'UNSUPPORTED_OP',
          `cannot export: at input ${spec.inputSize.join('x')} the last feature map is ${h}x${w}, and the adaptive average pool to ${POOLED_SIZE}x${POOLED_SIZE} before the classifier ` +
            `is an ONNX AveragePool only when both sides are multiples of ${POOLED_SIZE} (PyTorch's exporter refuses it too); ` +
            `export at an input size whose last map is ${POOLED_SIZE}x${POOLED_SIZE} (224x224 with mmcls's defaults) or a multiple of it (448x448)`,
          "AdaptiveAvgPool2d 'avgpool'",
        );
      }
      // AdaptiveAvgPool2d(7) on a map of k*7: bin i covers [i*k, (i+1)*k), a k x k pool with stride k.
      const kernel = [h / POOLED_SIZE, w / POOLED_SIZE];
      h = POOLED_SIZE;
      w = POOLED_SIZE;
      add('AveragePool', 'avgpool', [], { kernel_shape: kernel, strides: kernel }, map());
    }
    add('Flatten', 'flatten', [], { axis: 1 }, [BATCH_DIM, STAGE_WIDTHS[STAGE_WIDTHS.length - 1] * h * w]);
    const linears = classifierSlots(numClasses);
    linears.forEach((s, i) => {
      const p = `classifier.${s.index}`;
      add('Gemm', p, [`${p}.weight`, `${p}.bias`], { transB: 1 }, [BATCH_DIM, s.outFeatures]);
      // Dropout (classifier.2, .5) is the identity at inference: not exported.
      if (i < linears.length - 1) add('Relu', `classifier.${s.index + 1}`, [], {}, [BATCH_DIM, s.outFeatures]);
    });
  }
  layers[layers.length - 1].output = numClasses > 0 ? LOGITS_NAME : FEATURES_NAME;
  return layers;
}

const A = onnx.AttributeProto.AttributeType;

function attribute(name: string, value: number | number[]): onnx.IAttributeProto {
  if (Array.isArray(value)) return { name, type: A.INTS, ints: value };
  // epsilon is the one FLOAT attribute; the others are INT.
  return Number.isInteger(value) && name !== 'epsilon' ? { name, type: A.INT, i: value } : { name, type: A.FLOAT, f: value };
}

/** One NodeProto: operator, node name, inputs, its one output, attributes. */
export function nodeProto(op: string, name: string, input: string[], output: string, attributes: OnnxLayer['attributes'] = {}): onnx.INodeProto {
  return { input, output: [output], name, opType: op, attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)) };
}

/** The layers as NodeProtos, each reading the previous one's output (the graph input first). */
export function nodeProtos(layers: readonly OnnxLayer[]): onnx.INodeProto[] {
  let current = INPUT_NAME;
  return layers.map((l) => {
    const node = nodeProto(l.op, l.name, [current, ...l.params], l.output, l.attributes);
    current = l.output;
    return node;
  });
}

/** A float32 tensor's ValueInfoProto, 'N' as a dim_param. */
export function valueInfo(name: string, shape: ReadonlyArray<number | string>): onnx.IValueInfoProto {
  const dim = shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim } } } };
}
