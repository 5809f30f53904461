// The published VGG ImageNet weights vgg-native can fetch by name: one table
// per source holding only what the source publishes (file name, accuracy,
// checksum where it is known); everything else (keys, URLs, parameter counts,
// the input pipeline) is derived, so a fact is written once.
import * as fs from 'node:fs';
import { ARCHITECTURES, parseArch, stateShapes, type Architecture } from '../arch';
import { IMAGENET_MEAN, IMAGENET_STD } from '../image/options';
import { fileNameOf, registryCachePath } from './cache';
import { DownloadError } from './errors';
import { customEntries, type CustomEntry } from './registry-file';
import { setting } from '../settings';

/** The publishers of the built-in weights. */
export const WEIGHTS_SOURCES = ['mmcls', 'torchvision', 'onnx-zoo', 'timm'] as const;
/** 'mmcls', 'torchvision', 'onnx-zoo' or 'timm' (the Hugging Face hub's `timm/vgg*.tv_in1k`). */
export type WeightsSource = (typeof WEIGHTS_SOURCES)[number];

/**
 * The source `weights: 'imagenet'` picks: mmclassification publishes all
 * eight architectures, in the package's own (mmcls) layout, with the best
 * published top-1 of the three on 7 of them.
 */
export const DEFAULT_SOURCE: WeightsSource = 'mmcls';

/** How images were prepared when the published accuracy was measured. */
export interface InputSpec {
  /** The short side is resized to this (aspect kept). */
  resizeShortSide: number;
  /** Then a centre crop of this side is taken. */
  cropSize: number;
  /** Resampling filter of the resize. */
  interpolation: 'bilinear';
  /** Per-channel mean on 0..255 RGB. */
  mean: readonly number[];
  /** Per-channel std on 0..255 RGB. */
  std: readonly number[];
}

/** One downloadable checkpoint, as {@link listWeights} reports it. */
export interface WeightsEntry {
  /** The registry key: `<arch>.<source>`, e.g. 'vgg16_bn.mmcls'. */
  key: string;
  /** The architecture the weights are for. */
  arch: Architecture;
  /** 'mmcls', 'torchvision', 'onnx-zoo', 'timm', or what a VGG_NATIVE_REGISTRY entry says ('custom' by default). */
  source: string;
  /** Key naming in the file: 'mmcls', 'torchvision', 'timm' or 'onnx'. */
  layout: 'mmcls' | 'torchvision' | 'timm' | 'onnx';
  /** Where it is fetched from now: the published URL, or the mirror's (VGG_NATIVE_MIRROR). */
  url: string;
  /** The URL its publisher gives. */
  publishedUrl: string;
  /** The published file name (also its name in the cache). */
  fileName: string;
  /**
   * Lowercase hex start of the file's sha256 (8 digits from a published
   * file name, or all 64); undefined when nothing was published, and then only
   * the size (if known) and the file's format are checked.
   */
  sha256?: string;
  /** Bytes, when published. */
  size?: number;
  /** Outputs of the classifier (1000 for ImageNet). */
  numClasses: number;
  /** 'imagenet': the 1000 ImageNet-1k classes in the usual order; 'checkpoint': whatever the file carries. */
  labels: 'imagenet' | 'checkpoint';
  /** The evaluation pipeline the accuracy was measured with. */
  input: InputSpec;
  /** Learnable parameters (batch-norm running statistics excluded). */
  params: number;
  /** Published ImageNet-1k validation accuracy, percent (single centre crop). */
  accuracy?: {
    /** Top-1 accuracy, percent. */
    top1: number;
    /** Top-5 accuracy, percent. */
    top5: number;
  };
  /** Where the figures come from. */
  reference: string;
  /** The cache path it is (or will be) stored at. */
  file: string;
  /** The file is in the cache now. */
  cached: boolean;
}

/** The entry without what depends on the environment (mirror, cache). */
export type RegistryRecord = Omit<WeightsEntry, 'url' | 'file' | 'cached'>;

/** mmcls, torchvision and the ONNX zoo all evaluate like this (the zoo: imagenet_preprocess.py). */
const IMAGENET_EVAL: InputSpec = Object.freeze({
  resizeShortSide: 256,
  cropSize: 224,
  interpolation: 'bilinear',
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
});

const IMAGENET_CLASSES_COUNT = 1000;

