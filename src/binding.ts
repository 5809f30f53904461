// The raw native surface as a TypeScript type. Everything else in src/ talks
// to this type, never to the .node file directly (see loadBinding()).
import type { BackboneOptions } from './arch';
import type { TrainPrecision } from './core/forward';
import { ModelError } from './errors';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { nativeSettings, setting, type NativeSettings } from './settings';

/** Element types a checkpoint storage may hold (PyTorch's storage types, e.g. 'float32' for `torch.FloatStorage`, 'float16' for `torch.HalfStorage`). */
export type StorageDType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/**
 * A tensor whose bytes live in a file: native code reads them straight into
 * tensor memory (no JS Buffer of the whole file). This is how a .pth's
 * storages reach the model; sizes and offsets are in elements of `dtype`
 * unless they say bytes.
 */
export interface FileTensorSource {
  /** Discriminant: a file region. */
  kind: 'file';
  /** The file holding the storage's bytes. */
  path: string;
  /** Absolute byte offset in the file where the storage's first element is. */
  byteOffset: number;
  /** Element type of the storage as stored; the values are converted to the model tensor's type on load. */
  dtype: StorageDType;
  /** Elements in the whole storage (bounds-checked against the file size). */
  storageNumel: number;
  /** Elements skipped at the start of the storage (tensor view offset). */
  storageOffset: number;
  /** Size of each dimension ([] for a 0-d scalar). */
  shape: number[];
  /** Elements to step in the storage per index of each dimension (PyTorch strides; same length as `shape`). */
  stride: number[];
  /** Storage bytes are big-endian and must be swapped. */
  bigEndian?: boolean;
}

/** A tensor already in memory, contiguous and row-major. */
export interface ArrayTensorSource {
  /** Discriminant: in memory. */
  kind: 'array';
  /** The elements, row-major: Float32Array for weights and statistics, BigInt64Array for `num_batches_tracked`; length = product of `shape`. */
  data: Float32Array | BigInt64Array;
  /** Size of each dimension ([] for a 0-d scalar such as `num_batches_tracked`). */
  shape: number[];
}

/** Where a tensor's values come from: a region of a file or an array in memory. */
export type TensorSource = FileTensorSource | ArrayTensorSource;

/** One entry for {@link Vgg.loadStateDict}: a tensor under its canonical (mmcls, without `backbone.`) name. */
export interface NamedTensorSource {
  /** Canonical name, e.g. 'features.0.conv.weight' or 'classifier.6.bias'. */
  name: string;
  /** Its values; the shape must equal the model's for that name. */
  tensor: TensorSource;
}

/** A named tensor handed out by native code ({@link Vgg.stateDict}); `data` views native memory. */
export interface NamedTensor {
  /** Canonical name (mmcls, without `backbone.`), e.g. 'features.3.bn.running_mean'. */
  name: string;
  /** 'int64' for batch norm's `num_batches_tracked`, 'float32' for everything else. */
  dtype: 'float32' | 'int64';
  /** Size of each dimension, e.g. [64, 3, 3, 3] for the first convolution's weight; [] for a 0-d scalar. */
  shape: number[];
  /** The elements, row-major: Float32Array for 'float32', BigInt64Array for 'int64'. */
  data: Float32Array | BigInt64Array;
}

export interface NativeModelConfig extends BackboneOptions {
  depth: 11 | 13 | 16 | 19;
  batchNorm: boolean;
  numClasses: number;
  device: string;
  seed?: number;
  dropout: number;
  /** false skips mmcls's initialisation when a checkpoint overwrites every tensor. */
  initWeights?: boolean;
}

/** One row of {@link Vgg.summary}: a module of `features`, the adaptive pool, or a module of `classifier`. */
export interface NativeLayerSummary {
  /** Module path in the mmcls numbering: 'features.N', 'avgpool' (only when the last map is not 7x7) or 'classifier.N'. */
  name: string;
  /** 'ConvModule(conv,relu)', 'ConvModule(conv,bn,relu)', 'MaxPool2d', 'AdaptiveAvgPool2d(7,7)', 'Linear', 'ReLU' or 'Dropout'. */
  type: string;
  /** Input shape for one image: [1, C, H, W] in `features`, [1, F] in `classifier`. */
  inShape: number[];
  /** Output shape for one image, in the same form. */
  outShape: number[];
  /** Parameters of this module (buffers excluded). */
  params: number;
  /** Multiply-adds of this module for one image, counted as mmcv's get_model_complexity_info (conv/linear multiply-adds plus bias adds, BN 2 per element, ReLU and pooling 1 per element). */
  macs: number;
}

export interface NativeSummary {
  params: number;
  trainableParams: number;
  macs: number;
  layers: NativeLayerSummary[];
}

