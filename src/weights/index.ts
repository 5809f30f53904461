// One door for every weight file: detects the format by content, reads it
// with the right reader and returns canonical tensors (mmcls names without
// `backbone.`) plus the inferred architecture.
import type { ArchSpec } from '../arch';
import type { NamedTensorSource, TensorSource } from '../binding';
import { CheckpointError } from './errors';
import { checkAgainst, describeCheck, type StateCheck } from './layout';
import { interpretCheckpoint } from './layout';
import { readOnnxInWorker } from './onnx/thread';
import { OP } from './pickle';
import { readPth, type TensorRef } from './pth';
import { holdsTorchPickle } from './pth/zip-checkpoint';
import { checkString } from '../validate';
import { readHead } from '../fs/file-head';

export { CheckpointError } from './errors';
export { OnnxFormatError } from './onnx';

/** Which container a weights file was: torch.save zip or legacy, a plain .onnx, or an ONNX zoo .model archive. */
export type WeightsFormat = 'pth-zip' | 'pth-legacy' | 'onnx' | 'onnx-model';

/** What {@link readWeights} found in a weights file. */
export interface LoadedWeights {
  /** The container, detected from the content (not the file name). */
  format: WeightsFormat;
  /** Naming the file used: 'mmcls', 'torchvision' (.pth) or 'onnx'. */
  layout: string;
  /** The architecture the tensors imply: depth from the convolutions per stage, batch norm from the BN tensors. */
  arch: ArchSpec;
  /** Outputs of the classifier; 0 for a feature extractor without one. */
  numClasses: number;
  /** Canonical name (mmcls, without `backbone.`) → where its values are: a file region (.pth) or memory (ONNX). */
  tensors: Map<string, TensorSource>;
  /** Class names (mmcls meta CLASSES, or a .model's synset.txt). */
  labels?: string[];
  /** The .pth checkpoint's meta (mmcls: config, epoch, CLASSES, ...; vgg-native also input_size, input_resize), as plain values. */
  meta?: Record<string, unknown>;
  /** Pooling the graph asks for (ONNX MaxPool ceil_mode); undefined = the file does not say. */
  ceilMode?: boolean;
  /** Things that did not stop the read but may matter (ONNX opset, folded attributes, dropped labels). */
  warnings: string[];
}

/** Magic of a zip's first record: torch.save's archive or the ONNX zoo's .model. */
const ZIP_MAGIC = [0x50, 0x4b];

/** The file's first bytes, or UNREADABLE saying why there are none. */
async function magicOf(file: string): Promise<Buffer> {
  try {
    return await readHead(file, 4);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new CheckpointError(
      'UNREADABLE',
      missing ? `weights file not found: ${file}` : `cannot read weights file ${file}: ${(e as Error).message}`,
      file,
      { cause: e },
    );
  }
}

async function readTorch(file: string): Promise<LoadedWeights> {
  const { format, object } = await readPth(file);
  const c = interpretCheckpoint<TensorRef>(object, file);
  return {
    format: format === 'zip' ? 'pth-zip' : 'pth-legacy',
    layout: c.layout,
    arch: c.arch,
    numClasses: c.numClasses,
    tensors: new Map(c.tensors),
    labels: c.labels,
    meta: c.meta,
    warnings: [],
  };
}

async function readOnnxWeights(file: string, archive: boolean): Promise<LoadedWeights> {
  const w = await readOnnxInWorker(file);
  return {
    format: archive ? 'onnx-model' : 'onnx',
    layout: 'onnx',
    arch: w.arch,
    numClasses: w.numClasses,
    tensors: new Map(w.tensors.map((t) => [t.name, t.tensor])),
    labels: w.labels,
    warnings: w.warnings,
    ...(w.ceilMode !== undefined ? { ceilMode: w.ceilMode } : {}),
  };
}

