// One handler per ONNX op a VGG's data path may hold, and the attributes
// each op may carry. Every attribute met is either read by its handler, has
// no effect at inference, or refuses the file: ignoring an unknown one could
// change the numbers.
import { OnnxFormatError } from '../errors';
import { add, flatten, gemm, matMul, reshape, softmax } from './ops-head';
import { averagePool, batchNormalization, conv, maxPool } from './ops-trunk';
import type { Node } from './types';
import { region, type OpHandler } from './walk-state';

/**
 * The attributes each op on the image's path may carry (ONNX operator docs,
 * opsets 1-17; `is_test`, `spatial`, `broadcast`, `axis` and Reshape's `shape`
 * are from the older opsets). Each is either read by the walk, or has no
 * effect at inference (BatchNormalization momentum, Dropout ratio/seed,
 * MaxPool storage_order, which only orders the unused indices output).
 */
const KNOWN_ATTRIBUTES: Readonly<Record<string, readonly string[]>> = {
  Conv: ['kernel_shape', 'strides', 'pads', 'dilations', 'group', 'auto_pad'],
  BatchNormalization: ['epsilon', 'momentum', 'spatial', 'is_test', 'training_mode', 'consumed_inputs'],
  MaxPool: ['kernel_shape', 'strides', 'pads', 'dilations', 'auto_pad', 'ceil_mode', 'storage_order'],
  AveragePool: ['kernel_shape', 'strides', 'pads', 'auto_pad', 'ceil_mode', 'count_include_pad'],
  Flatten: ['axis'],
  Reshape: ['shape', 'allowzero'],
  Gemm: ['alpha', 'beta', 'transA', 'transB', 'broadcast'],
  MatMul: [],
  Add: ['broadcast', 'axis'],
  Relu: [],
  Dropout: ['ratio', 'seed', 'is_test'],
  Identity: [],
  Softmax: ['axis'],
  LogSoftmax: ['axis'],
};

/** Ops that leave the values alone at inference; only Identity keeps the last layer attachable. */
const relu: OpHandler = () => false;
const dropout: OpHandler = () => false;
const identity: OpHandler = (w) => w.lastAttachable;

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
]);

/** Refuses an op a VGG does not have. */
const unsupported: OpHandler = (w, _node, label) => {
  throw new OnnxFormatError(
    'UNSUPPORTED_OP',
    `${w.source}: unsupported op in the ${region(w)}: ${label}; expected Conv, BatchNormalization, Relu, MaxPool, Flatten/Reshape, Gemm or MatMul+Add, Dropout, Identity`,
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
