// One ONNX ModelProto to VGG weights: decode, walk the data path, assemble
// canonical tensors. The archive reader and readOnnx both end here.
import { MAX_OPSET, MIN_OPSET } from './limits';
import { architectureOf, canonicalTensors } from './assemble';
import { ParamTable } from './params';
import { decodeModel, defaultOpset, producerOf } from './proto';
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
  const graph = model.graph!;
  const walk = walkDataPath(graph, new ParamTable(graph, source, externalDir), source, warnings);
  const arch = architectureOf(walk);
  return {
    arch: { depth: arch.depth, batchNorm: arch.batchNorm },
    numClasses: arch.numClasses,
    tensors: canonicalTensors(walk, arch),
    opset,
    producer: producerOf(model),
    warnings,
    ...(walk.ceilMode !== undefined ? { ceilMode: walk.ceilMode } : {}),
    ...(arch.batchNorm ? { bnEpsilon: walk.bnEps } : {}),
  };
}
