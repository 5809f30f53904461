// Reads VGG weights out of an ONNX model (a plain .onnx file or an ONNX-zoo
// `.model` zip archive) into canonical mmcls names.
//
// Weights are found by walking the image tensor's path through the graph,
// never by initializer names: exporters name things freely (`vgg0_conv0_weight`,
// `features.0.conv.weight`, `onnx::Conv_87`), but the op sequence of a VGG is
// fixed. The walk follows the one data tensor from the image input through
// Conv [BatchNormalization] Relu ... MaxPool ... Flatten/Reshape, Gemm (or
// MatMul + Add) ... and checks the result against the per-depth table.
//
// Choices worth knowing:
// - torch.onnx.export in eval mode folds BatchNorm into the convolutions by
//   default; such a file is read as a VGG without BN (batchNorm: false). The
//   numbers are the folded ones, so the logits still match the original.
// - A graph without dense layers (mmcls num_classes <= 0, a feature
//   extractor) is read with numClasses 0 and no classifier tensors.
// - Every attribute met on the path either shapes what is read (BN epsilon
//   folded into running_var, Gemm alpha/beta/transB folded into the weights,
//   MaxPool ceil_mode into the model's ceilMode) or refuses the file with
//   code UNSUPPORTED_ATTRIBUTE naming the node; unknown attributes refuse too.
// - Before the walk, calls of local functions (ModelProto.functions) are
//   replaced by the functions' bodies and the nodes sorted (Kahn), so files
//   from export_modules_as_functions or with nodes out of order read alike.
// - A Reshape is read as the flatten only when its target, constant or
//   computed by a Shape/Gather/Unsqueeze/Concat/Slice/Mul subgraph, provably
//   is [N, C*H*W]; other targets refuse the file (UNSUPPORTED_OP).
// - float16 models read exactly (FLOAT16 -> float32 as numpy's astype); Casts
//   between float types are read as Identity, with a warning that the model
//   computes in float32 where the graph rounds to float16.
// - Non-fatal oddities (opset outside 7..20, a trailing Softmax, alpha/beta
//   folding, float16 computation) are recorded in `warnings`; vgg() shows
//   them in weightsInfo.
//
// Layout: onnx/archive (.model zip), onnx/proto (protobuf decoding and node
// attributes), onnx/inline and onnx/function-defaults (local functions),
// onnx/topo (node order), onnx/walk (the graph walk) with one handler per op
// in onnx/ops-trunk, onnx/ops-head and onnx/ops-reshape (whose target
// onnx/shape-values computes), onnx/params, onnx/tensor-data, onnx/int-data
// and onnx/cast (tensor values), onnx/assemble (canonical tensors). This file
// picks the container.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { invalidType } from '../../validate';
import { readArchive } from './archive';
import { readModel } from './model';
import type { OnnxWeights } from './types';
import { SIG, bufferSource, fileSource, type ByteSource } from '../zip';

export { OnnxFormatError, type OnnxErrorCode } from '../errors';
export { parseSynset } from './archive';
export type { OnnxWeights } from './types';

/** A zip's first record (local header), or the end record of an empty archive. */
async function isZip(source: ByteSource): Promise<boolean> {
  const head = Buffer.alloc(Math.min(4, source.size));
  const got = await source.read(head, 0);
  if (got < 4) return false;
  const sig = head.readUInt32LE(0);
  return sig === SIG.LOCAL || sig === SIG.END;
}

/** A file: a .model archive is read entry by entry; a .onnx whole (protobuf decodes from memory). */
async function readOnnxFile(file: string): Promise<OnnxWeights> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const source = await fileSource(fh);
    if (await isZip(source)) return await readArchive(source, file);
    // allocUnsafe: only the bytes read are handed on.
    const bytes = Buffer.allocUnsafe(source.size);
    const got = await source.read(bytes, 0);
    return readModel(bytes.subarray(0, got), file, path.dirname(path.resolve(file)));
  } finally {
    await fh.close();
  }
}

/**
 * Reads VGG weights from an ONNX file or `.model` zip archive (detected by
 * content, not extension).
 * @param input - path of a .onnx or .model file, or its bytes (external
 * tensor data can only be found from a path)
 * @returns the architecture, canonical mmcls tensors, labels from a
 * .model's synset.txt, opset, producer, BN epsilon, ceil mode and warnings
 * @throws TypeError (code ERR_INVALID_ARG_TYPE) when `input` is neither;
 * OnnxFormatError NOT_ONNX, BAD_ARCHIVE, NOT_VGG, UNSUPPORTED_OP,
 * UNSUPPORTED_ATTRIBUTE, MISSING_INITIALIZER, BAD_TENSOR, EXTERNAL_DATA; the
 * system's error (ENOENT, ...) when the file cannot be opened.
 */
export async function readOnnx(input: string | Buffer): Promise<OnnxWeights> {
  if (typeof input === 'string') return readOnnxFile(input);
  if (!Buffer.isBuffer(input)) throw invalidType('input', 'a file path or Buffer', input);
  const source = bufferSource(input);
  if (await isZip(source)) return readArchive(source, '<buffer>');
  return readModel(input, '<buffer>', undefined);
}
