// From the layers the walk found to canonical mmcls tensors: the stage
// counts must be a VGG-11/13/16/19, BN on all convolutions or none, three
// dense layers or none, and every shape the one the depth implies.
import {
  CLASSIFIER_LINEAR_INDICES,
  FLATTENED_FEATURES,
  HIDDEN_FEATURES,
  STAGE_BLOCKS,
  convSlots,
  depthFromStageBlocks,
  type ConvSlot,
  type Depth,
} from '../../arch';
import type { NamedTensorSource } from '../../binding';
import { OnnxFormatError } from '../errors';
import type { ConvLayer, DenseLayer, Param } from './types';
import type { WalkState } from './walk-state';

const MMCLS_BN_EPS = 1e-5;
/** The float32 value files store for ONNX's default epsilon 1e-5. */
const ONNX_BN_EPS_F32 = Math.fround(1e-5);

/** What the walk says about the architecture, checked. */
export interface GraphArch {
  depth: Depth;
  batchNorm: boolean;
  numClasses: number;
}

/**
 * Closes the walk (a last stage without MaxPool, a trailing softmax) and
 * checks the layers make a VGG.
 * @throws OnnxFormatError NOT_VGG.
 */
export function architectureOf(w: WalkState): GraphArch {
  const { source, convs, dense, stages, warnings } = w;
  if (w.softmax) warnings.push(`${source}: the graph ends with a softmax, so its outputs are probabilities; the weights read here give logits`);
  if (w.convsInStage > 0) {
    // mmcls with_last_pool=False: the last stage has no closing MaxPool.
    stages.push(w.convsInStage);
    if (dense.length === 0) warnings.push(`${source}: no MaxPool after the last stage (mmcls with_last_pool=False)`);
  }
  const depth = depthFromStageBlocks(stages);
  if (!depth) {
    const expected = Object.values(STAGE_BLOCKS)
      .map((b) => `[${b}]`)
      .join(', ');
    throw new OnnxFormatError(
      'NOT_VGG',
      `${source}: not a VGG: found ${convs.length} convolution${convs.length === 1 ? '' : 's'} in stages [${stages}] — not a VGG-11/13/16/19 (expected convolutions per stage ${expected})`,
    );
  }
  const withBn = convs.filter((c) => c.bn).length;
  if (withBn !== 0 && withBn !== convs.length) {
    throw new OnnxFormatError(
      'NOT_VGG',
      `${source}: not a VGG: found BatchNormalization after ${withBn} of ${convs.length} convolutions; expected all or none`,
    );
  }
  if (dense.length !== 0 && dense.length !== CLASSIFIER_LINEAR_INDICES.length) {
    throw new OnnxFormatError(
      'NOT_VGG',
      `${source}: not a VGG: found ${dense.length} dense layer${dense.length === 1 ? '' : 's'} after the features; expected ${CLASSIFIER_LINEAR_INDICES.length} (or none for a feature extractor)`,
    );
  }
  return { depth, batchNorm: withBn > 0, numClasses: dense.length > 0 ? dense[2].weight.dims[0] : 0 };
}

/** Collects canonical tensors, checking each parameter's shape against the depth's. */
class TensorList {
  readonly tensors: NamedTensorSource[] = [];
  constructor(
    private readonly source: string,
    private readonly depth: Depth,
  ) {}

  add(name: string, data: Float32Array, shape: number[]): void {
    this.tensors.push({ name, tensor: { kind: 'array', data, shape } });
  }

  /** A weight of exactly `shape`. */
  weight(key: string, p: Param, shape: number[], layer: string): void {
    if (p.dims.length !== shape.length || p.dims.some((d, i) => d !== shape[i])) {
      throw new OnnxFormatError(
        'NOT_VGG',
        `${this.source}: not a VGG-${this.depth}: ${key} (from '${p.name}' of ${layer}) should have shape [${shape}] but has [${p.dims}]`,
      );
    }
    this.add(key, p.data, shape);
  }

  /** A per-channel vector of length n: zeros when absent, broadcast when a scalar. */
  vector(key: string, p: Param | undefined, n: number, layer: string, adjust?: (v: Float32Array) => Float32Array): void {
    let data: Float32Array;
    if (!p) data = new Float32Array(n);
    else if (p.data.length === n) data = p.data;
    else if (p.data.length === 1) data = new Float32Array(n).fill(p.data[0]);
    else
      throw new OnnxFormatError(
        'NOT_VGG',
        `${this.source}: not a VGG: ${key} (from '${p.name}' of ${layer}) should have ${n} elements but has ${p.data.length} (shape [${p.dims}])`,
      );
    this.add(key, adjust ? adjust(data) : data, [n]);
  }
}

/** running_var' = var + eps - 1e-5, so the model's sqrt(var' + 1e-5) = sqrt(var + eps). */
function withEpsilon(eps: number): (variance: Float32Array) => Float32Array {
  return (variance) => (eps === ONNX_BN_EPS_F32 || eps === MMCLS_BN_EPS ? variance : variance.map((v) => v + eps - MMCLS_BN_EPS));
}

function addConv(list: TensorList, slot: ConvSlot, c: ConvLayer): void {
  const p = `features.${slot.featureIndex}`;
  const o = slot.outChannels;
  list.weight(`${p}.conv.weight`, c.weight, [o, slot.inChannels, 3, 3], c.node);
  list.vector(`${p}.conv.bias`, c.bias, o, c.node);
  if (!c.bn) return;
  list.vector(`${p}.bn.weight`, c.bn.scale, o, c.node);
  list.vector(`${p}.bn.bias`, c.bn.bias, o, c.node);
  list.vector(`${p}.bn.running_mean`, c.bn.mean, o, c.node);
  list.vector(`${p}.bn.running_var`, c.bn.var, o, c.node, withEpsilon(c.bn.eps));
  list.tensors.push({ name: `${p}.bn.num_batches_tracked`, tensor: { kind: 'array', data: BigInt64Array.of(0n), shape: [] } });
}

function addClassifier(list: TensorList, dense: DenseLayer[], numClasses: number): void {
  const shapes = [
    [HIDDEN_FEATURES, FLATTENED_FEATURES],
    [HIDDEN_FEATURES, HIDDEN_FEATURES],
    [numClasses, HIDDEN_FEATURES],
  ];
  CLASSIFIER_LINEAR_INDICES.forEach((index, i) => {
    const d = dense[i];
    const key = `classifier.${index}`;
    list.weight(`${key}.weight`, d.weight, shapes[i], d.node);
    list.vector(`${key}.bias`, d.bias, shapes[i][0], d.node);
  });
}

/**
 * The walk's layers as canonical mmcls tensors (no `backbone.`), in state_dict order.
 * @throws OnnxFormatError NOT_VGG for a shape the depth does not have.
 */
export function canonicalTensors(w: WalkState, a: GraphArch): NamedTensorSource[] {
  const list = new TensorList(w.source, a.depth);
  convSlots(a.depth).forEach((slot, i) => addConv(list, slot, w.convs[i]));
  if (w.dense.length > 0) addClassifier(list, w.dense, a.numClasses);
  return list.tensors;
}