/** [file name, top-1, top-5] as mmcls's VGG README (configs/vgg/README.md) lists them; the 8 hex digits are the sha256's start. */
const MMCLS: Record<Architecture, readonly [string, number, number]> = {
  vgg11: ['vgg11_batch256_imagenet_20210208-4271cd6c.pth', 68.75, 88.87],
  vgg13: ['vgg13_batch256_imagenet_20210208-4d1d6080.pth', 70.02, 89.46],
  vgg16: ['vgg16_batch256_imagenet_20210208-db26f1a5.pth', 71.62, 90.49],
  vgg19: ['vgg19_batch256_imagenet_20210208-e6920e4a.pth', 72.41, 90.8],
  vgg11_bn: ['vgg11_bn_batch256_imagenet_20210207-f244902c.pth', 70.67, 90.16],
  vgg13_bn: ['vgg13_bn_batch256_imagenet_20210207-1a8b7864.pth', 72.12, 90.66],
  vgg16_bn: ['vgg16_bn_batch256_imagenet_20210208-7e55cd29.pth', 73.74, 91.66],
  vgg19_bn: ['vgg19_bn_batch256_imagenet_20210208-da620c4f.pth', 74.68, 92.27],
};
const MMCLS_BASE = 'https://download.openmmlab.com/mmclassification/v0/vgg/';

/** [file name, acc@1, acc@5] from torchvision's weight enums (VGG*_Weights.IMAGENET1K_V1); the hex digits are the sha256's start. */
const TORCHVISION: Record<Architecture, readonly [string, number, number]> = {
  vgg11: ['vgg11-8a719046.pth', 69.02, 88.628],
  vgg13: ['vgg13-19584684.pth', 69.928, 89.246],
  vgg16: ['vgg16-397923af.pth', 71.592, 90.382],
  vgg19: ['vgg19-dcbb9e9d.pth', 72.376, 90.876],
  vgg11_bn: ['vgg11_bn-6002323d.pth', 70.37, 89.81],
  vgg13_bn: ['vgg13_bn-abd245e5.pth', 71.586, 90.374],
  vgg16_bn: ['vgg16_bn-6c64b313.pth', 73.36, 91.516],
  vgg19_bn: ['vgg19_bn-c79401a0.pth', 74.218, 91.842],
};
const TORCHVISION_BASE = 'https://download.pytorch.org/models/';

/**
 * The ONNX model zoo's MXNet-Gluon VGGs (opset 7): [file name, sha256, bytes,
 * top-1, top-5]. Checksums and sizes are the Git LFS pointers' in onnx/models
 * (validated/vision/classification/vgg/model/), accuracies its VGG README.
 */
const ONNX_ZOO: Partial<Record<Architecture, readonly [string, string, number, number, number]>> = {
  vgg16: ['vgg16-7.onnx', 'f20805a3ecccaa88647bbab4ad011ff2412a9838485ea844de0fcbce349820b9', 553437328, 72.62, 91.14],
  vgg16_bn: ['vgg16-bn-7.onnx', '4fdceabf1ef715c9ed3020fa2eac1cb2a448296c086b03633c80cf47e1c5afce', 553512191, 72.71, 91.21],
  vgg19: ['vgg19-7.onnx', '692f9f927f1df1b89033787a77a73eac59fd9b3344f9ecdf0b13221e41c2046f', 574677321, 73.72, 91.58],
  vgg19_bn: ['vgg19-bn-7.onnx', 'ce0987dfa6228ad29708013f38b7f73cbc14ca6066a05fc22ee49b35871c63ed', 574774380, 73.83, 91.79],
};
// GitHub answers with a redirect to its LFS host (media.githubusercontent.com).
const ONNX_ZOO_BASE = 'https://github.com/onnx/models/raw/main/validated/vision/classification/vgg/model/';

/**
 * timm's VGGs on the Hugging Face hub (`timm/<arch>.tv_in1k`, torchvision's
 * weights in timm's layout, as model.safetensors): [top-1, top-5] from timm's
 * results/results-imagenet.csv (224, crop_pct 0.875, bilinear). The hub
 * publishes no checksum in the file name, so only the format is checked.
 */
