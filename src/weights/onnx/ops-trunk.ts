// Handlers for the ops of VGG's convolutional trunk: Conv, the
// BatchNormalization after it, MaxPool (closing a stage) and torchvision's
// no-op AveragePool. Each reads the attributes that shape the numbers and
// refuses values the model cannot honour (UNSUPPORTED_ATTRIBUTE).
import { STAGE_WIDTHS } from '../../arch';
import { OnnxFormatError } from '../errors';
import { attr, int, ints, text } from './proto';
import { region, type OpHandler, type WalkState } from './walk-state';
import type { Node, Param } from './types';

/** ONNX's BatchNormalization default epsilon. */
const ONNX_BN_EPS = 1e-5;

function notAfterFlatten(w: WalkState, label: string): void {
  if (w.inHead) throw new OnnxFormatError('NOT_VGG', `${w.source}: not a VGG: ${label} comes after the features were flattened`);
}

/** A 3x3 convolution with stride 1, padding 1 (explicit or SAME), dilation 1, group 1. */
function checkConv(node: Node, weight: Param, source: string, label: string): void {
  const k = ints(node, 'kernel_shape') ?? weight.dims.slice(2);
  const strides = ints(node, 'strides') ?? [1, 1];
  const dilations = ints(node, 'dilations') ?? [1, 1];
  const group = int(node, 'group', 1);
  const autoPad = text(node, 'auto_pad', 'NOTSET');
  const pads = ints(node, 'pads') ?? [0, 0, 0, 0];
  const padsOk = autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER' || (autoPad === 'NOTSET' && pads.every((p) => p === 1));
  if (k.join() !== '3,3' || strides.some((s) => s !== 1) || dilations.some((d) => d !== 1) || group !== 1 || !padsOk) {
    throw new OnnxFormatError(
      'UNSUPPORTED_ATTRIBUTE',
      `${source}: ${label} has kernel_shape [${k}], strides [${strides}], dilations [${dilations}], group ${group}, pads [${pads}], auto_pad ${autoPad}; expected a 3x3 convolution with stride 1, padding 1, dilation 1, group 1`,
      label,
    );
  }
}

export const conv: OpHandler = (w, node, label) => {
  notAfterFlatten(w, label);
  const weight = w.params.param(node, 1, 'the weight', true);
  checkConv(node, weight, w.source, label);
  if (w.stagesClosed) throw new OnnxFormatError('NOT_VGG', `${w.source}: not a VGG: ${label} follows the last stage`);
  const layer = { kind: 'conv' as const, node: label, weight, bias: w.params.param(node, 2, 'the bias', false) };
  w.last = layer;
  w.convs.push(layer);
  w.convsInStage++;
  return true;
};

/** The node's epsilon (ONNX default 1e-5); refuses training mode. */
function batchNormEpsilon(node: Node, source: string, label: string): number {
  if (int(node, 'training_mode', 0) !== 0) {
    throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${source}: ${label} has training_mode 1 (batch statistics); expected inference mode`, label);
  }
  if (int(node, 'is_test', 1) === 0 && (node.output?.length ?? 1) > 1) {
    throw new OnnxFormatError(
      'UNSUPPORTED_ATTRIBUTE',
      `${source}: ${label} has is_test 0 with running-statistics outputs (training mode); expected inference mode`,
      label,
    );
  }
  // spatial 0 (opsets < 9) normalises per activation; with per-channel
  // parameters ([C], checked later) that is the same computation.
  const a = attr(node, 'epsilon');
  return a ? (a.f ?? 0) : ONNX_BN_EPS;
}

export const batchNormalization: OpHandler = (w, node, label) => {
  const last = w.last;
  if (last?.kind !== 'conv' || !w.lastAttachable || last.bn) {
    throw new OnnxFormatError('NOT_VGG', `${w.source}: not a VGG: ${label} does not directly follow a Conv`);
  }
  const eps = batchNormEpsilon(node, w.source, label);
  w.bnEps ??= Number(eps.toPrecision(7)); // a float32 attribute: 1e-5 arrives as 9.99999974e-6
  const p = w.params;
  last.bn = {
    scale: p.param(node, 1, 'scale', true),
    bias: p.param(node, 2, 'B', true),
    mean: p.param(node, 3, 'mean', true),
    var: p.param(node, 4, 'var', true),
    eps,
  };
};

/** A 2x2 stride-2 pool without padding or dilation; returns its ceil_mode. */
function maxPoolCeilMode(node: Node, source: string, label: string): boolean {
  const storageOrder = int(node, 'storage_order', 0);
  if (storageOrder !== 0 && storageOrder !== 1) {
    throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${source}: ${label} has storage_order ${storageOrder}; expected 0 or 1`, label);
  }
  const k = ints(node, 'kernel_shape');
  const s = ints(node, 'strides') ?? [1, 1];
  const pads = ints(node, 'pads') ?? [0, 0, 0, 0];
  const dilations = ints(node, 'dilations') ?? [1, 1];
  const autoPad = text(node, 'auto_pad', 'NOTSET');
  if (
    k?.join() !== '2,2' ||
    s.join() !== '2,2' ||
    pads.some((p) => p !== 0) ||
    dilations.some((d) => d !== 1) ||
    (autoPad !== 'NOTSET' && autoPad !== 'VALID')
  ) {
    throw new OnnxFormatError(
      'UNSUPPORTED_ATTRIBUTE',
      `${source}: ${label} has kernel_shape [${k ?? ''}], strides [${s}], pads [${pads}], dilations [${dilations}], auto_pad ${autoPad}; ` +
        'expected a 2x2 max pool with stride 2, no padding and dilation 1',
      label,
    );
  }
  return int(node, 'ceil_mode', 0) !== 0;
}

export const maxPool: OpHandler = (w, node, label) => {
  notAfterFlatten(w, label);
  const ceil = maxPoolCeilMode(node, w.source, label);
  if (w.ceilMode !== undefined && ceil !== w.ceilMode) {
    throw new OnnxFormatError(
      'UNSUPPORTED_ATTRIBUTE',
      `${w.source}: ${label} has ceil_mode ${Number(ceil)} but an earlier MaxPool has ${Number(w.ceilMode)}; a VGG rounds all its pools the same way`,
      label,
    );
  }
  w.ceilMode = ceil;
  w.stages.push(w.convsInStage);
  w.convsInStage = 0;
  if (w.stages.length === STAGE_WIDTHS.length) w.stagesClosed = true;
};

/** torchvision's AdaptiveAvgPool2d(7) on a 7x7 map exports as a 1x1 pool: a no-op. */
export const averagePool: OpHandler = (w, node, label) => {
  const k = ints(node, 'kernel_shape');
  const s = ints(node, 'strides') ?? [1, 1];
  const pads = ints(node, 'pads') ?? [0, 0, 0, 0];
  const dilations = ints(node, 'dilations') ?? [1, 1];
  if (k?.join() !== '1,1' || s.join() !== '1,1' || pads.some((p) => p !== 0) || dilations.some((d) => d !== 1)) {
    throw new OnnxFormatError(
      'UNSUPPORTED_OP',
      `${w.source}: unsupported op in the ${region(w)}: ${label} with kernel_shape [${k ?? ''}], strides [${s}], pads [${pads}], dilations [${dilations}] (only the 1x1 no-op pool of torchvision's avgpool is accepted)`,
    );
  }
};
