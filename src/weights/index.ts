// One door for every weight file: detects the format by content, reads it
// with the right reader and returns canonical tensors (mmcls names without
// `backbone.`) plus the inferred architecture.
import type { ArchSpec } from '../arch';
import type { NamedTensorSource, TensorSource } from '../binding';
import { CheckpointError } from './errors';
import { checkAgainst, describeCheck, type StateCheck } from './layout';
import { interpretCheckpoint, type EmaInfo, type InterpretOptions } from './layout';
import { readOnnxInWorker } from './onnx/thread';
import { OP } from './pickle';
import { readPth } from './pth';
import { readSafetensors } from './safetensors';
import { holdsTorchPickle } from './pth/zip-checkpoint';
import { checkString } from '../validate';
import { readHead } from '../fs/file-head';

export { CheckpointError } from './errors';
export { OnnxFormatError } from './onnx';

/** Which container a weights file was: torch.save zip or legacy, a TorchScript archive (torch.jit.save), safetensors, a plain .onnx, or an ONNX zoo .model archive. */
export type WeightsFormat = 'pth-zip' | 'pth-legacy' | 'torchscript' | 'safetensors' | 'onnx' | 'onnx-model';

/** What {@link readWeights} found in a weights file. */
export interface LoadedWeights {
  /** The container, detected from the content (not the file name). */
  format: WeightsFormat;
  /** Naming the file used: 'mmcls', 'timm', 'torchvision' (.pth, .safetensors) or 'onnx'. */
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
  /** EMA weights the file holds beside the live ones, and whether they were read ({@link ReadWeightsOptions.ema}). */
  ema?: EmaInfo;
}

/** Options of {@link readWeights}. */
export type ReadWeightsOptions = InterpretOptions;

/** Magic of a zip's first record: torch.save's archive or the ONNX zoo's .model. */
const ZIP_MAGIC = [0x50, 0x4b];
/** Bytes read to tell the formats apart: safetensors' 8-byte header length and the JSON's first byte. */
const SNIFF_BYTES = 9;
/** First bytes of a serialised ONNX ModelProto: the tag of one of its fields (ir_version, producer_*, domain, model_version, doc_string, graph, opset_import, metadata_props, training_info, functions). */
const ONNX_FIRST_TAGS = new Set([0x08, 0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72, 0x82, 0x9a]);

