// VggOptions: the public options of vgg(), checked once and resolved into
// the native model's config.
import { ARCHITECTURES, isArchitecture, type Architecture } from './arch';
import type { NativeModelConfig } from './binding';
import type { DownloadProgress } from './hub/download';
import { resolveBatchingOptions, type BatchingOptions, type ResolvedBatching } from './inference/batcher';
import { runtime } from './runtime';
import {
  checkBoolean,
  checkInteger,
  checkIntegerList,
  checkNumber,
  checkObject,
  checkString,
  invalidRange,
  invalidType,
  keysOf,
  orDefault,
} from './validate';

/**
 * Where a model lives: 'auto' (CUDA when this LibTorch has it and a GPU is
 * visible, else the CPU), 'cpu', 'cuda' (the current CUDA device) or
 * 'cuda:N' (device N, 0-based).
 */
export type Device = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

/**
 * Options of {@link vgg}. Every option is checked before any file is read or
 * native code runs; an unknown key is a RangeError 'ERR_OUT_OF_RANGE' (even
 * with the value undefined). The mmcls backbone options (outIndices,
 * frozenStages, normEval, ceilMode, withLastPool, dilations) mean what they
 * mean in mmcls's `VGG` backbone.
 */
export interface VggOptions {
  /**
   * The weights: a file (mmcls/timm/torchvision .pth, zip or legacy, bare or
   * in a trainer's checkpoint; a TorchScript archive; .safetensors; ONNX .onnx;
   * the ONNX zoo's .model), or published ImageNet weights fetched into the cache:
   * 'imagenet' (the default source, mmcls), 'mmcls', 'torchvision',
   * 'onnx-zoo' or 'timm' for the architecture asked for, a registry key such as
   * 'vgg16_bn.torchvision' (see listWeights()), or an http(s) URL (optionally
   * ending in #sha256=<hex>). These names are tried before a file of the same name.
   * The architecture is read from the file. Default: none (random
   * initialisation, mmcls's scheme).
   */
  weights?: string;
  /**
   * Load the exponential-moving-average weights a checkpoint holds beside the
   * live ones (timm's `state_dict_ema`, `ema_state_dict`, `ema.`-prefixed keys,
   * mmcv's `ema_` buffers); `weightsInfo.ema` says which set was loaded and
   * where the EMA copy was. true with a file that holds none is a
   * CheckpointError 'UNKNOWN_LAYOUT'. Default: false (the live weights).
   */
  ema?: boolean;
  /** Called while `weights` downloads (registry weights or a URL not yet cached), at most every 50 ms and once at the end. Default: none. */
  onDownloadProgress?: (progress: DownloadProgress) => void;
  /**
   * Classes of the last layer, an integer in 0..1000000; 0 builds the backbone
   * only (no fc6, fc7, logits). A value other than the checkpoint's
   * re-initialises the last Linear (listed in `weightsInfo.skipped`).
   * Default: the checkpoint's, else 1000.
   */
  numClasses?: number;
  /** 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'. Default: 'auto'. */
  device?: Device;
  /** LibTorch intra-op threads, an integer in 1..1024; process-wide, as {@link setThreads}. Default: unchanged (the CPU count unless set). */
  threads?: number;
  /**
   * mmcls out_indices: the stages {@link Vgg.forwardStages} returns, integers
   * 0..4 for stage1..stage5 and 5 for the logits (not with numClasses 0).
   * Default: mmcls's, [5] (the logits), or [4] (stage5) when numClasses is 0.
   */
  outIndices?: number[];
  /** mmcls frozen_stages, an integer in -1..5: stages 0..n-1 get no gradient and stay in eval mode; -1 freezes nothing. Default: -1. */
  frozenStages?: number;
  /** mmcls norm_eval: batch norm stays in eval mode (running statistics frozen) while training. Default: false. */
  normEval?: boolean;
  /** MaxPool ceil_mode (output size rounded up). An ONNX file's MaxPool ceil_mode is used when it has one; giving a different value is a RangeError. Default: false. */
  ceilMode?: boolean;
  /** Keep the last stage's MaxPool (false leaves stage5 at 1/16 of the input size). Default: true. */
  withLastPool?: boolean;
  /** Dilation of each of the 5 stages' convolutions (padding follows it, so sizes are kept): 5 integers in 1..16. Default: [1, 1, 1, 1, 1]. */
  dilations?: number[];
  /** Dropout probability after fc6 and fc7 while training, in [0, 1]. Default: 0.5 (as in the paper). */
  dropout?: number;
  /**
   * Refuse a checkpoint with missing or unexpected keys or shape mismatches
   * (all listed in one CheckpointError 'STATE_MISMATCH'); false loads what
   * fits and lists the rest in `weightsInfo.skipped`. Default: true.
   */
  strict?: boolean;
  /** Class names, one per class (length must equal numClasses). Default: the checkpoint's (`meta.CLASSES`, a zoo synset), else ImageNet's for 1000 classes, else none. */
  labels?: string[];
  /** Seeds LibTorch's generator before weight initialisation (see {@link manualSeed}); a non-negative integer. Default: none (the generator as it is). */
  seed?: number;
  /**
   * Dynamic batching: concurrent forward(), classify() and extractFeatures() calls with compatible
   * options share one native forward (see {@link BatchingOptions}); false gives every call its own.
   * Default: `{ maxBatch: 8, maxWaitMs: 0, maxQueue: 1000000 }`.
   */
  batching?: BatchingOptions | false;
}

