// One ONNX ModelProto to VGG weights: decode, inline local functions, sort
// the nodes, walk the data path, assemble canonical tensors. The archive
// reader and readOnnx both end here.
import type { onnx } from 'onnx-proto';
import { MAX_OPSET, MIN_OPSET } from './limits';
import { architectureOf, canonicalTensors } from './assemble';
import { inlineFunctions } from './inline';
import { metadataOf } from './metadata';
import { ParamTable } from './params';
import { decodeModel, defaultOpset, producerOf } from './proto';
import { sortNodes } from './topo';
import type { OnnxWeights } from './types';
import { walkDataPath } from './walk';

/**
 * Reads VGG weights from the bytes of one .onnx file.
 * @param source - how messages name the input (`file.onnx`, `x.model:inner.onnx`, `<buffer>`)
 * @param externalDir - folder external tensor data is looked up in; undefined where there is none
 * @throws OnnxFormatError with any code but BAD_ARCHIVE.
 */
export function readModel(bytes: Uint8Array, source: string, externalDir: string | undefined): OnnxWeights {
  const model = decodeModel(bytes, source);
  const warnings: string[] = [];
  const opset = defaultOpset(model, source);
  if (opset < MIN_OPSET || opset > MAX_OPSET) warnings.push(`${source}: opset ${opset} is outside the tested range ${MIN_OPSET}..${MAX_OPSET}`);
  // Only the node list is rebuilt; initializers stay where protobuf put them.
  const graph: onnx.IGraphProto = { ...model.graph!, node: sortNodes(inlineFunctions(model, bytes, source), source) };
  const walk = walkDataPath(graph, new ParamTable(graph, source, externalDir), source, warnings);
  const arch = architectureOf(walk);
  const { labels, meta } = metadataOf(model, arch.numClasses, warnings);
  return {
    arch: { depth: arch.depth, batchNorm: arch.batchNorm },
    numClasses: arch.numClasses,
    tensors: canonicalTensors(walk, arch),
    opset,
    producer: producerOf(model),
    warnings,
    ...(labels ? { labels } : {}),
    ...(meta ? { meta } : {}),
    ...(walk.ceilMode !== undefined ? { ceilMode: walk.ceilMode } : {}),
    ...(arch.batchNorm ? { bnEpsilon: walk.bnEps } : {}),
  };
}
