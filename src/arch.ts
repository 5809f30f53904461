// The one VGG table, in the spirit of torchvision's `cfgs` + `make_layers`
// and mmcls's `VGG.arch_settings`: convolutions per stage for each depth,
// the stage widths and the classifier. Every layer name (mmcls's canonical
// keys, torchvision's `features.N` aliases), every tensor shape and every
// feature width the package uses is derived here, so a fact about VGG is
// written once. Canonical names are mmcls's state_dict keys without the
// `backbone.` prefix; native/vgg_model.cc builds the same modules, which
// test/arch.test.ts checks for all eight variants.

/**
 * The eight architecture names, as torchvision and mmcls spell them: VGG-11,
 * -13, -16 and -19 (Simonyan & Zisserman's configurations A, B, D, E), each
 * plain and with batch norm (`_bn`).
 */
export const ARCHITECTURES = ['vgg11', 'vgg13', 'vgg16', 'vgg19', 'vgg11_bn', 'vgg13_bn', 'vgg16_bn', 'vgg19_bn'] as const;
/** An architecture name: 'vgg11', 'vgg13', 'vgg16', 'vgg19', or one of them with '_bn'. */
export type Architecture = (typeof ARCHITECTURES)[number];
/** Weight layers of a VGG: 8, 10, 13 or 16 convolutions plus the classifier's 3 Linear layers. */
export type Depth = 11 | 13 | 16 | 19;

/** An architecture as its two facts ({@link Vgg.spec}): 'vgg16_bn' is `{ depth: 16, batchNorm: true }`. */
export interface ArchSpec {
  /** 11, 13, 16 or 19. */
  depth: Depth;
  /** Each convolution is followed by BatchNorm2d (the `_bn` variants). */
  batchNorm: boolean;
}

/** Where a state_dict's names come from: mmcls's ConvModules, torchvision's flat Sequential, or timm's (torchvision's `features`, a convolutional `pre_logits` and `head.fc`). */
export type NameLayout = 'mmcls' | 'torchvision' | 'timm';

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

/** Convolutions per stage for each depth (torchvision's cfgs A, B, D, E without the 'M's: a MaxPool closes every stage). */
export const STAGE_BLOCKS: Readonly<Record<Depth, readonly number[]>> = {
  11: [1, 1, 2, 2, 2],
  13: [2, 2, 2, 2, 2],
  16: [2, 2, 3, 3, 3],
  19: [2, 2, 4, 4, 4],
};
/** Output channels of each stage. */
export const STAGE_WIDTHS: readonly number[] = [64, 128, 256, 512, 512];
/** RGB in. */
export const INPUT_CHANNELS = 3;
/** Every convolution is 3x3 (padding = dilation keeps the size within a stage). */
export const KERNEL_SIZE = 3;
/** Side of the map the classifier reads: 224 / 2^5, or torchvision's AdaptiveAvgPool2d((7, 7)) for other sizes. */
export const POOLED_SIZE = 7;
/** Width of the classifier's two hidden Linear layers (fc6, fc7). */
export const HIDDEN_FEATURES = 4096;
/** What the first Linear reads: the last stage's map, flattened (512 * 7 * 7 = 25088). */
export const FLATTENED_FEATURES = STAGE_WIDTHS[STAGE_WIDTHS.length - 1] * POOLED_SIZE * POOLED_SIZE;

/**
 * The named activations a model can return, in forward order: the output of
 * each stage (after its MaxPool, as mmcls's out_indices), the global average
 * of stage5, then the output of each classifier Linear (after ReLU for the
 * hidden ones). The public list (src/model.ts, src/core/forward.ts) must equal
 * this one; test/arch.test.ts checks it.
 */
export const FEATURE_LAYERS = ['stage1', 'stage2', 'stage3', 'stage4', 'stage5', 'pool5', 'fc6', 'fc7', 'logits'] as const;
/**
 * A named activation ({@link FeatureOptions.layer}). For a 224x224 input:
 * 'stage1'..'stage5' are `[N, 64, 112, 112]`, `[N, 128, 56, 56]`,
 * `[N, 256, 28, 28]`, `[N, 512, 14, 14]`, `[N, 512, 7, 7]`; 'pool5' is
 * `[N, 512]` at any size; 'fc6' and 'fc7' `[N, 4096]` after ReLU; 'logits'
 * `[N, numClasses]`. 'fc6', 'fc7' and 'logits' need the classifier.
 */