export interface NativeTrainStepOptions {
  labelSmoothing: number;
  clipGradNorm: number; // 0 = off
  lr: [backbone: number, head: number]; // one learning rate per parameter group
  precision: TrainPrecision;
}

export interface NativeOptimizerConfig {
  type: 'sgd' | 'adamw';
  lr: number;
  headLr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  betas: [number, number];
  eps: number;
}

export interface NativeDistributedConfig {
  masterAddr: string;
  masterPort: number;
  rank: number;
  worldSize: number;
  timeoutMs: number;
  /** Collectives on CUDA tensors: 'auto' (NCCL when this LibTorch has it, else Gloo), 'nccl' or 'gloo'. Absent: 'auto'. */
  backend?: 'auto' | 'nccl' | 'gloo';
}

export interface NativeOutput {
  name: string;
  data: Float32Array;
  shape: number[];
}

/** What {@link NativeModel.explain} resolves with. */
export interface NativeExplanation {
  /** [N, H, W] Grad-CAM maps, each scaled to 0..1. */
  maps: NativeOutput;
  /** [N, numClasses] logits of the same forward pass. */
  logits: NativeOutput;
  /** The class each map explains. */
  classIndices: number[];
}

export interface NativeModel {
  /**
   * outputs: 'logits' (or the last stage without a classifier), 'stages' (outIndices), feature names,
   * or 'classifier' (`data` is the trunk's output [N, 512, h, w]: the classifier alone, logits).
   * Float32 NCHW `data`, or 8-bit [N, H, W, 3] pixels with `normalize` ((v - mean) / std per channel,
   * applied on the pool; the input then reaches the network channels_last in memory).
   */
  forward(
    data: Float32Array | Uint8Array,
    shape: number[],
    opts: {
      outputs: 'logits' | 'stages' | 'classifier' | string[];
      precision: string;
      channelsLast: boolean;
      normalize?: { mean: number[]; std: number[] };
    },
  ): Promise<NativeOutput[]>;
  /**
   * Grad-CAM (native/gradcam.h) of each image for `classIndices` (absent: its top-1 class) at `layer`
   * ('stage1'..'stage5': that stage's last conv output before its pool). Input as forward().
   * maps: [N, H, W], 0..1 per image; logits: [N, numClasses].
   */
  explain(
    data: Float32Array | Uint8Array,
    shape: number[],
    opts: { layer: string; classIndices?: number[]; normalize?: { mean: number[]; std: number[] } },
  ): Promise<NativeExplanation>;
  loadStateDict(entries: NamedTensorSource[]): Promise<void>;
  /** copy (default true): independent copies; false: views of the live weights (only inside the model's queue). */
  stateDict(copy?: boolean): Promise<NamedTensor[]>;
  /** Names and shapes of every parameter and buffer, in state_dict order. */
  stateShapes(): Array<{ name: string; shape: number[]; dtype: 'float32' | 'int64' }>;
  /** A fresh last Linear (N(0, 0.01)); seeded when a seed is given. */
  resetHead(numClasses: number, seed?: number): Promise<void>;
  /** fc6 rewritten to compute on x * scale + shift, per channel of the trunk's output (scale, shift: [512]). */
  composeClassifierInput(scale: Float32Array, shift: Float32Array): Promise<void>;
  configureOptimizer(config: NativeOptimizerConfig): Promise<void>;
  /**
   * One step; an empty batch (a distributed rank's empty shard) contributes zero gradients.
   * lossScale weights this rank's mean loss (local share x world size); seed reseeds dropout in the worker.
   * features: `data` is the trunk's output [N, 512, h, w] (cached features of a frozen trunk); only the classifier runs.
   */
  trainStep(
    data: Float32Array,
    shape: number[],
    labels: BigInt64Array,
    opts: NativeTrainStepOptions & { step?: boolean; lossScale?: number; seed?: number; features?: boolean },
  ): Promise<{ loss: number; correct: number; gradNorm: number }>;
  saveOptimizer(path: string): Promise<void>;
  loadOptimizer(path: string): Promise<void>;
  /**
   * Runs the float32 trunk on a batch (input as forward()) and accumulates each convolution's input
   * statistics (max |x|, histogram of |x|); `reset` starts over. Resolves with the images accumulated so far.
   */
  calibrate(
    data: Float32Array | Uint8Array,
    shape: number[],
    opts: { reset: boolean; normalize?: { mean: number[]; std: number[] } },
  ): Promise<number>;
  /** Per-convolution input scales from the accumulated statistics ('scales' [convolutions]). */
  finishCalibration(opts: { method: 'minmax' | 'percentile'; percentile: number }): Promise<NativeOutput>;
  /** Installs the scales for precision 'int8' (null removes them); rejects where int8 cannot run. */
  setQuantization(scales: Float32Array | null): Promise<void>;
  /** Rendezvous (blocks off the event loop until all ranks join), then broadcasts rank 0's weights. */
  setDistributed(config: NativeDistributedConfig): Promise<void>;
  /** Rank 0's weights to every rank of the joined group. */
  broadcastWeights(): Promise<void>;
  device(): string;
  dispose(): void;
  isDisposed(): boolean;
}