export interface ResolvedVggOptions {
  arch?: Architecture;
  weights?: string;
  ema: boolean;
  onDownloadProgress?: (progress: DownloadProgress) => void;
  numClasses?: number;
  device: string;
  threads?: number;
  strict: boolean;
  labels?: string[];
  config: Omit<NativeModelConfig, 'depth' | 'batchNorm' | 'numClasses' | 'device'>;
  /** options.ceilMode was given (an ONNX graph's ceil_mode must then agree with it). */
  ceilModeGiven: boolean;
  batching: ResolvedBatching;
}

const VGG_KEYS = keysOf<VggOptions>()([
  'weights',
  'ema',
  'onDownloadProgress',
  'numClasses',
  'device',
  'threads',
  'outIndices',
  'frozenStages',
  'normEval',
  'ceilMode',
  'withLastPool',
  'dilations',
  'dropout',
  'strict',
  'labels',
  'seed',
  'batching',
]);

export function resolveDevice(device: unknown): string {
  if (device === undefined || device === 'auto') return runtime().cuda ? 'cuda' : 'cpu';
  if (typeof device !== 'string') throw invalidType('options.device', "'auto', 'cpu', 'cuda' or 'cuda:N'", device);
  if (device === 'cpu' || device === 'cuda' || /^cuda:\d+$/.test(device)) return device;
  throw invalidRange('options.device', "'auto', 'cpu', 'cuda' or 'cuda:N'", device);
}

/** vgg(arch?, options?) and vgg(options) both land here. */
export function resolveVggArguments(archOrOptions: unknown, maybeOptions: unknown): ResolvedVggOptions {
  let arch: Architecture | undefined;
  let raw: unknown;
  if (typeof archOrOptions === 'string') {
    if (!isArchitecture(archOrOptions)) throw invalidRange('arch', `one of ${ARCHITECTURES.join(', ')}`, archOrOptions);
    arch = archOrOptions;
    raw = maybeOptions;
  } else if (archOrOptions === undefined) {
    // vgg(undefined, options): the architecture is left to the weights (or vgg16).
    raw = maybeOptions;
  } else if (typeof archOrOptions === 'object' && archOrOptions !== null && !Array.isArray(archOrOptions)) {
    if (maybeOptions !== undefined) throw invalidType('arch', 'an architecture name', archOrOptions);
    raw = archOrOptions;
  } else {
    throw invalidType('arch', `one of ${ARCHITECTURES.join(', ')}`, archOrOptions);
  }
  const o = checkObject('options', raw);
  for (const key of Object.keys(o)) {
    // Unlike other option sets, an unknown key with an undefined value is refused too (it is a typo either way).
    if (!(VGG_KEYS as readonly string[]).includes(key)) throw invalidRange('options', `only the keys ${VGG_KEYS.join(', ')}`, key);
  }
  if (!arch && o.weights === undefined) arch = 'vgg16';
  const out: ResolvedVggOptions = {
    arch,
    device: resolveDevice(o.device),
    strict: orDefault(o.strict, true, (v) => checkBoolean('options.strict', v)),
    ema: orDefault(o.ema, false, (v) => checkBoolean('options.ema', v)),
    config: {
      outIndices: orDefault(o.outIndices, [], (v) => checkIntegerList('options.outIndices', v, 0, 5)),
      frozenStages: orDefault(o.frozenStages, -1, (v) => checkInteger('options.frozenStages', v, -1, 5)),
      normEval: orDefault(o.normEval, false, (v) => checkBoolean('options.normEval', v)),
      ceilMode: orDefault(o.ceilMode, false, (v) => checkBoolean('options.ceilMode', v)),
      withLastPool: orDefault(o.withLastPool, true, (v) => checkBoolean('options.withLastPool', v)),
      dilations: orDefault(o.dilations, [1, 1, 1, 1, 1], (v) => checkIntegerList('options.dilations', v, 1, 16, 5)),
      dropout: orDefault(o.dropout, 0.5, (v) => checkNumber('options.dropout', v, 0, 1)),
      seed: orDefault(o.seed, undefined, (v) => checkInteger('options.seed', v, 0)),
    },
    ceilModeGiven: o.ceilMode !== undefined,
    batching: resolveBatchingOptions('options.batching', o.batching),
  };
  if (o.weights !== undefined) out.weights = checkString('options.weights', o.weights);
  if (o.onDownloadProgress !== undefined) {
    if (typeof o.onDownloadProgress !== 'function') throw invalidType('options.onDownloadProgress', 'a function', o.onDownloadProgress);
    out.onDownloadProgress = o.onDownloadProgress as ResolvedVggOptions['onDownloadProgress'];
  }
  if (o.numClasses !== undefined) out.numClasses = checkInteger('options.numClasses', o.numClasses, 0, 1_000_000);
  if (o.threads !== undefined) out.threads = checkInteger('options.threads', o.threads, 1, 1024);
  if (o.labels !== undefined) {
    if (!Array.isArray(o.labels) || !o.labels.every((l) => typeof l === 'string')) {
      throw invalidType('options.labels', 'an array of strings', o.labels);
    }
    // The length is checked against numClasses once the checkpoint (if any) has said it.
    out.labels = [...o.labels];
  }
  const outIndices = out.config.outIndices;
  if (outIndices.includes(5) && out.numClasses === 0) {
    throw invalidRange('options.outIndices', 'stage indices 0..4 when numClasses is 0 (5 means logits)', outIndices);
  }
  return out;
}