const TIMM: Record<Architecture, readonly [number, number]> = {
  vgg11: [69.05, 88.63],
  vgg13: [69.95, 89.262],
  vgg16: [71.594, 90.398],
  vgg19: [72.4, 90.878],
  vgg11_bn: [70.374, 89.802],
  vgg13_bn: [71.56, 90.372],
  vgg16_bn: [73.354, 91.49],
  vgg19_bn: [74.23, 91.848],
};
const TIMM_BASE = 'https://huggingface.co/timm/';
/** Every timm file is `model.safetensors`: the cache names it after its repository. */
const timmUrl = (arch: Architecture): string => `${TIMM_BASE}${arch}.tv_in1k/resolve/main/model.safetensors`;
const timmFileName = (arch: Architecture): string => `timm-${arch}.tv_in1k.safetensors`;

/** The `-<hex>.` a published file name ends with (mmcls, torchvision): the start of its sha256. */
const HASH_IN_NAME = /-([0-9a-f]{8,64})\.[A-Za-z0-9]+$/;

/** Learnable parameters of `arch` with an ImageNet head, from the architecture table. */
export function paramCount(arch: Architecture, numClasses = IMAGENET_CLASSES_COUNT): number {
  const buffers = /\.(running_mean|running_var|num_batches_tracked)$/;
  return stateShapes(parseArch(arch), numClasses)
    .filter((e) => !buffers.test(e.name))
    .reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0);
}

/** The sha256 start a published file name carries, if any. */
export function hashInFileName(fileName: string): string | undefined {
  return HASH_IN_NAME.exec(fileName)?.[1];
}

function record(
  arch: Architecture,
  source: WeightsSource,
  layout: RegistryRecord['layout'],
  url: string,
  accuracy: { top1: number; top5: number },
  reference: string,
  checksum: { sha256?: string; size?: number } = {},
  fileName = url.slice(url.lastIndexOf('/') + 1),
): RegistryRecord {
  return {
    key: `${arch}.${source}`,
    arch,
    source,
    layout,
    publishedUrl: url,
    fileName,
    sha256: checksum.sha256 ?? hashInFileName(fileName),
    ...(checksum.size !== undefined ? { size: checksum.size } : {}),
    numClasses: IMAGENET_CLASSES_COUNT,
    labels: 'imagenet',
    input: IMAGENET_EVAL,
    params: paramCount(arch),
    accuracy,
    reference,
  };
}

function builtInRecords(): RegistryRecord[] {
  const out: RegistryRecord[] = [];
  for (const arch of ARCHITECTURES) {
    const [mmFile, mmTop1, mmTop5] = MMCLS[arch];
    out.push(record(arch, 'mmcls', 'mmcls', MMCLS_BASE + mmFile, { top1: mmTop1, top5: mmTop5 }, 'mmclassification configs/vgg/README.md'));
  }
  for (const arch of ARCHITECTURES) {
    const [tvFile, tvTop1, tvTop5] = TORCHVISION[arch];
    out.push(
      record(
        arch,
        'torchvision',
        'torchvision',
        TORCHVISION_BASE + tvFile,
        { top1: tvTop1, top5: tvTop5 },
        `torchvision ${arch.toUpperCase()}_Weights.IMAGENET1K_V1`,
      ),
    );
  }
  for (const arch of ARCHITECTURES) {
    const zoo = ONNX_ZOO[arch];
    if (!zoo) continue;
    const [file, sha256, size, top1, top5] = zoo;
    out.push(
      record(arch, 'onnx-zoo', 'onnx', ONNX_ZOO_BASE + file, { top1, top5 }, 'onnx/models vision/classification/vgg/README.md', { sha256, size }),
    );
  }
  for (const arch of ARCHITECTURES) {
    const [top1, top5] = TIMM[arch];
    out.push(record(arch, 'timm', 'timm', timmUrl(arch), { top1, top5 }, 'timm results/results-imagenet.csv', {}, timmFileName(arch)));
  }
  return out;
}

const BUILT_IN: readonly RegistryRecord[] = Object.freeze(builtInRecords());

