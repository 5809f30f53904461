// The int8 QDQ form of the export: the float graph of graph.ts with
// QuantizeLinear / DequantizeLinear pairs where the int8 engine rounds, as
// onnxruntime's quantize_static writes it ("QDQ format",
// https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html),
// so onnxruntime fuses each DQ -> Conv -> Q into a QLinearConv and a file
// computes what an int8 engine computes.
//
// The arithmetic (ONNX operator docs, https://onnx.ai/onnx/operators/):
// - QuantizeLinear: y = saturate(round_half_even(x / y_scale) + y_zero_point),
//   to [-128, 127] for int8, [0, 255] for uint8; DequantizeLinear:
//   y = (x - x_zero_point) * x_scale; with `axis` a 1-D scale is per slice.
// - Batch norm is folded into the convolution first, in float64 and then cast
//   to float32, exactly as native/onednn_trunk.cc (FoldedConv) folds it, so the
//   float weights quantized here are the ones the native trunk runs.
// - Weights: per output channel, symmetric int8 in [-127, 127] (onnxruntime's
//   tool and oneDNN's s8 weights leave -128 out so that w and -w round alike),
//   scale max|w'| / 127; an INT8 initializer and a DequantizeLinear (axis 0).
// - Bias: INT32 at scale s_in * s_w[oc] per channel, zero point 0: the one form
//   QLinearConv takes (its bias has no scale input: it is implied to be that
//   product), and onnxruntime's QDQ Conv fusion looks for exactly this.
// - Activations: per tensor, zero point 0; the image signed (int8), every
//   later one non-negative (uint8). A ReLU then is the uint8 clamp at zero
//   point 0: no Relu node, as onnxruntime's tool leaves it out. A MaxPool is
//   surrounded by a DQ and a Q of the same scale (the max of quantized
//   values is one of them: the pair is exact), which onnxruntime drops.
import { convSlots } from '../../../arch';
import { CheckpointError } from '../../errors';
import type { ResolvedExportContent } from './content';
import type { OnnxInitializer } from './encode';
import { BN_EPSILON, FEATURES_NAME, INPUT_NAME, LOGITS_NAME, type OnnxLayer, nodeProto } from './graph';
import type { onnx } from 'onnx-proto';

/** Largest magnitude of a quantized weight: symmetric int8 leaves -128 out. */
export const WEIGHT_QMAX = 127;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** What the metadata_props `quantization` entry says besides the scales. */
export const QDQ_DESCRIPTION = {
  format: 'QDQ',
  weights: 'int8 per-channel symmetric',
  activations: 'int8 input / uint8 after ReLU, per-tensor, zero point 0',
} as const;

/**
 * Rounds to the nearest integer, ties to even: the rounding of ONNX's
 * QuantizeLinear (and of torch.round, numpy's round, C's nearbyint in the
 * default mode). Math.round rounds ties up instead.
 * @param x - a finite number below 2^52 in magnitude (so `r - x` is exact)
 * @returns the nearest integer, 2.5 -> 2, 3.5 -> 4, -2.5 -> -2
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A convolution with its batch norm folded in, float32 as the native trunk holds it. */
export interface FoldedConv {
  /** [O, I, kh, kw], row-major. */
  weight: Float32Array;
  /** [O]. */
  bias: Float32Array;
}

/**
 * Folds an eval-mode batch norm into the convolution before it, as
 * native/onednn_trunk.cc does: in float64, scale = gamma / sqrt(running_var +
 * eps), w' = w * scale[oc], b' = (b - running_mean) * scale + beta, then each
 * value rounded to float32. Without a batch norm the convolution is returned
 * as it is (its arrays, not copies: the float64 round trip is the identity).
 * @param weight - the convolution's weight, [O, ...] row-major
 * @param bias - its bias, [O]
 * @param bn - gamma (`bn.weight`), beta (`bn.bias`), running mean and variance, each [O]; undefined without BN
 */
export function foldBatchNorm(
  weight: Float32Array,
  bias: Float32Array,
  bn?: { gamma: Float32Array; beta: Float32Array; mean: Float32Array; variance: Float32Array },
): FoldedConv {
  if (!bn) return { weight, bias };
  const channels = bias.length;
  const per = weight.length / channels;
  const w = new Float32Array(weight.length);
  const b = new Float32Array(channels);
  for (let oc = 0; oc < channels; oc++) {
    const scale = bn.gamma[oc] / Math.sqrt(bn.variance[oc] + BN_EPSILON);
    for (let j = oc * per; j < (oc + 1) * per; j++) w[j] = weight[j] * scale;
    b[oc] = (bias[oc] - bn.mean[oc]) * scale + bn.beta[oc];
  }
  return { weight: w, bias: b };
}

