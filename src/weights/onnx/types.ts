// Shapes shared by the ONNX reader's parts: what it returns, and the layers
// the graph walk collects on its way from the image input to the logits.
import type { onnx } from 'onnx-proto';
import type { ArchSpec } from '../../arch';
import type { NamedTensorSource } from '../../binding';

/** VGG weights read from an ONNX model, under canonical mmcls names. */
export interface OnnxWeights {
  arch: ArchSpec;
  /** Outputs of the last dense layer; 0 when the graph has no classifier. */
  numClasses: number;
  /** Canonical mmcls names (no `backbone.`), in state_dict order. */
  tensors: NamedTensorSource[];
  /** From synset.txt of a `.model` archive, or our export's metadata_props, one per class. */
  labels?: string[];
  /** The input pipeline our export records in metadata_props, as a .pth meta holds it (`input_size`, `input_resize`). */
  meta?: Record<string, unknown>;
  /** Version of the default ('' / ai.onnx) operator set. */
  opset: number;
  /** producer_name and producer_version of the model, when set. */
  producer?: string;
  /**
   * BatchNormalization epsilon of the first BN node (BN models only). The
   * model uses mmcls's 1e-5; another epsilon is folded into running_var
   * (var + eps - 1e-5), which gives the same normalisation.
   */
  bnEpsilon?: number;
  /** MaxPool ceil_mode of the graph (omitted when it has no MaxPool). */
  ceilMode?: boolean;
  /** Things that did not stop the read but may matter to the caller. */
  warnings: string[];
}

export type Node = onnx.INodeProto;
export type Tensor = onnx.ITensorProto;

/** A parameter tensor read from the graph, as float32. */
export interface Param {
  name: string;
  dims: number[];
  data: Float32Array;
}

export interface BatchNormParams {
  scale: Param;
  bias: Param;
  mean: Param;
  var: Param;
  eps: number;
}

/** A Conv on the data path, with the BatchNormalization that follows it, if any. */
export interface ConvLayer {
  kind: 'conv';
  node: string;
  weight: Param;
  bias?: Param;
  bn?: BatchNormParams;
}

/** A Gemm or MatMul on the data path (weight as Linear keeps it: [out, in]), with its Add bias, if any. */
export interface DenseLayer {
  kind: 'dense';
  node: string;
  weight: Param;
  bias?: Param;
}