/** A VGG_NATIVE_REGISTRY entry as a record; what it leaves out takes the defaults CustomEntry documents. */
function customRecord(e: CustomEntry): RegistryRecord {
  const fileName = fileNameOf(new URL(e.url));
  const numClasses = e.numClasses ?? IMAGENET_CLASSES_COUNT;
  return {
    key: e.key,
    arch: e.arch,
    source: e.source ?? 'custom',
    layout: e.layout ?? (/\.(onnx|model)$/i.test(fileName) ? 'onnx' : 'mmcls'),
    publishedUrl: e.url,
    fileName,
    ...(e.sha256 !== undefined ? { sha256: e.sha256 } : {}),
    ...(e.size !== undefined ? { size: e.size } : {}),
    numClasses,
    labels: 'checkpoint',
    input: IMAGENET_EVAL,
    params: paramCount(e.arch, numClasses),
    ...(e.accuracy ? { accuracy: e.accuracy } : {}),
    reference: `VGG_NATIVE_REGISTRY (${setting('registry')})`,
  };
}

/** Every record: the built-in ones, then VGG_NATIVE_REGISTRY's. @throws DownloadError REGISTRY */
export function registryRecords(): RegistryRecord[] {
  return [...BUILT_IN, ...customEntries(BUILT_IN.map((r) => r.key)).map(customRecord)];
}

/**
 * The URL a record is fetched from: VGG_NATIVE_MIRROR, when set, replaces the
 * scheme, host and port (and may add a path prefix); the path stays.
 * @throws DownloadError BAD_URL when VGG_NATIVE_MIRROR is not an http(s) URL
 */
export function mirrored(publishedUrl: string): string {
  const mirror = setting('mirror');
  if (mirror === null) return publishedUrl;
  let base: URL;
  try {
    base = new URL(mirror);
  } catch {
    throw new DownloadError('BAD_URL', `VGG_NATIVE_MIRROR is not a URL: '${mirror}' (expected e.g. https://mirror.example.com/vgg)`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new DownloadError('BAD_URL', `VGG_NATIVE_MIRROR must be an http(s) URL, got '${mirror}'`);
  }
  const u = new URL(publishedUrl);
  return `${base.origin}${base.pathname.replace(/\/+$/, '')}${u.pathname}${u.search}`;
}

/** A record with its present URL and cache state. */
export function withEnvironment(r: RegistryRecord): WeightsEntry {
  const file = registryCachePath(r.fileName);
  return { ...r, url: mirrored(r.publishedUrl), file, cached: fs.existsSync(file) };
}

/**
 * The weights vgg-native can fetch by name: mmcls's 8 ImageNet checkpoints,
 * torchvision's 8, the ONNX zoo's vgg16, vgg16_bn, vgg19 and vgg19_bn, then
 * any added through VGG_NATIVE_REGISTRY (a JSON file of {@link CustomEntry}).
 * Synchronous; reads the environment (VGG_NATIVE_MIRROR, VGG_NATIVE_HOME,
 * VGG_NATIVE_REGISTRY) on every call. The filter's values are not checked: an
 * unknown architecture or source gives [].
 *
 * @param filter - only entries of this architecture and/or source. Default: all.
 * @returns entries in table order, each with its URL (after VGG_NATIVE_MIRROR),
 * published accuracy, cache path and whether it is cached
 * @throws DownloadError REGISTRY (a bad VGG_NATIVE_REGISTRY file), BAD_URL (a bad VGG_NATIVE_MIRROR)
 * @example
 * ```ts
 * import { listWeights } from 'vgg-native';
 *
 * for (const w of listWeights({ arch: 'vgg16_bn' })) console.log(w.key, w.accuracy?.top1, w.cached);
 * // vgg16_bn.mmcls 73.74 false
 * // vgg16_bn.torchvision 73.36 false
 * // vgg16_bn.onnx-zoo 72.71 false
 * ```
 */
export function listWeights(filter: { arch?: Architecture; source?: string } = {}): WeightsEntry[] {
  return registryRecords()
    .filter((r) => (filter.arch === undefined || r.arch === filter.arch) && (filter.source === undefined || r.source === filter.source))
    .map(withEnvironment);
}

/** The record with this key, if any. */
export function findRecord(key: string): RegistryRecord | undefined {
  return registryRecords().find((r) => r.key === key);
}

/** Whether `name` is a source name ('mmcls', 'torchvision', 'onnx-zoo', 'timm') or 'imagenet' (the default source). */
export function isSourceName(name: string): name is WeightsSource | 'imagenet' {
  return name === 'imagenet' || (WEIGHTS_SOURCES as readonly string[]).includes(name);
}

/** 'imagenet' means the default source. */
export function sourceOf(name: WeightsSource | 'imagenet'): WeightsSource {
  return name === 'imagenet' ? DEFAULT_SOURCE : name;
}
