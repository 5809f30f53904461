// The graph walk: from the image input, follow the one data tensor from node
// to node (Conv [BatchNormalization] Relu ... MaxPool ... Flatten/Reshape,
// Gemm or MatMul + Add ..., with Identity, Dropout and float Casts anywhere),
// handing each node to its op's handler. Weights
// are found this way, never by initializer names: exporters name things
// freely, but the op sequence of a VGG is fixed.
import type { onnx } from 'onnx-proto';
import { OnnxFormatError } from '../errors';
import { checkAttributeNames, handlerFor } from './ops';
import type { ParamTable } from './params';
import { isDefaultDomain, nodeLabel } from './proto';
import type { Node } from './types';
import { dataRank, newWalkState, type WalkState } from './walk-state';

/** Ops that read only a tensor's shape: they hang off the data path without continuing it. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);

/** The node writing each tensor (sortNodes has refused tensors written twice). */
function producersOf(graph: onnx.IGraphProto): Map<string, Node> {
  const producers = new Map<string, Node>();
  for (const node of graph.node ?? []) for (const out of node.output ?? []) if (out) producers.set(out, node);
  return producers;
}

/** Refuses contrib and custom-domain ops (com.microsoft Conv, ...): their semantics are not ONNX's. */
function checkDomain(w: WalkState, node: Node, label: string): void {
  if (!isDefaultDomain(node)) {
    throw new OnnxFormatError(
      'UNSUPPORTED_OP',
      `${w.source}: unsupported op: ${label} is in domain '${node.domain}' (not a local function of the model); expected standard ONNX ops`,
    );
  }
}

/** Nodes by the tensors they read. */
function consumersOf(graph: onnx.IGraphProto): Map<string, Node[]> {
  const consumers = new Map<string, Node[]>();
  for (const node of graph.node ?? []) {
    for (const name of node.input ?? []) {
      if (!name) continue;
      const list = consumers.get(name);
      if (list) list.push(node);
      else consumers.set(name, [node]);
    }
  }
  return consumers;
}

/**
 * The graph input carrying the image: not an initializer (old IR versions
 * list those as inputs too), read as some node's first input.
 * @throws OnnxFormatError NOT_VGG when there is not exactly one.
 */
function imageInput(graph: onnx.IGraphProto, params: ParamTable, consumers: Map<string, Node[]>, source: string): string {
  const names = (graph.input ?? []).map((i) => i.name ?? '').filter((n) => n && !params.initializers.has(n));
  let candidates = names.filter((n) => (consumers.get(n) ?? []).some((c) => c.input?.[0] === n));
  if (candidates.length > 1) {
    const convFed = candidates.filter((n) => (consumers.get(n) ?? []).some((c) => c.opType === 'Conv' && c.input?.[0] === n));
    if (convFed.length >= 1) candidates = convFed;
  }
  if (candidates.length !== 1) {
    throw new OnnxFormatError(
      'NOT_VGG',
      `${source}: not a VGG: expected one image input but the graph has ${candidates.length === 0 ? 'none' : candidates.join(', ')} (inputs without an initializer: ${names.join(', ') || 'none'})`,
    );
  }
  return candidates[0];
}

/** The one node reading `current` (shape-only readers aside); undefined at the end of the path. */
function nextNode(consumers: Map<string, Node[]>, current: string, source: string): Node | undefined {
  const users = (consumers.get(current) ?? []).filter((n) => !SHAPE_ONLY.has(n.opType ?? ''));
  if (users.length > 1) {
    throw new OnnxFormatError(
      'NOT_VGG',
      `${source}: not a VGG: tensor '${current}' feeds ${users.length} nodes (${users.map(nodeLabel).join(', ')}); expected a single chain of layers`,
    );
  }
  return users[0];
}

/**
 * Walks the data path from the image input to its end.
 * @param graph - the graph with local functions inlined and its nodes sorted
 * @returns the layers found, in order, and the walk's findings (stages, ceil mode, BN epsilon)
 * @throws OnnxFormatError NOT_VGG (branches, cycles, misplaced layers),
 * UNSUPPORTED_OP, UNSUPPORTED_ATTRIBUTE, MISSING_INITIALIZER, BAD_TENSOR, EXTERNAL_DATA.
 * @example
 * ```ts
 * const w = walkDataPath(graph, new ParamTable(graph, file, dir), file, warnings);
 * ```
 */
export function walkDataPath(graph: onnx.IGraphProto, params: ParamTable, source: string, warnings: string[]): WalkState {
  const consumers = consumersOf(graph);
  const w = newWalkState(source, params, warnings, imageInput(graph, params, consumers, source), producersOf(graph));
  const visited = new Set<Node>();
  for (let node = nextNode(consumers, w.current, source); node; node = nextNode(consumers, w.current, source)) {
    const label = nodeLabel(node);
    if (visited.has(node)) throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: the graph has a cycle at ${label}`);
    visited.add(node);
    const op = node.opType ?? '';
    if (op !== 'Add' && node.input?.[0] !== w.current) {
      throw new OnnxFormatError(
        'NOT_VGG',
        `${source}: not a VGG: ${label} takes the data tensor '${w.current}' as a parameter, not as its first input`,
      );
    }
    checkDomain(w, node, label);
    checkAttributeNames(node, source, label);
    w.lastAttachable = handlerFor(op)(w, node, label) === true;
    w.current = node.output?.[0] ?? '';
    if (!w.current) break;
    w.ranks.set(w.current, dataRank(w));
  }
  return w;
}