/**
 * Reads a weights file, detecting its format by content: a torch.save .pth
 * (zip or legacy; mmcls or torchvision names) or an ONNX .onnx / zoo .model.
 * Tensors of a .pth stay in the file (read later straight into the model);
 * ONNX tensors are decoded in a worker thread. The .pth reader executes only
 * an allow-list of pickle globals, as `torch.load(weights_only=True)` does.
 * No model is built: use it to inspect a file, or feed `tensors` to
 * {@link Vgg.loadStateDict}.
 *
 * @example
 * ```ts
 * import { readWeights } from 'vgg-native';
 *
 * const w = await readWeights('vgg16_batch256_imagenet_20210208-db26f1a5.pth');
 * console.log(w.format, w.layout, w.arch, w.numClasses, w.labels?.[0]); // 'pth-zip' 'mmcls' { depth: 16, batchNorm: false } 1000 ...
 * ```
 * @param file - path of the weights file
 * @returns the format, the architecture and classes the tensors imply,
 * canonical tensors (mmcls names without `backbone.`), labels, meta, warnings
 * @throws TypeError (code ERR_INVALID_ARG_TYPE) when `file` is not a non-empty string; the promise rejects.
 * @throws {@link CheckpointError} UNREADABLE (missing or unopenable), TRUNCATED (empty),
 * and for a .pth BAD_MAGIC, BAD_ZIP, FORBIDDEN_GLOBAL, FORBIDDEN_OPCODE,
 * BAD_PICKLE, LIMIT, BAD_STORAGE, BAD_TENSOR, UNKNOWN_LAYOUT.
 * @throws {@link OnnxFormatError} NOT_ONNX, BAD_ARCHIVE, NOT_VGG, UNSUPPORTED_OP,
 * UNSUPPORTED_ATTRIBUTE, MISSING_INITIALIZER, BAD_TENSOR, EXTERNAL_DATA,
 * READER_EXITED for an ONNX file.
 */
export async function readWeights(file: string): Promise<LoadedWeights> {
  checkString('file', file);
  const magic = await magicOf(file);
  if (magic.length === 0) throw new CheckpointError('TRUNCATED', `weights file ${file} is empty`, file);
  if (magic[0] === ZIP_MAGIC[0] && magic[1] === ZIP_MAGIC[1]) {
    // A zip: torch.save's (data.pkl inside) or the ONNX zoo's .model archive.
    return (await holdsTorchPickle(file)) ? readTorch(file) : readOnnxWeights(file, true);
  }
  if (magic[0] === OP.PROTO) return readTorch(file); // a pickle stream: legacy torch.save
  return readOnnxWeights(file, false);
}

function shapeOf(t: TensorSource): number[] {
  return t.shape;
}

/** Compares tensors to the model's state; one error listing every problem, or null. */
export function checkStateAgainstModel(
  modelState: Array<{ name: string; shape: number[] }>,
  entries: NamedTensorSource[],
  options: { strict: boolean; file?: string },
): CheckpointError | null {
  const got = new Map(entries.map((e) => [e.name, { shape: shapeOf(e.tensor) }]));
  const check: StateCheck = checkAgainst(modelState, got, { strict: options.strict });
  if (check.ok) return null;
  return new CheckpointError('STATE_MISMATCH', describeCheck(check, options.file ?? 'state dict', options), options.file);
}

/** The entries that fit the model (name known, shape equal) and what was left out. */
export function partitionForModel(
  modelState: Array<{ name: string; shape: number[] }>,
  entries: NamedTensorSource[],
): { fit: NamedTensorSource[]; skipped: string[]; missing: string[] } {
  const check = checkAgainst(modelState, new Map(entries.map((e) => [e.name, { shape: shapeOf(e.tensor) }])), { strict: false });
  const bad = new Set([...check.unexpected, ...check.mismatched.map((m) => m.name)]);
  return { fit: entries.filter((e) => !bad.has(e.name)), skipped: [...bad], missing: check.missing };
}