/** The addon's report on itself, as {@link runtime} returns it. */
export interface NativeRuntime {
  /** LibTorch version the addon was built against, e.g. '1.13.1'. */
  torchVersion: string;
  /** LibTorch has CUDA and sees at least one GPU. */
  cuda: boolean;
  /** Visible CUDA devices (0 without CUDA). */
  cudaDevices: number;
  /** cuDNN is available (false without CUDA). */
  cudnn: boolean;
  /** Intra-op threads models use: the last {@link setThreads} value, else the CPU count. */
  threads: number;
  /** LibTorch's inter-op threads (`at::get_num_interop_threads()`). */
  interopThreads: number;
  /** The N-API version the addon was built for. */
  napiVersion: number;
  /** LibTorch's `at::get_parallel_info()` text: OpenMP/MKL/threads as LibTorch sees them. */
  parallelInfo: string;
  /** This LibTorch has torch.distributed (c10d with Gloo), so `fineTune` can run data-parallel. */
  distributed: boolean;
  /**
   * The caching CPU allocator (native/host_allocator.cc): bytes held for reuse,
   * its cap ({@link hostCache}, VGG_NATIVE_HOST_CACHE_MB; default 2048 MiB) and how
   * often a large allocation was served from it (hits) or from the system (misses).
   */
  hostCache: {
    /** Bytes held for reuse now. */
    cachedBytes: number;
    /** Most bytes it keeps ({@link hostCache}, VGG_NATIVE_HOST_CACHE_MB; default 2048 MiB). */
    limitBytes: number;
    /** Large allocations served from the cache. */
    hits: number;
    /** Large allocations that went to the system. */
    misses: number;
    /** Parked blocks freed to keep the cache under its cap, least recently parked first. */
    evictions: number;
  };
  /**
   * The oneDNN inference engine (native/onednn_trunk.cc): whether this build has it
   * (LibTorch linked against a shared libdnnl, headers present), oneDNN's version and
   * effective ISA (e.g. 'avx512_core_bf16'), whether bf16 runs natively (avx512_bf16 or
   * AMX; otherwise `precision: 'bf16'` uses LibTorch's autocast), and whether it is on
   * (the onednn setting, VGG_NATIVE_ONEDNN=0, turns it off).
   */
  onednn: {
    /** The engine was compiled in (LibTorch links a shared libdnnl and its headers were found). */
    built: boolean;
    /** oneDNN's version, e.g. '2.6.3'. */
    version: string;
    /** oneDNN's effective instruction set, e.g. 'avx512_core_bf16'. */
    isa: string;
    /** bf16 runs natively (avx512_bf16 or AMX). */
    bf16: boolean;
    /** int8 convolutions run with VNNI (avx2_vnni, avx512_core_vnni and later, AMX): what precision 'int8' needs. */
    int8: boolean;
    /** The engine is in use: built and not turned off (VGG_NATIVE_ONEDNN=0). */
    enabled: boolean;
  };
  /**
   * What the CPU runs, from CPUID (native/cpu_features.cc; x86-64, all false
   * elsewhere), each only where the OS also saves its registers: what the
   * fully connected kernel and bf16 fine-tuning decide on (oneDNN decides its
   * own kernels; see `onednn`).
   */
  cpu: {
    /** AVX2 with FMA. */
    avx2: boolean;
    /** AVX-512 Foundation. */
    avx512f: boolean;
    /** AVX512_VNNI (int8 dot products). */
    avx512Vnni: boolean;
    /** AVX512_BF16 (bf16 dot products): what `fineTune({ precision: 'bf16' })` needs on the CPU, or AMX-BF16. */
    avx512Bf16: boolean;
    /** AMX-BF16 tiles. */
    amxBf16: boolean;
    /** AMX-INT8 tiles. */
    amxInt8: boolean;
  };
  /**
   * The kernel for fully connected layers at batch 1-16 in fp32 inference
   * (native/gemv.cc), picked from the CPU's ISA: 'avx512', 'avx2', or 'none'
   * (then LibTorch's linear), under the gemv setting's cap.
   */
  gemvKernel: 'avx512' | 'avx2' | 'none';
  /** The settings native code runs with (configure()'s, hostCacheMb as the allocator's cap is now). */
  settings: NativeSettings;
}

export interface NativeModelClass {
  /** Builds the model on the thread pool (allocation and initialisation stay off the event loop); the only way to make one. */
  create(config: NativeModelConfig): Promise<NativeModel>;
}