/** The file's first bytes, or UNREADABLE saying why there are none. */
async function magicOf(file: string): Promise<Buffer> {
  try {
    return await readHead(file, SNIFF_BYTES);
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

/** safetensors: a little-endian u64 header length (under 2^32: its high bytes zero, so no ONNX tag can pass), then the JSON header's '{'. */
function looksLikeSafetensors(head: Buffer): boolean {
  return head.length >= SNIFF_BYTES && head[8] === 0x7b && head.readUInt32LE(4) === 0;
}

async function readTorch(file: string, options: ReadWeightsOptions): Promise<LoadedWeights> {
  const { format, object } = await readPth(file);
  return fromStateDict(format === 'zip' ? 'pth-zip' : format === 'torchscript' ? 'torchscript' : 'pth-legacy', object, file, options);
}

/** A state_dict-like object (unpickled, or a safetensors file's tensors) as loaded weights. */
function fromStateDict(format: WeightsFormat, object: unknown, file: string, options: ReadWeightsOptions, labels?: string[]): LoadedWeights {
  const c = interpretCheckpoint<TensorSource>(object, file, options);
  return {
    format,
    layout: c.layout,
    arch: c.arch,
    numClasses: c.numClasses,
    tensors: new Map(c.tensors),
    labels: c.labels ?? labels,
    meta: c.meta,
    warnings: [],
    ...(c.ema ? { ema: c.ema } : {}),
  };
}

/** Class names our own safetensors writer keeps in `__metadata__.labels` (a JSON array). */
function labelsInMetadata(metadata: Record<string, string>): string[] | undefined {
  if (metadata.labels === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(metadata.labels);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A `__metadata__` value: our writer JSON-encodes what is not a string (numbers, the input pipeline, the calibration). */
function jsonOrText(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

async function readSafetensorsWeights(file: string, options: ReadWeightsOptions): Promise<LoadedWeights> {
  const { tensors, metadata } = await readSafetensors(file);
  const w = fromStateDict('safetensors', tensors, file, options, labelsInMetadata(metadata));
  if (Object.keys(metadata).length) w.meta = Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, jsonOrText(v)]));
  return w;
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
    ...(w.meta ? { meta: w.meta } : {}),
    ...(w.ceilMode !== undefined ? { ceilMode: w.ceilMode } : {}),
  };
}

/** What a file that is none of ours looks like, for the message. */
function describeUnknown(head: Buffer): string {
  const text = head.toString('latin1');
  if (text.startsWith('GGUF')) return 'a GGUF file';
  if (text.startsWith('\x89HDF')) return 'an HDF5 file (Keras .h5?)';
  if (text.startsWith('{') || text.startsWith('[')) return 'a JSON file';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'a gzip file';
  if (text.startsWith('\x93NUMPY')) return 'a NumPy .npy file';
  return `a file starting with bytes ${head.subarray(0, 4).toString('hex')}`;
}

/**
 * Reads a weights file, detecting its format by content: a torch.save .pth
 * (zip or legacy; also a TorchScript archive's tensors), a .safetensors file
 * (huggingface/safetensors), or an ONNX .onnx / zoo .model; in mmcls,
 * timm or torchvision naming, bare or inside a trainer's checkpoint (Lightning,
 * mmengine, timm's train.py, `_orig_mod.`/`module.` wrappers). Tensors of a
 * .pth or .safetensors stay in the file (read later straight into the model);
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
 * @param options - `ema: true` reads the EMA weights a checkpoint holds beside the live ones (default false)
 * @returns the format, the architecture and classes the tensors imply,
 * canonical tensors (mmcls names without `backbone.`), labels, meta, warnings, EMA info
 * @throws TypeError (code ERR_INVALID_ARG_TYPE) when `file` is not a non-empty string; the promise rejects.
 * @throws {@link CheckpointError} UNREADABLE (missing or unopenable), TRUNCATED (empty),
 * UNKNOWN_FORMAT (none of the formats above); for a .pth BAD_MAGIC, BAD_ZIP, FORBIDDEN_GLOBAL,
 * PICKLED_MODULE (a whole `nn.Module` pickled), FORBIDDEN_OPCODE, BAD_PICKLE, LIMIT, BAD_STORAGE, BAD_TENSOR,
 * UNSUPPORTED_DTYPE, UNKNOWN_LAYOUT;
 * for a .safetensors BAD_HEADER, BAD_OFFSETS, UNSUPPORTED_DTYPE, LIMIT, BAD_TENSOR, UNKNOWN_LAYOUT.
 * @throws {@link OnnxFormatError} NOT_ONNX, BAD_ARCHIVE, NOT_VGG, UNSUPPORTED_OP,
 * UNSUPPORTED_ATTRIBUTE, MISSING_INITIALIZER, BAD_TENSOR, EXTERNAL_DATA,
 * READER_EXITED for an ONNX file.
 */
export async function readWeights(file: string, options: ReadWeightsOptions = {}): Promise<LoadedWeights> {
  checkString('file', file);
  const head = await magicOf(file);
  if (head.length === 0) throw new CheckpointError('TRUNCATED', `weights file ${file} is empty`, file);
  if (head[0] === ZIP_MAGIC[0] && head[1] === ZIP_MAGIC[1]) {
    // A zip: torch.save's or torch.jit.save's (data.pkl inside) or the ONNX zoo's .model archive.
    return (await holdsTorchPickle(file)) ? readTorch(file, options) : readOnnxWeights(file, true);
  }
  // Before the pickle test: a header length's low byte may be 0x80, pickle's PROTO (a legacy pickle's bytes 4-7 are its magic number, never 0).
  if (looksLikeSafetensors(head)) return readSafetensorsWeights(file, options);
  if (head[0] === OP.PROTO) return readTorch(file, options); // a pickle stream: legacy torch.save
  if (ONNX_FIRST_TAGS.has(head[0])) return readOnnxWeights(file, false);
  throw new CheckpointError(
    'UNKNOWN_FORMAT',
    `${file} is ${describeUnknown(head)}, not a weights file vgg-native reads: a torch.save .pth (zip or legacy), a .safetensors, an .onnx or an ONNX zoo .model`,
    file,
  );
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