/**
 * Per output channel symmetric int8: s[oc] = max|w[oc]| / 127 in float32 (1
 * where that is 0, an all-zero channel, so that the scale stays valid), and
 * q = round_half_even(w / s) clamped to [-127, 127], the division in float64
 * of the float32 values.
 * @param weight - [O, ...] row-major float32
 * @param channels - O
 * @param name - the tensor's name, for the error
 * @param file - the file being written, for the error
 * @throws CheckpointError BAD_VALUE when a weight is NaN or infinite (no scale represents it)
 */
export function quantizeWeights(weight: Float32Array, channels: number, name: string, file?: string): { q: Int8Array; scale: Float32Array } {
  const per = weight.length / channels;
  const q = new Int8Array(weight.length);
  const scale = new Float32Array(channels);
  for (let oc = 0; oc < channels; oc++) {
    let max = 0;
    for (let j = oc * per; j < (oc + 1) * per; j++) {
      const a = Math.abs(weight[j]);
      if (!(a <= Number.MAX_VALUE)) {
        throw new CheckpointError(
          'BAD_VALUE',
          `cannot export ${file ?? 'the model'} as int8: ${name} (batch norm folded in) holds ${weight[j]} at element ${j}`,
          file,
        );
      }
      if (a > max) max = a;
    }
    // 0 also when max / 127 underflows float32: those weights all round to 0 at any scale.
    const s = Math.fround(max / WEIGHT_QMAX) || 1;
    scale[oc] = s;
    for (let j = oc * per; j < (oc + 1) * per; j++) q[j] = Math.max(-WEIGHT_QMAX, Math.min(WEIGHT_QMAX, roundHalfEven(weight[j] / s)));
  }
  return { q, scale };
}

/**
 * The bias in the form QLinearConv takes: scale s_b[oc] = s_in * s_w[oc]
 * (a float32 product), q = round_half_even(b / s_b) (float64 division)
 * clamped to int32 (NaN, from a zero scale and a zero bias, to 0).
 * @param bias - [O] float32, batch norm folded in
 * @param inputScale - the convolution input's scale, a float32 value
 * @param weightScale - the weight's per-channel scales
 */
export function quantizeBias(bias: Float32Array, inputScale: number, weightScale: Float32Array): { q: Int32Array; scale: Float32Array } {
  const scale = weightScale.map((s) => Math.fround(inputScale * s));
  const q = new Int32Array(bias.length);
  for (let oc = 0; oc < bias.length; oc++) {
    const v = roundHalfEven(bias[oc] / scale[oc]);
    q[oc] = Number.isNaN(v) ? 0 : Math.max(INT32_MIN, Math.min(INT32_MAX, v));
  }
  return { q, scale };
}

/** The QDQ graph's nodes and initializers, in node order. */
export interface QdqGraph {
  nodes: onnx.INodeProto[];
  initializers: OnnxInitializer[];
}

/**
 * The QDQ form of the float graph `layers` (onnxLayers' list for the same
 * content). Weights are named as onnxruntime's tool names them: a quantized weight `W` is the
 * INT8 (bias: INT32) initializer `W_quantized` with `W_scale`, `W_zero_point`, and a
 * DequantizeLinear `W_DequantizeLinear` whose output is `W`, the name the
 * Conv reads; an activation `T` (`input`, `features.<i>.activate`, the pool
 * `features.<j>`) goes through `T_QuantizeLinear` -> `T_quantized` and
 * `T_DequantizeLinear` -> `T_dequantized`, its scale and zero point
 * `T_scale`, `T_zero_point` (a pool's pair reuses the ReLU's). The Conv's
 * float output keeps its name (`features.<i>.conv`); the last node's output is
 * 'features' or 'logits'.
 * @param c - the checked content, with `quantization`
 * @param layers - the float graph's layers
 * @param file - the file being written, for errors
 * @throws CheckpointError BAD_VALUE when a convolution's weight (batch norm folded in) is NaN or infinite
 */
