// What the ONNX writer is given (everything the model knows that changes the
// graph or that a user of the file needs to feed it), and its one-time check.
import { type ArchSpec, type BackboneOptions, STAGE_BLOCKS, STAGE_WIDTHS, archName, convSlots, stateShapes } from '../../../arch';
import type { NamedTensor } from '../../../binding';
import { IMAGENET_MEAN, IMAGENET_STD, type Interpolation, type ResizeMode } from '../../../image/options';
import {
  checkBoolean,
  checkInteger,
  checkIntegerList,
  checkLabels,
  checkObject,
  checkOneOf,
  checkSize,
  checkTriple,
  invalidRange,
  invalidType,
  orDefault,
} from '../../../validate';
import { CheckpointError } from '../../errors';

/** The backbone options that change the exported graph (a model's full {@link BackboneOptions} fits). */
export type OnnxBackboneOptions = Pick<BackboneOptions, 'ceilMode' | 'withLastPool' | 'dilations'>;

/**
 * How images become the graph's input, recorded in the file's metadata_props
 * (the graph itself starts at the normalised tensor). The package's
 * conventions: RGB, NCHW, `(pixel - mean) / std` with pixels on the 0..255
 * scale ({@link IMAGENET_MEAN}, {@link IMAGENET_STD} by default).
 */
export interface OnnxPreprocessing {
  /** Side of the square input, or [height, width], in pixels, each an integer in 32..16384: the graph's fixed H and W. Default: 224. */
  inputSize?: number | readonly [number, number];
  /**
   * 'short': short side to `resizeShort` (aspect kept), then a centre crop of
   * inputSize; 'squash': straight to inputSize (see {@link InputPipeline}). Default: 'short'.
   */
  resize?: ResizeMode;
  /** Short side before the crop in 'short' mode, pixels. Default: round(min(H, W) * 256 / 224) (256 at 224). */
  resizeShort?: number;
  /** Per-channel RGB mean on the 0..255 scale. Default: [123.675, 116.28, 103.53] (ImageNet's). */
  mean?: readonly [number, number, number];
  /** Per-channel RGB standard deviation on the 0..255 scale, each positive. Default: [58.395, 57.12, 57.375] (ImageNet's). */
  std?: readonly [number, number, number];
  /** Resampling filter of the resize. Default: 'bilinear'. */
  interpolation?: Interpolation;
}

/**
 * What makes the export the int8 QDQ form (ONNX QuantizeLinear /
 * DequantizeLinear pairs around float operators, the format onnxruntime's
 * `quantize_static` writes and fuses into QLinearConv;
 * https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html).
 * Weights are quantized by the writer (per output channel, symmetric int8,
 * batch norm folded first); activations need calibrated scales, given here.
 */
export interface OnnxQuantization {
  /**
   * One per-tensor scale per convolution input, in convolution order, then
   * optionally one for the last convolution's output: length = number of
   * convolutions (8, 10, 13 or 16 for VGG-11/13/16/19), or that + 1. Index 0 is the first convolution's
   * input, the normalised image, quantized SIGNED (int8, zero point 0:
   * symmetric, e.g. max|x| / 127); index k in 1..n-1 the input of
   * convolution k (after the previous ReLU and pool: non-negative, uint8,
   * zero point 0, e.g. max x / 255), which is also the scale of convolution
   * k-1's output (a max pool keeps the scale); index n, optional, the last
   * convolution's output after its ReLU (uint8; without it that output stays
   * float32, as the package's int8 engine computes it). Each a positive finite number that float32
   * holds as a normal number (2^-126 to 3.4e38); written as float32 (the
   * ONNX scale type), so the file holds Math.fround of each.
   */
  activationScales: readonly number[];
}

/**
 * Everything {@link writeOnnx} writes: the architecture, the weights, the
 * options that shape the graph, and what a user of the file needs to feed it.
 * With `quantization` the graph is the int8 QDQ form (see {@link OnnxQuantization}).
 */
export interface OnnxExportContent {
  /** Depth and batch norm ({@link Vgg.spec}). */
  arch: ArchSpec;
  /** Width of the logits; 0 = no classifier (the graph's output is then the last stage's map, as `forward()` returns it). */
  numClasses: number;
  /** ceilMode, withLastPool and dilations as the model was built (a model's full BackboneOptions may be passed). Default: mmcls's (false, true, [1, 1, 1, 1, 1]). */
  backbone?: Partial<OnnxBackboneOptions>;
  /**
   * The model's state as {@link Vgg.stateDict} gives it: canonical mmcls
   * names without `backbone.`, float32 row-major data (batch norm's int64
   * `num_batches_tracked` may be present; it is not written: it plays no part
   * at inference). Written straight from these arrays, not copied.
   */
  state: readonly NamedTensor[];
  /** How images are resized and normalised; see {@link OnnxPreprocessing} for the defaults. */
  preprocessing?: OnnxPreprocessing;
  /** Class names, one per class, written to metadata_props `labels`. Default: none. */
  labels?: readonly string[];
  /** More metadata_props entries, each value JSON-encoded (the package's own keys win). Default: none. */
  meta?: Readonly<Record<string, unknown>>;
  /** Activation scales of the int8 QDQ form; see {@link OnnxQuantization}. Default: none (the float32 graph). */
  quantization?: OnnxQuantization;
}

