// What the graph walk knows as it follows the image tensor: the layers met so
// far, the stage being built, and whether a BatchNormalization or an Add may
// still attach to the last layer. Op handlers read and update it.
import type { ParamTable } from './params';
import type { ConvLayer, DenseLayer, Node } from './types';

export interface WalkState {
  readonly source: string;
  readonly params: ParamTable;
  readonly warnings: string[];
  readonly convs: ConvLayer[];
  readonly dense: DenseLayer[];
  /** Convolutions per closed stage (a MaxPool closes one). */
  readonly stages: number[];
  convsInStage: number;
  /** After Flatten/Reshape or the first dense layer. */
  inHead: boolean;
  /** The layer a BatchNormalization or an Add may attach to. */
  last?: ConvLayer | DenseLayer;
  /** Nothing but Identity since `last`. */
  lastAttachable: boolean;
  /** Epsilon of the first BatchNormalization, rounded to float32 precision. */
  bnEps?: number;
  /** MaxPool ceil_mode, the same for every pool. */
  ceilMode?: boolean;
  /** The fifth MaxPool has been seen. */
  stagesClosed: boolean;
  /** A trailing Softmax/LogSoftmax was met. */
  softmax: boolean;
  /** The data tensor the current node reads. */
  current: string;
  /** The node writing each tensor (Reshape follows its target's computation). */
  readonly producers: ReadonlyMap<string, Node>;
  /** Rank of each tensor on the path so far: 4 (NCHW) in the trunk, 2 after the flatten. */
  readonly ranks: Map<string, number>;
  /** A Cast on the path rounded the activations to FLOAT16/BFLOAT16 (already warned about). */
  narrowed: boolean;
}

/**
 * Handles one node on the data path. Returns true when the node keeps the
 * last layer attachable (it is that layer, or an Identity after it).
 */
export type OpHandler = (w: WalkState, node: Node, label: string) => boolean | void;

export function newWalkState(source: string, params: ParamTable, warnings: string[], input: string, producers: ReadonlyMap<string, Node>): WalkState {
  return {
    source,
    params,
    warnings,
    convs: [],
    dense: [],
    stages: [],
    convsInStage: 0,
    inHead: false,
    lastAttachable: false,
    stagesClosed: false,
    softmax: false,
    current: input,
    producers,
    ranks: new Map([[input, 4]]),
    narrowed: false,
  };
}

/** Rank of the data tensor: NCHW until the flatten, [N, features] after. */
export function dataRank(w: WalkState): number {
  return w.inHead ? 2 : 4;
}

/** 'classifier' after the flatten, 'trunk' before: how messages place a node. */
export function region(w: WalkState): string {
  return w.inHead ? 'classifier' : 'trunk';
}