export function qdqGraph(c: ResolvedExportContent, layers: readonly OnnxLayer[], file: string): QdqGraph {
  const scales = c.quantization!.activationScales.map((s) => Math.fround(s));
  const state = new Map(c.state.map((t) => [t.name, t.data as Float32Array]));
  const shapes = new Map(c.state.map((t) => [t.name, t.shape]));
  const tensor = (name: string) => state.get(name)!;
  const nodes: onnx.INodeProto[] = [];
  const initializers: OnnxInitializer[] = [];
  const slots = convSlots(c.arch.depth);

  /** Q then DQ of `current` with the scale and zero point named `qparams`; returns the float output. */
  const quantDequant = (current: string, base: string, qparams: [string, string]): string => {
    nodes.push(nodeProto('QuantizeLinear', `${base}_QuantizeLinear`, [current, ...qparams], `${base}_quantized`));
    nodes.push(nodeProto('DequantizeLinear', `${base}_DequantizeLinear`, [`${base}_quantized`, ...qparams], `${base}_dequantized`));
    return `${base}_dequantized`;
  };
  /** A per-tensor scale and zero point 0 as scalar initializers; returns their names. */
  const activationParams = (base: string, scale: number, signed: boolean): [string, string] => {
    initializers.push({ name: `${base}_scale`, shape: [], data: Float32Array.of(scale) });
    initializers.push({ name: `${base}_zero_point`, shape: [], data: signed ? new Int8Array(1) : new Uint8Array(1) });
    return [`${base}_scale`, `${base}_zero_point`];
  };
  /** An integer initializer and the per-channel DequantizeLinear (axis 0) giving float `name`. */
  const dequantized = (name: string, q: Int8Array | Int32Array, scale: Float32Array) => {
    const zero = q instanceof Int8Array ? new Int8Array(scale.length) : new Int32Array(scale.length);
    initializers.push({ name: `${name}_quantized`, shape: shapes.get(name)!, data: q });
    initializers.push({ name: `${name}_scale`, shape: [scale.length], data: scale });
    initializers.push({ name: `${name}_zero_point`, shape: [scale.length], data: zero });
    nodes.push(
      nodeProto('DequantizeLinear', `${name}_DequantizeLinear`, [`${name}_quantized`, `${name}_scale`, `${name}_zero_point`], name, { axis: 0 }),
    );
  };

  let current = quantDequant(INPUT_NAME, INPUT_NAME, activationParams(INPUT_NAME, scales[0], true));
  let conv = 0;
  /** The scale and zero point of the last ReLU's output, which the pool after it keeps. */
  let lastParams: [string, string] | undefined;
  const inFeatures = (l: OnnxLayer) => l.name.startsWith('features.');
  for (const l of layers) {
    if (l.op === 'Conv') {
      const p = l.name.slice(0, -'.conv'.length);
      const [w, b] = l.params;
      const bn = c.arch.batchNorm
        ? {
            gamma: tensor(`${p}.bn.weight`),
            beta: tensor(`${p}.bn.bias`),
            mean: tensor(`${p}.bn.running_mean`),
            variance: tensor(`${p}.bn.running_var`),
          }
        : undefined;
      const folded = foldBatchNorm(tensor(w), tensor(b), bn);
      const qw = quantizeWeights(folded.weight, slots[conv].outChannels, w, file);
      const qb = quantizeBias(folded.bias, scales[conv], qw.scale);
      dequantized(w, qw.q, qw.scale);
      dequantized(b, qb.q, qb.scale);
      nodes.push(nodeProto('Conv', l.name, [current, w, b], l.name, l.attributes));
      current = l.name;
      conv++;
    } else if (l.op === 'BatchNormalization') {
      // Folded into the Conv's weights and bias above.
    } else if (l.op === 'Relu' && inFeatures(l) && conv < scales.length) {
      // The uint8 clamp at zero point 0 is the ReLU. Its scale is the next convolution's input's (conv is already that one's index).
      lastParams = activationParams(l.name, scales[conv], false);
      current = quantDequant(current, l.name, lastParams);
    } else if (l.op === 'MaxPool' && inFeatures(l) && lastParams) {
      nodes.push(nodeProto('MaxPool', l.name, [current], l.name, l.attributes));
      current = quantDequant(l.name, l.name, lastParams);
    } else if (inFeatures(l)) {
      // Without a scale for the last convolution's output (the package's int8 engine writes it in float32): float ReLU and pool.
      lastParams = undefined;
      nodes.push(nodeProto(l.op, l.name, [current], l.name, l.attributes));
      current = l.name;
    } else {
      // The float classifier (and its AveragePool) on the last DequantizeLinear's output.
      for (const name of l.params) initializers.push({ name, shape: shapes.get(name)!, data: tensor(name) });
      nodes.push(nodeProto(l.op, l.name, [current, ...l.params], l.name, l.attributes));
      current = l.name;
    }
  }
  // Nothing reads the last node's output: it takes the graph output's name.
  nodes[nodes.length - 1].output = [c.numClasses > 0 ? LOGITS_NAME : FEATURES_NAME];
  return { nodes, initializers };
}
