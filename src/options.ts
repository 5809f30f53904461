// VggOptions: the public options of vgg(), checked once and resolved into
// the native model's config.
import { ARCHITECTURES, isArchitecture, type Architecture } from './arch';
import type { NativeModelConfig } from './binding';
import type { DownloadProgress } from './hub/download';
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

export type Device = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

export interface VggOptions {
  /**
   * The weights: a file (mmcls/torchvision .pth, zip or legacy; ONNX .onnx; the
   * ONNX zoo's .model), or published ImageNet weights fetched into the cache:
   * 'imagenet' (the default source, mmcls), 'mmcls', 'torchvision' or
   * 'onnx-zoo' for the architecture asked for, a registry key such as
   * 'vgg16_bn.torchvision' (see listWeights()), or an http(s) URL (optionally
   * ending in #sha256=<hex>). These names are tried before a file of the same name.
   */
  weights?: string;
  /** Called while `weights` downloads (registry weights or a URL not yet cached). */
  onDownloadProgress?: (progress: DownloadProgress) => void;
  /** Classes of the last layer; 0 builds the backbone only. Default: the checkpoint's, else 1000. */
  numClasses?: number;
  /** 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'. */
  device?: Device;
  /** Intra-op threads for LibTorch (process-wide); default the CPU count. */
  threads?: number;
  /** mmcls out_indices: stages 0..4 and 5 for logits, returned by forwardStages(). */
  outIndices?: number[];
  /** mmcls frozen_stages: stages 0..n-1 get no gradient and stay in eval mode. */
  frozenStages?: number;
  /** mmcls norm_eval: batch norm stays in eval mode while training. */
  normEval?: boolean;
  /** MaxPool ceil_mode. */
  ceilMode?: boolean;
  /** Keep the last stage's MaxPool. */
  withLastPool?: boolean;
  /** Dilation of each of the 5 stages. */
  dilations?: number[];
  /** Dropout probability in the classifier (0.5 as in the paper). */
  dropout?: number;
  /** Refuse a checkpoint with missing or unexpected keys (default true). */
  strict?: boolean;
  /** Class names (default: the checkpoint's, else ImageNet's for 1000 classes). */
  labels?: string[];
  /** Seeds weight initialisation and dropout. */
  seed?: number;
}

export interface ResolvedVggOptions {
  arch?: Architecture;
  weights?: string;
  onDownloadProgress?: (progress: DownloadProgress) => void;
  numClasses?: number;
  device: string;
  threads?: number;
  strict: boolean;
  labels?: string[];
  config: Omit<NativeModelConfig, 'depth' | 'batchNorm' | 'numClasses' | 'device'>;
  /** options.ceilMode was given (an ONNX graph's ceil_mode must then agree with it). */
  ceilModeGiven: boolean;
}

const VGG_KEYS = keysOf<VggOptions>()([
  'weights',
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