/** {@link OnnxExportContent} checked, with every default applied. */
export interface ResolvedExportContent {
  arch: ArchSpec;
  numClasses: number;
  backbone: OnnxBackboneOptions;
  /** In state_dict order, float32 only: exactly the tensors the graph reads. */
  state: NamedTensor[];
  preprocessing: {
    inputSize: [number, number];
    resize: ResizeMode;
    /** undefined in 'squash' mode. */
    resizeShort?: number;
    mean: [number, number, number];
    std: [number, number, number];
    interpolation: Interpolation;
  };
  labels?: string[];
  meta: Record<string, unknown>;
  /** A copy of the scales (later changes to the caller's array do not reach the file). */
  quantization?: { activationScales: number[] };
}

/** Smallest side the model's forward takes (five 2x2 pools must leave a pixel). */
const MIN_SIDE = 32;
const MAX_SIDE = 16384;
const MAX_CLASSES = 1_000_000;
const RESIZE_MODES: readonly ResizeMode[] = ['short', 'squash'];
const INTERPOLATIONS: readonly Interpolation[] = ['bilinear', 'bicubic', 'nearest', 'lanczos'];

function checkArch(v: unknown): ArchSpec {
  const o = checkObject('content.arch', v);
  if (v === undefined) throw invalidType('content.arch', 'an object { depth, batchNorm }', v);
  const depth = o.depth;
  if (typeof depth !== 'number') throw invalidType('content.arch.depth', '11, 13, 16 or 19', depth);
  if (!(depth in STAGE_BLOCKS)) throw invalidRange('content.arch.depth', '11, 13, 16 or 19', depth);
  return { depth: depth as ArchSpec['depth'], batchNorm: checkBoolean('content.arch.batchNorm', o.batchNorm) };
}

function checkBackbone(v: unknown): OnnxBackboneOptions {
  const o = checkObject('content.backbone', v);
  return {
    ceilMode: orDefault(o.ceilMode, false, (x) => checkBoolean('content.backbone.ceilMode', x)),
    withLastPool: orDefault(o.withLastPool, true, (x) => checkBoolean('content.backbone.withLastPool', x)),
    dilations: orDefault(o.dilations, [1, 1, 1, 1, 1], (x) => checkIntegerList('content.backbone.dilations', x, 1, 16, STAGE_WIDTHS.length)),
  };
}

function checkPreprocessing(v: unknown): ResolvedExportContent['preprocessing'] {
  const o = checkObject('content.preprocessing', v);
  const inputSize = orDefault<[number, number]>(o.inputSize, [224, 224], (x) => checkSize('content.preprocessing.inputSize', x, MAX_SIDE));
  inputSize.forEach((side, i) => checkInteger(`content.preprocessing.inputSize[${i}]`, side, MIN_SIDE, MAX_SIDE));
  const resize = orDefault(o.resize, 'short' as ResizeMode, (x) => checkOneOf('content.preprocessing.resize', x, RESIZE_MODES));
  const defaultShort = Math.round((Math.min(...inputSize) * 256) / 224);
  const resizeShort =
    resize === 'short'
      ? orDefault(o.resizeShort, defaultShort, (x) => checkInteger('content.preprocessing.resizeShort', x, Math.min(...inputSize), 65536))
      : undefined;
  return {
    inputSize,
    resize,
    ...(resizeShort !== undefined ? { resizeShort } : {}),
    mean: orDefault(o.mean, [...IMAGENET_MEAN] as [number, number, number], (x) => checkTriple('content.preprocessing.mean', x, false)),
    std: orDefault(o.std, [...IMAGENET_STD] as [number, number, number], (x) => checkTriple('content.preprocessing.std', x, true)),
    interpolation: orDefault(o.interpolation, 'bilinear' as Interpolation, (x) =>
      checkOneOf('content.preprocessing.interpolation', x, INTERPOLATIONS),
    ),
  };
}

/** Smallest normal float32 (2^-126): below it a scale loses precision, then becomes 0 in the file. */
const MIN_SCALE = 2 ** -126;