export type FeatureLayer = (typeof FEATURE_LAYERS)[number];

/**
 * The layers that need the classifier (absent when a model has numClasses 0):
 * one per classifier Linear, in order; each hidden one is followed by ReLU and Dropout.
 */
export const HEAD_LAYERS: readonly FeatureLayer[] = ['fc6', 'fc7', 'logits'];
/** Linear, ReLU, Dropout: the `classifier` entries a hidden layer takes (mmcls and torchvision alike). */
const MODULES_PER_HIDDEN_LINEAR = 3;

/** What torchvision's make_layers appends to `features` per convolution, in order. */
function torchvisionConvBlock(batchNorm: boolean): ReadonlyArray<'conv' | 'bn' | 'relu'> {
  return batchNorm ? ['conv', 'bn', 'relu'] : ['conv', 'relu'];
}

/** Tensors of a Conv2d (VGG convolutions have a bias even before BN, in mmcls and torchvision). */
export const CONV_TENSORS = ['weight', 'bias'] as const;
/** Parameters and buffers of a BatchNorm2d, in state_dict order. */
export const BN_TENSORS = ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'] as const;
/** The BatchNorm2d tensors that are statistics, not learned: no gradient, not counted as parameters. */
const BN_BUFFERS: readonly string[] = ['running_mean', 'running_var', 'num_batches_tracked'];

/**
 * mmcls VGG's backbone options (mmcls/models/backbones/vgg.py), resolved:
 * what the native model is built with besides depth, batch norm and the class count.
 */
export interface BackboneOptions {
  /** Stage indices 0..4 whose outputs forward returns, 5 = logits. */
  outIndices: number[];
  /** Stages 0..frozenStages-1 get no gradient and stay in eval mode; -1 or 0 = none. */
  frozenStages: number;
  /** Batch norm stays in eval mode while training. */
  normEval: boolean;
  /** MaxPool2d rounds its output size up (mmcls ceil_mode). */
  ceilMode: boolean;
  /** The last stage ends with a MaxPool2d too. */
  withLastPool: boolean;
  /** Dilation of each stage's convolutions (padding equals it, so sizes are kept). */
  dilations: number[];
}

// ---------------------------------------------------------------------------
// Names of architectures
// ---------------------------------------------------------------------------

/**
 * Whether a value is one of the eight architecture names.
 * @param value - anything
 * @returns true for 'vgg11' ... 'vgg19_bn'
 */
export function isArchitecture(value: unknown): value is Architecture {
  return typeof value === 'string' && (ARCHITECTURES as readonly string[]).includes(value);
}

/**
 * Depth and batch norm of an architecture name.
 * @param arch - 'vgg11' ... 'vgg19_bn'
 * @returns its spec
 * @throws TypeError for any other name
 * @example parseArch('vgg16_bn') // { depth: 16, batchNorm: true }
 */
export function parseArch(arch: Architecture): ArchSpec {
  const m = /^vgg(11|13|16|19)(_bn)?$/.exec(arch);
  if (!m) throw new TypeError(`Expected one of ${ARCHITECTURES.join(', ')} for arch but received ${String(arch)}`);
  return { depth: Number(m[1]) as Depth, batchNorm: m[2] !== undefined };
}

/**
 * The architecture name of a spec (inverse of parseArch).
 * @param spec - depth and batch norm
 * @returns e.g. 'vgg16_bn'
 * @example archName({ depth: 11, batchNorm: false }) // 'vgg11'
 */
export function archName(spec: ArchSpec): Architecture {
  return `vgg${spec.depth}${spec.batchNorm ? '_bn' : ''}` as Architecture;
}

/**
 * Which depth has this many convolutions per stage, if any: how a checkpoint's
 * architecture is recognised from the convolutions it holds.
 * @param blocks - convolutions per stage, e.g. [2, 2, 3, 3, 3]
 * @returns the depth (16 here), or undefined when no VGG has these stages
 */
