// One handler per ONNX op a VGG's data path may hold, and the attributes
// each op may carry. Every attribute met is either read by its handler, has
// no effect at inference, or refuses the file: ignoring an unknown one could
// change the numbers.
import { OnnxFormatError } from '../errors';
import { isFloatCast, isNarrowingCast, typeName } from './cast';
import { add, flatten, gemm, matMul, softmax } from './ops-head';
import { reshape } from './ops-reshape';
import { averagePool, batchNormalization, conv, maxPool } from './ops-trunk';
import { int } from './proto';
import type { Node } from './types';
import { region, type OpHandler } from './walk-state';

/**
 * The attributes each op on the image's path may carry (ONNX operator docs,
 * opsets 1-20; `is_test`, `spatial`, `broadcast`, `axis` and Reshape's `shape`
 * are from the older opsets, AveragePool `dilations` and Cast `saturate` from
 * 19). Each is either read by the walk, or has no effect at inference
 * (BatchNormalization momentum, Dropout ratio/seed, MaxPool storage_order,
 * which only orders the unused indices output; Cast saturate, which only
 * concerns float8 targets, refused).
 */
const KNOWN_ATTRIBUTES: Readonly<Record<string, readonly string[]>> = {
  Conv: ['kernel_shape', 'strides', 'pads', 'dilations', 'group', 'auto_pad'],
  BatchNormalization: ['epsilon', 'momentum', 'spatial', 'is_test', 'training_mode', 'consumed_inputs'],
  MaxPool: ['kernel_shape', 'strides', 'pads', 'dilations', 'auto_pad', 'ceil_mode', 'storage_order'],
  AveragePool: ['kernel_shape', 'strides', 'pads', 'dilations', 'auto_pad', 'ceil_mode', 'count_include_pad'],
  Flatten: ['axis'],
  Reshape: ['shape', 'allowzero'],
  Gemm: ['alpha', 'beta', 'transA', 'transB', 'broadcast'],
  MatMul: [],
  Add: ['broadcast', 'axis'],
  Relu: [],
  Dropout: ['ratio', 'seed', 'is_test'],
  Identity: [],
  Cast: ['to', 'saturate'],
  Softmax: ['axis'],
  LogSoftmax: ['axis'],
};

/** Ops that leave the values alone at inference; only Identity (and a float Cast) keeps the last layer attachable. */
const relu: OpHandler = () => false;
const dropout: OpHandler = () => false;
const identity: OpHandler = (w) => w.lastAttachable;

/**
 * A Cast between float types only rounds: read as Identity. float16 models
 * compute between such Casts, which the model does in float32 (warned once).
 */
const cast: OpHandler = (w, node, label) => {
  const to = int(node, 'to', 0);
  if (!isFloatCast(to)) {
    throw new OnnxFormatError(
      'UNSUPPORTED_ATTRIBUTE',
      `${w.source}: ${label} casts the data to ${typeName(to)}; only casts to FLOAT, FLOAT16, BFLOAT16 or DOUBLE keep the values`,
      label,
    );
  }
  if (isNarrowingCast(to) && !w.narrowed) {
    w.narrowed = true;
    w.warnings.push(
      `${w.source}: the graph computes in ${typeName(to)} (${label}); the weights are read exactly, but the model computes in float32, so its outputs differ from the graph's by ${typeName(to)} rounding`,
    );
  }
  return w.lastAttachable;
};

const HANDLERS: ReadonlyMap<string, OpHandler> = new Map<string, OpHandler>([
  ['Conv', conv],
  ['BatchNormalization', batchNormalization],
  ['MaxPool', maxPool],
  ['AveragePool', averagePool],
  ['Flatten', flatten],
  ['Reshape', reshape],
  ['Gemm', gemm],
  ['MatMul', matMul],
  ['Add', add],
  ['Softmax', softmax],
  ['LogSoftmax', softmax],
  ['Relu', relu],
  ['Dropout', dropout],
  ['Identity', identity],
  ['Cast', cast],
]);

/** Refuses an op a VGG does not have. */
const unsupported: OpHandler = (w, _node, label) => {
  throw new OnnxFormatError(
    'UNSUPPORTED_OP',
    `${w.source}: unsupported op in the ${region(w)}: ${label}; expected Conv, BatchNormalization, Relu, MaxPool, Flatten/Reshape, Gemm or MatMul+Add, Dropout, Identity, Cast`,
  );
};

/** The handler for a node's op; unknown ops get one that refuses them. */
export function handlerFor(op: string): OpHandler {
  return HANDLERS.get(op) ?? unsupported;
}

/**
 * Refuses attributes its op does not list.
 * @throws OnnxFormatError UNSUPPORTED_ATTRIBUTE naming the node.
 */
export function checkAttributeNames(node: Node, source: string, label: string): void {
  const known = KNOWN_ATTRIBUTES[node.opType ?? ''];
  if (!known) return; // the op itself is judged by its handler
  for (const a of node.attribute ?? []) {
    if (!known.includes(a.name ?? '')) {
      throw new OnnxFormatError(
        'UNSUPPORTED_ATTRIBUTE',
        `${source}: ${label} has attribute '${a.name}', which the reader does not know; ` +
          `expected only ${known.length ? known.join(', ') : 'none'}`,
        label,
      );
    }
  }
}