/** The activation scales: an array of convolutions + 1 positive finite numbers that float32 holds. */
function checkQuantization(arch: ArchSpec, v: unknown): ResolvedExportContent['quantization'] {
  const o = checkObject('content.quantization', v);
  const param = 'content.quantization.activationScales';
  const scales = o.activationScales;
  const convs = convSlots(arch.depth).length;
  const want = convs + 1;
  if (!Array.isArray(scales))
    throw invalidType(param, `an array of ${want} positive numbers (one per convolution input, then the last convolution's output)`, scales);
  if (scales.length !== want && scales.length !== convs) {
    throw invalidRange(
      param,
      `${convs} or ${want} scales for ${archName(arch)} (its ${convs} convolutions' inputs, then optionally the last one's output)`,
      scales,
    );
  }
  scales.forEach((s: unknown, i) => {
    if (typeof s !== 'number') throw invalidType(`${param}[${i}]`, 'a positive finite number', s);
    // NaN fails both comparisons; fround catches what overflows float32.
    if (!(s >= MIN_SCALE) || !Number.isFinite(Math.fround(s))) {
      throw invalidRange(`${param}[${i}]`, `a positive finite number that float32 holds (${MIN_SCALE} to 3.4028234663852886e+38)`, s);
    }
  });
  return { activationScales: [...(scales as number[])] };
}

/**
 * The float32 tensors the graph reads, in state_dict order, each checked
 * against the architecture's table (src/arch.ts stateShapes).
 * @throws CheckpointError STATE_MISMATCH for a missing, unknown, mis-shaped or non-float32 tensor.
 */
function checkState(file: string, arch: ArchSpec, numClasses: number, v: unknown): NamedTensor[] {
  if (!Array.isArray(v)) throw invalidType('content.state', 'an array of named tensors (model.stateDict())', v);
  const given = new Map<string, NamedTensor>();
  for (const [i, t] of (v as unknown[]).entries()) {
    const ok = typeof t === 'object' && t !== null && typeof (t as NamedTensor).name === 'string' && ArrayBuffer.isView((t as NamedTensor).data);
    if (!ok) throw invalidType(`content.state[${i}]`, 'a named tensor { name, dtype, shape, data }', t);
    given.set((t as NamedTensor).name, t as NamedTensor);
  }
  const expected = stateShapes(arch, numClasses);
  const problems: string[] = [];
  const known = new Set(expected.map((e) => e.name));
  const unknown = [...given.keys()].filter((n) => !known.has(n));
  if (unknown.length) problems.push(`unknown: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', ...' : ''}`);
  const out: NamedTensor[] = [];
  for (const e of expected) {
    if (e.name.endsWith('.num_batches_tracked')) continue;
    const t = given.get(e.name);
    if (!t) {
      problems.push(`missing: ${e.name}`);
      continue;
    }
    const n = e.shape.reduce((a, b) => a * b, 1);
    const shapeOk = Array.isArray(t.shape) && t.shape.length === e.shape.length && t.shape.every((d, i) => d === e.shape[i]);
    if (!(t.data instanceof Float32Array) || !shapeOk || t.data.length !== n) {
      problems.push(`${e.name}: expected float32 [${e.shape}] but got ${t.data.constructor.name} [${t.shape}] with ${t.data.length} values`);
      continue;
    }
    out.push(t);
  }
  if (problems.length) {
    throw new CheckpointError(
      'STATE_MISMATCH',
      `cannot export ${archName(arch)} (numClasses ${numClasses}) to ${file}: the state does not fit (${problems.slice(0, 6).join('; ')}${problems.length > 6 ? '; ...' : ''})`,
      file,
    );
  }
  return out;
}

/**
 * Checks the content once and applies the defaults.
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a malformed member;
 * CheckpointError STATE_MISMATCH when the state does not fit the architecture.
 */
export function resolveExportContent(file: string, content: OnnxExportContent): ResolvedExportContent {
  const c = checkObject('content', content);
  if (content === undefined) throw invalidType('content', 'an object', content);
  const arch = checkArch(c.arch);
  const numClasses = checkInteger('content.numClasses', c.numClasses, 0, MAX_CLASSES);
  let labels: string[] | undefined;
  if (c.labels !== undefined) {
    if (numClasses === 0) throw invalidRange('content.labels', 'no labels for a model without classifier (numClasses 0)', c.labels);
    labels = checkLabels('content.labels', c.labels, numClasses);
  }
  return {
    arch,
    numClasses,
    backbone: checkBackbone(c.backbone),
    state: checkState(file, arch, numClasses, c.state),
    preprocessing: checkPreprocessing(c.preprocessing),
    ...(labels ? { labels } : {}),
    meta: { ...checkObject('content.meta', c.meta) },
    ...(c.quantization !== undefined ? { quantization: checkQuantization(arch, c.quantization) } : {}),
  };
}
