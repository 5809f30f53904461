// Handlers for the ops of VGG's classifier: the flatten (Flatten; Reshape
// has ops-reshape), dense layers (Gemm, or MatMul + Add), and a trailing
// Softmax. Dense weights are brought to Linear's [out, in] here, and Gemm's
// alpha/beta are folded into them (with a warning).
import { OnnxFormatError } from '../errors';
import { attr, int, optionalInt } from './proto';
import { transposed } from './tensor-data';
import type { DenseLayer, Node } from './types';
import { dataRank, region, type OpHandler, type WalkState } from './walk-state';

/** Flatten from axis 1 (or the same axis counted from the end: -3 of NCHW, -1 of [N, F]). */
export const flatten: OpHandler = (w, node, label) => {
  const axis = optionalInt(node, 'axis') ?? 1;
  if (axis !== 1 && axis !== 1 - dataRank(w)) {
    throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${w.source}: ${label} flattens from axis ${axis}; expected axis 1`, label);
  }
  w.inHead = true;
};

function twoDimensional(w: WalkState, weight: { name: string; dims: number[] }, label: string): void {
  if (weight.dims.length !== 2) {
    throw new OnnxFormatError(
      'NOT_VGG',
      `${w.source}: not a VGG: ${label} weight '${weight.name}' has shape [${weight.dims}]; expected 2 dimensions`,
    );
  }
}

function gemmLayer(w: WalkState, node: Node, label: string): DenseLayer {
  const transA = int(node, 'transA', 0);
  const transB = int(node, 'transB', 0);
  const alpha = attr(node, 'alpha')?.f ?? 1;
  const beta = attr(node, 'beta')?.f ?? 1;
  if (transA !== 0)
    throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${w.source}: ${label} has transA=${transA}; expected 0 (the features as rows)`, label);
  const raw = w.params.param(node, 1, 'the weight', true);
  twoDimensional(w, raw, label);
  // Linear keeps [out, in]: transB=1 stores it that way, transB=0 stores [in, out].
  const weight = transB ? raw : transposed(raw);
  const bias = w.params.param(node, 2, 'the bias (C)', false);
  if (alpha !== 1 || (bias && beta !== 1)) {
    w.warnings.push(`${w.source}: ${label} has alpha=${alpha}, beta=${beta}; folded into the weight and bias`);
    if (alpha !== 1) weight.data = weight.data.map((v) => v * alpha);
    if (bias && beta !== 1) bias.data = bias.data.map((v) => v * beta);
  }
  return { kind: 'dense', node: label, weight, bias };
}

function matMulLayer(w: WalkState, node: Node, label: string): DenseLayer {
  const raw = w.params.param(node, 1, 'the weight', true);
  twoDimensional(w, raw, label);
  return { kind: 'dense', node: label, weight: transposed(raw) }; // MatMul stores [in, out]
}

/**
 * Gemm or MatMul. Exporters (the zoo's opset-8 vgg19 among them) feed the
 * last MaxPool's [N,512,7,7] straight into the first dense layer: a row-major
 * flatten, which is what Flatten(axis=1) and the model's own flatten do.
 */
const dense =
  (make: typeof gemmLayer): OpHandler =>
  (w, node, label) => {
    if (!w.inHead && !w.stagesClosed) throw new OnnxFormatError('NOT_VGG', `${w.source}: not a VGG: ${label} comes before the last stage's MaxPool`);
    w.inHead = true;
    const layer = make(w, node, label);
    w.last = layer;
    w.dense.push(layer);
    return true;
  };

export const gemm = dense(gemmLayer);
export const matMul = dense(matMulLayer);

/** The bias of a MatMul-expressed (or bias-less Gemm) Linear, on either side of the Add. */
export const add: OpHandler = (w, node, label) => {
  const other = node.input?.[0] === w.current ? 1 : 0;
  const last = w.last;
  if (last?.kind !== 'dense' || last.bias || !w.lastAttachable) {
    throw new OnnxFormatError(
      'UNSUPPORTED_OP',
      `${w.source}: unsupported op in the ${region(w)}: ${label} (an Add is accepted only as the bias right after a MatMul or a Gemm without C)`,
    );
  }
  last.bias = w.params.param(node, other, 'the bias', true);
};

/** Softmax/LogSoftmax over the classes of [N, classes]: axis 1 or -1 (absent = 1 before opset 13, -1 after). */
export const softmax: OpHandler = (w, node, label) => {
  if (!w.inHead || w.dense.length === 0) throw new OnnxFormatError('UNSUPPORTED_OP', `${w.source}: unsupported op in the trunk: ${label}`);
  const axis = optionalInt(node, 'axis');
  if (axis !== undefined && axis !== 1 && axis !== -1) {
    throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${w.source}: ${label} has axis ${axis}; expected the class axis (1 or -1)`, label);
  }
  w.softmax = true;
};