export interface NativeBinding {
  Model: NativeModelClass;
  runtime(): NativeRuntime;
  /** The process's settings (the first call applies them; later calls change nothing); returns those in force. */
  configure(settings: NativeSettings): NativeSettings;
  /** The caching CPU allocator's cap from now on, MiB; 0 frees what it holds and stops caching. */
  setHostCacheLimit(mb: number): void;
  setThreads(n: number): void;
  manualSeed(seed: number): void;
}

/** Where the loaded addon came from: `VGG_NATIVE_ADDON`, a source build in the package (`npx vgg-native build`), or the prebuilt platform package. */
export interface AddonInfo {
  /** 'env': the file VGG_NATIVE_ADDON names; 'source': build/ or build-gyp/ of this package; 'prebuilt': the platform package. */
  kind: 'env' | 'source' | 'prebuilt';
  /** Absolute path of the .node file. */
  path: string;
}

let cached: { binding: NativeBinding; info: AddonInfo } | undefined;

/** The C library, as sharp and detect-libc tell it: glibc reports its version in process.report. */
function libc(): 'gnu' | 'musl' {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ? 'gnu' : 'musl';
}

/** The prebuilt package for this platform, e.g. '@vgg-native/linux-x64-gnu' (only that one is published). */
export function platformPackage(): string {
  return `@vgg-native/${process.platform}-${process.arch}${process.platform === 'linux' ? `-${libc()}` : ''}`;
}

function candidates(): Array<{ kind: AddonInfo['kind']; path: string | undefined; note: string }> {
  const root = path.resolve(__dirname, '..');
  let prebuilt: string | undefined;
  try {
    prebuilt = require.resolve(`${platformPackage()}/vgg_native.node`);
  } catch {
    prebuilt = undefined;
  }
  return [
    { kind: 'env', path: setting('addon') ?? undefined, note: 'VGG_NATIVE_ADDON' },
    { kind: 'source', path: path.join(root, 'build', 'Release', 'vgg_native.node'), note: 'source build (cmake-js)' },
    { kind: 'source', path: path.join(root, 'build-gyp', 'Release', 'vgg_native.node'), note: 'source build (node-gyp)' },
    { kind: 'prebuilt', path: prebuilt, note: `prebuilt ${platformPackage()}` },
  ];
}

/**
 * Loads the addon, first found of: the file `VGG_NATIVE_ADDON` names, a
 * source build in this package (`npx vgg-native build`, preferred over the
 * prebuilt so a CUDA or custom-LibTorch build wins), the prebuilt platform
 * package. A file that exists but does not load is reported and skipped.
 * The addon that loads gets the native settings (src/settings.ts) through
 * its configure() before anything else calls it.
 *
 * @throws {@link SettingsError} 'BAD_SETTING' when a native setting's variable is bad (nothing is loaded)
 * @throws {@link ModelError} 'NATIVE' when no addon loads
 */
export function loadBinding(): NativeBinding {
  return loadAddon().binding;
}

/** {@link loadBinding} and where the addon came from. */
export function loadAddon(): { binding: NativeBinding; info: AddonInfo } {
  if (cached) return cached;
  // Parsed before loading: a bad variable leaves no half-configured addon behind.
  const settings = nativeSettings();
  const tried: string[] = [];
  for (const c of candidates()) {
    if (!c.path) {
      tried.push(`${c.note}: ${c.kind === 'env' ? 'not set' : 'not installed'}`);
      continue;
    }
    if (!fs.existsSync(c.path)) {
      tried.push(`${c.note}: ${c.path} does not exist`);
      if (c.kind === 'env') break; // an explicit choice that is wrong must not be papered over
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const binding = require(c.path) as NativeBinding;
      // An addon from before configure() existed would read the environment itself, by older rules.
      if (typeof binding.configure !== 'function') throw new Error('it has no configure(): built from older sources than this package, rebuild it');
      binding.configure(settings);
      cached = { binding, info: { kind: c.kind, path: c.path } };
      return cached;
    } catch (e) {
      tried.push(`${c.note}: ${c.path} failed to load (${(e as Error).message.split('\n')[0]})`);
      if (c.kind === 'env') break;
    }
  }
  throw new ModelError(
    'NATIVE',
    `vgg-native: no native addon loads on ${process.platform}-${process.arch}${process.platform === 'linux' ? `-${libc()}` : ''} (Node ${process.versions.node}). Tried:\n  - ${tried.join('\n  - ')}\n` +
      `Fix: \`npm install --include=optional vgg-native\` brings the prebuilt ${platformPackage()} where one is published (x64 Linux with glibc); ` +
      'anywhere else, or for CUDA, `npx vgg-native build [--libtorch DIR]` compiles one (needs cmake, a C++17 compiler and a LibTorch); see README "Install".',
  );
}