export function depthFromStageBlocks(blocks: readonly number[]): Depth | undefined {
  for (const [d, b] of Object.entries(STAGE_BLOCKS)) {
    if (b.length === blocks.length && b.every((v, i) => v === blocks[i])) return Number(d) as Depth;
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// The `features` sequence
// ---------------------------------------------------------------------------

export interface ConvSlot {
  /** Index in the flat `features` sequence (mmcls numbering). */
  featureIndex: number;
  /** Position among the convolutions, 0-based. */
  convIndex: number;
  stage: number;
  inChannels: number;
  outChannels: number;
}

/**
 * How many `features` entries one convolution takes: mmcls wraps conv, bn
 * and ReLU in one ConvModule; torchvision's make_layers appends each module.
 * @param layout - whose numbering
 * @param batchNorm - whether the convolutions are followed by BatchNorm2d
 * @returns 1 for mmcls; 2 (conv, relu) or 3 (conv, bn, relu) for torchvision
 */
export function modulesPerConv(layout: NameLayout, batchNorm: boolean): number {
  return layout === 'mmcls' ? 1 : torchvisionConvBlock(batchNorm).length;
}

/**
 * Index of a convolution in `features`: its entries plus one MaxPool per
 * stage before it (make_layers' numbering, which mmcls shares with one entry
 * per ConvModule).
 * @param slot - a convolution from convSlots
 * @param layout - whose numbering
 * @param batchNorm - whether the model has BN (matters for torchvision only)
 * @returns e.g. 24 for vgg16_bn's 8th convolution in torchvision, 10 in mmcls
 */
export function featuresIndex(slot: Pick<ConvSlot, 'convIndex' | 'stage'>, layout: NameLayout, batchNorm: boolean): number {
  return slot.convIndex * modulesPerConv(layout, batchNorm) + slot.stage;
}

/**
 * How far after its Conv2d torchvision puts a convolution's BatchNorm2d.
 * @returns 1 (conv, bn, relu)
 */
export function torchvisionBnOffset(): number {
  return torchvisionConvBlock(true).indexOf('bn');
}

/**
 * The convolutions of a depth in order, with their mmcls `features` index:
 * one entry per ConvModule and one MaxPool closing each stage.
 * @param depth - 11, 13, 16 or 19
 * @returns one slot per convolution (8, 10, 13 or 16 of them)
 * @example convSlots(11)[1] // { featureIndex: 2, convIndex: 1, stage: 1, inChannels: 64, outChannels: 128 }
 */
export function convSlots(depth: Depth): ConvSlot[] {
  const slots: ConvSlot[] = [];
  let inChannels = INPUT_CHANNELS;
  STAGE_BLOCKS[depth].forEach((blocks, stage) => {
    const outChannels = STAGE_WIDTHS[stage];
    for (let b = 0; b < blocks; b++) {
      const at = { convIndex: slots.length, stage };
      slots.push({ featureIndex: featuresIndex(at, 'mmcls', false), ...at, inChannels, outChannels });
      inChannels = outChannels;
    }
  });
  return slots;
}

// ---------------------------------------------------------------------------
// The classifier
// ---------------------------------------------------------------------------

export interface LinearSlot {
  /** Index in `classifier` (the same in mmcls and torchvision). */
  index: number;
  inFeatures: number;
  outFeatures: number;
  /** The feature layer this Linear produces. */
  layer: FeatureLayer;
}

/**
 * The classifier's Linear layers: 25088 -> 4096 -> 4096 -> numClasses.
 * @param numClasses - rows of the last Linear
 * @returns three slots, at classifier.0, .3 and .6
 * @example classifierSlots(10)[2] // { index: 6, inFeatures: 4096, outFeatures: 10, layer: 'logits' }
 */
export function classifierSlots(numClasses: number): LinearSlot[] {
  const last = HEAD_LAYERS.length - 1;
  return HEAD_LAYERS.map((layer, i) => ({
    index: i * MODULES_PER_HIDDEN_LINEAR,
    inFeatures: i === 0 ? FLATTENED_FEATURES : HIDDEN_FEATURES,
    outFeatures: i === last ? numClasses : HIDDEN_FEATURES,
    layer,
  }));
}

/** `classifier` indices of the three Linear layers: [0, 3, 6]. */
export const CLASSIFIER_LINEAR_INDICES: readonly number[] = classifierSlots(0).map((s) => s.index);
/** Module path of the classifier's last Linear, the head a new class count replaces: 'classifier.6'. */
export const HEAD_LINEAR = `classifier.${CLASSIFIER_LINEAR_INDICES[CLASSIFIER_LINEAR_INDICES.length - 1]}`;

/**
 * Whether a canonical tensor name belongs to the head ({@link HEAD_LINEAR}).
 * @param name - e.g. 'classifier.6.bias'
 * @returns true for 'classifier.6.weight' and 'classifier.6.bias'
 */
export function isHeadTensor(name: string): boolean {
  return name.startsWith(`${HEAD_LINEAR}.`);
}

// ---------------------------------------------------------------------------
// State: names and shapes
// ---------------------------------------------------------------------------

/** One tensor of the model's state. */
export interface StateEntry {
  /** Canonical (mmcls, without `backbone.`) name, e.g. 'features.3.bn.running_mean'. */
  name: string;
  /** The same tensor's key in torchvision's VGG, e.g. 'features.5.running_mean'. */
  torchvisionName: string;
  /** The same tensor in timm's VGG: its key ('features.5.running_mean', 'pre_logits.fc1.weight') and stored shape ([4096, 512, 7, 7] for fc6's weight, a 7x7 convolution there). */
  timm: { name: string; shape: number[] };
  /** [] for num_batches_tracked. */
  shape: number[];
  /** The mmcls module holding it, one row of a summary: 'features.3' (a ConvModule, its bn included) or 'classifier.6'. */
  module: string;
  /** Learned (gets a gradient), as opposed to a batch-norm statistic. */
  parameter: boolean;
}

/** A tensor of `module`: its path below the module in mmcls ('conv', 'bn' or ''), its torchvision module, its own name and shape. */
function entry(module: string, sub: string, torchvision: string, tensor: string, shape: number[]): StateEntry {
  const name = `${sub ? `${module}.${sub}` : module}.${tensor}`;
  const torchvisionName = `${torchvision}.${tensor}`;
  return { name, torchvisionName, timm: { name: torchvisionName, shape }, shape, module, parameter: !BN_BUFFERS.includes(tensor) };
}

/**
 * timm's names for the classifier's Linears (timm/models/vgg.py): fc6 and fc7
 * are `pre_logits.fc1`/`fc2`, convolutions whose weights are the Linears'
 * reshaped as timm's `_filter_fn` does (fc6 a 7x7 over the 512-channel map,
 * fc7 a 1x1); the last Linear is `head.fc`, unchanged.
 */
const TIMM_CLASSIFIER: ReadonlyArray<{ module: string; kernel: number }> = [
  { module: 'pre_logits.fc1', kernel: POOLED_SIZE },
  { module: 'pre_logits.fc2', kernel: 1 },
  { module: 'head.fc', kernel: 0 },
];

function convEntries(slot: ConvSlot, batchNorm: boolean): StateEntry[] {
  const mm = `features.${slot.featureIndex}`;
  const tv = featuresIndex(slot, 'torchvision', batchNorm);
  const c = slot.outChannels;
  const out = [
    entry(mm, 'conv', `features.${tv}`, 'weight', [c, slot.inChannels, KERNEL_SIZE, KERNEL_SIZE]),
    entry(mm, 'conv', `features.${tv}`, 'bias', [c]),
  ];
  if (!batchNorm) return out;
  const bn = `features.${tv + torchvisionBnOffset()}`;
  // num_batches_tracked is a 0-d int64 counter; the others hold one value per channel.
  return out.concat(BN_TENSORS.map((t) => entry(mm, 'bn', bn, t, t === 'num_batches_tracked' ? [] : [c])));
}

function linearEntries(slot: LinearSlot, i: number): StateEntry[] {
  const p = `classifier.${slot.index}`;
  const weight = entry(p, '', p, 'weight', [slot.outFeatures, slot.inFeatures]);
  const bias = entry(p, '', p, 'bias', [slot.outFeatures]);
  const { module, kernel } = TIMM_CLASSIFIER[i];
  const k2 = kernel * kernel;
  weight.timm = { name: `${module}.weight`, shape: kernel ? [slot.outFeatures, slot.inFeatures / k2, kernel, kernel] : weight.shape };
  bias.timm = { name: `${module}.bias`, shape: bias.shape };
  return [weight, bias];
}

/**
 * Every parameter and buffer of a VGG, in state_dict order, with its
 * canonical (mmcls) name, torchvision name and shape.
 * @param spec - depth and batch norm
 * @param numClasses - rows of the last Linear; 0 = no classifier (a feature extractor)
 * @returns 16 (vgg11, numClasses 0) to 118 (vgg19_bn with a classifier) entries
 * @example stateShapes({ depth: 11, batchNorm: false }, 10).at(-2)
 * // { name: 'classifier.6.weight', torchvisionName: 'classifier.6.weight', shape: [10, 4096], module: 'classifier.6', parameter: true }
 */
export function stateShapes(spec: ArchSpec, numClasses: number): StateEntry[] {
  const features = convSlots(spec.depth).flatMap((s) => convEntries(s, spec.batchNorm));
  return numClasses > 0 ? features.concat(classifierSlots(numClasses).flatMap(linearEntries)) : features;
}

/**
 * Suffixes of one mmcls ConvModule's tensors (after `features.<i>.`).
 * @param batchNorm - include the BN tensors
 * @returns ['conv.weight', 'conv.bias'] then, with BN, 'bn.weight' ... 'bn.num_batches_tracked'
 */
export function convModuleTensors(batchNorm: boolean): string[] {
  const conv = CONV_TENSORS.map((t) => `conv.${t}`);
  return batchNorm ? conv.concat(BN_TENSORS.map((t) => `bn.${t}`)) : conv;
}

/**
 * Canonical keys of one conv slot: conv weight/bias, then BN tensors.
 * @param slot - a convolution from convSlots
 * @param batchNorm - include the BN tensors
 * @returns e.g. ['features.0.conv.weight', 'features.0.conv.bias']
 */
export function convKeys(slot: ConvSlot, batchNorm: boolean): string[] {
  return convModuleTensors(batchNorm).map((t) => `features.${slot.featureIndex}.${t}`);
}

/**
 * Canonical keys of the classifier (the same in torchvision).
 * @returns ['classifier.0.weight', 'classifier.0.bias', ..., 'classifier.6.bias']
 */
export function classifierKeys(): string[] {
  // Names do not depend on the class count; 1 stands for "has a classifier".
  return classifierSlots(1)
    .flatMap(linearEntries)
    .map((e) => e.name);
}

// ---------------------------------------------------------------------------
// Feature widths
// ---------------------------------------------------------------------------

/**
 * Channels of a feature layer: dimension 1 of what extractFeatures returns
 * for it ([N, C, H, W] for a stage, [N, C] for the others).
 * @param spec - depth and batch norm (every VGG depth has the same widths)
 * @param layer - 'stage1'..'stage5', 'pool5', 'fc6', 'fc7' or 'logits'
 * @param numClasses - the model's class count (0 = no classifier)
 * @returns e.g. 256 for 'stage3', 512 for 'pool5', 4096 for 'fc7', numClasses for 'logits'
 * @throws RangeError for 'fc6', 'fc7' or 'logits' when numClasses is 0, or an unknown layer
 * @example featureWidth(parseArch('vgg16'), 'fc7', 1000) // 4096
 */
export function featureWidth(spec: ArchSpec, layer: FeatureLayer, numClasses: number): number {
  const stage = stageOfLayer(layer);
  if (stage !== undefined) return STAGE_WIDTHS[stage];
  if (layer === 'pool5') return STAGE_WIDTHS[STAGE_WIDTHS.length - 1];
  const linear = classifierSlots(numClasses).find((s) => s.layer === layer);
  if (!linear) throw new RangeError(`Expected one of ${FEATURE_LAYERS.join(', ')} for layer but received ${String(layer)}`);
  if (numClasses <= 0) throw new RangeError(`'${layer}' needs the classifier, which a ${archName(spec)} built with numClasses 0 lacks`);
  return linear.outFeatures;
}

/**
 * Row width of a layer whose activation is one vector per image, whatever
 * the image size: what an empty batch's [0, width] tensor needs.
 * @param spec - depth and batch norm
 * @param layer - a feature layer
 * @param numClasses - the model's class count
 * @returns featureWidth for 'pool5', 'fc6', 'fc7' and 'logits'; undefined for
 *   'stage1'..'stage5', whose maps depend on the image size
 * @example featureVectorWidth(parseArch('vgg11'), 'pool5', 1000) // 512
 */
export function featureVectorWidth(spec: ArchSpec, layer: FeatureLayer, numClasses: number): number | undefined {
  return stageOfLayer(layer) === undefined ? featureWidth(spec, layer, numClasses) : undefined;
}

/** 0-based stage of 'stage1'..'stage5', undefined for the other layers. */
function stageOfLayer(layer: FeatureLayer): number | undefined {
  const m = /^stage(\d+)$/.exec(layer);
  const stage = m ? Number(m[1]) - 1 : -1;
  return stage >= 0 && stage < STAGE_WIDTHS.length ? stage : undefined;
}
