// The one per-depth table every part of the package builds VGG from
// (mmcls `VGG.arch_settings`), and the canonical parameter names: mmcls's
// state_dict keys without the `backbone.` prefix.

export const ARCHITECTURES = [
  'vgg11', 'vgg13', 'vgg16', 'vgg19',
  'vgg11_bn', 'vgg13_bn', 'vgg16_bn', 'vgg19_bn',
] as const;
export type Architecture = typeof ARCHITECTURES[number];
export type Depth = 11 | 13 | 16 | 19;

/** Convolutions per stage for each depth. */
export const STAGE_BLOCKS: Readonly<Record<Depth, readonly number[]>> = {
  11: [1, 1, 2, 2, 2],
  13: [2, 2, 2, 2, 2],
  16: [2, 2, 3, 3, 3],
  19: [2, 2, 4, 4, 4],
};
/** Output channels of each stage. */
export const STAGE_WIDTHS: readonly number[] = [64, 128, 256, 512, 512];
/** Classifier: Linear(512*7*7, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU, Dropout, Linear(4096, numClasses). */
export const CLASSIFIER_LINEAR_INDICES: readonly number[] = [0, 3, 6];
export const HIDDEN_FEATURES = 4096;
export const FLATTENED_FEATURES = 512 * 7 * 7;

export interface ArchSpec { depth: Depth; batchNorm: boolean }

export function isArchitecture(value: unknown): value is Architecture {
  return typeof value === 'string' && (ARCHITECTURES as readonly string[]).includes(value);
}

export function parseArch(arch: Architecture): ArchSpec {
  const m = /^vgg(11|13|16|19)(_bn)?$/.exec(arch);
  if (!m) throw new TypeError(`Expected one of ${ARCHITECTURES.join(', ')} for arch but received ${String(arch)}`);
  return { depth: Number(m[1]) as Depth, batchNorm: m[2] !== undefined };
}

export function archName(spec: ArchSpec): Architecture {
  return `vgg${spec.depth}${spec.batchNorm ? '_bn' : ''}` as Architecture;
}

/** Which depth has this many convolutions per stage, if any. */
export function depthFromStageBlocks(blocks: readonly number[]): Depth | undefined {
  for (const [d, b] of Object.entries(STAGE_BLOCKS)) {
    if (b.length === blocks.length && b.every((v, i) => v === blocks[i])) return Number(d) as Depth;
  }
  return undefined;
}

export interface ConvSlot {
  /** Index in the flat `features` sequence (mmcls numbering). */
  featureIndex: number;
  stage: number;
  inChannels: number;
  outChannels: number;
}

/**
 * The convolutions of a depth in order, with their mmcls `features` index:
 * one entry per ConvModule and one MaxPool closing each stage.
 */
export function convSlots(depth: Depth): ConvSlot[] {
  const slots: ConvSlot[] = [];
  let index = 0;
  let inChannels = 3;
  STAGE_BLOCKS[depth].forEach((blocks, stage) => {
    const outChannels = STAGE_WIDTHS[stage];
    for (let b = 0; b < blocks; b++) {
      slots.push({ featureIndex: index++, stage, inChannels, outChannels });
      inChannels = outChannels;
    }
    index++; // the stage's MaxPool
  });
  return slots;
}

/** Canonical keys of one conv slot: conv weight/bias, then BN tensors. */
export function convKeys(slot: ConvSlot, batchNorm: boolean): string[] {
  const p = `features.${slot.featureIndex}`;
  const keys = [`${p}.conv.weight`, `${p}.conv.bias`];
  if (batchNorm) {
    keys.push(`${p}.bn.weight`, `${p}.bn.bias`, `${p}.bn.running_mean`, `${p}.bn.running_var`, `${p}.bn.num_batches_tracked`);
  }
  return keys;
}

export function classifierKeys(): string[] {
  return CLASSIFIER_LINEAR_INDICES.flatMap((i) => [`classifier.${i}.weight`, `classifier.${i}.bias`]);
}
