// Training augmentation (torchvision / mmcls train pipeline):
// RandomResizedCrop -> horizontal flip -> ColorJitter -> Normalize -> [1,3,H,W].
// Every random draw comes from the caller's PRNG, so a seed reproduces a sample.
import type { Tensor } from '../tensor';
import { classifyInput, decodeRgb, type ImageInput } from './decode';
import { invalidType } from '../validate';
import { colorJitter } from './jitter';
import { toNormalizedTensor } from './normalize';
import { resolveAugmentOptions, type AugmentOptions, type ResolvedAugmentOptions } from './options';
import { randInt, uniform, type Rng } from './random';
import { resizeRgb } from './resize';

export { createRng, type Rng } from './random';
export type { ColorJitterOptions } from './jitter';
export { resolveAugmentOptions, type AugmentOptions, type RandomResizedCropOptions, type ResolvedAugmentOptions } from './options';

/** torchvision RandomResizedCrop.get_params: 10 tries, then a centre crop clamped to the ratio range. */
export function randomResizedCropBox(
  width: number,
  height: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  rng: Rng,
): { left: number; top: number; width: number; height: number } {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * uniform(rng, scale[0], scale[1]);
    const aspect = Math.exp(uniform(rng, logRatio[0], logRatio[1]));
    const w = Math.round(Math.sqrt(targetArea * aspect));
    const h = Math.round(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: randInt(rng, 0, height - h), left: randInt(rng, 0, width - w), width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(ratio[0], ratio[1])) h = Math.round(w / Math.min(ratio[0], ratio[1]));
  else if (inRatio > Math.max(ratio[0], ratio[1])) w = Math.round(h * Math.max(ratio[0], ratio[1]));
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), width: w, height: h };
}

/**
 * One training sample: decode, random-resized-crop, maybe mirror, colour
 * jitter, normalise -> [1, 3, size, size]. Deterministic for a given `rng`
 * state (draw order: crop, flip, jitter order and factors). A thin wrapper:
 * the options are resolved here, then {@link augmentResolved} runs; callers
 * with many images resolve once and call that.
 *
 * @param input - a path, encoded bytes, a sharp instance or raw pixels (not a Tensor)
 * @param options - see {@link AugmentOptions}; undefined = all defaults
 * @param rng - uniform numbers in [0, 1), e.g. createRng(seed)
 * @returns float32 `[1, 3, H, W]` (224x224 by default)
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad option (named as
 *   `options.hflip` etc.), `rng` or input, before the input is read; the promise rejects
 * @throws {@link ImageInputError} when the image cannot be read
 * @example
 * ```ts
 * const x = await augment('cat.jpg', { hflip: 1, colorJitter: { brightness: 0.2 } }, createRng(0)); // [1, 3, 224, 224]
 * ```
 */
export async function augment(input: ImageInput, options: AugmentOptions | undefined, rng: Rng): Promise<Tensor> {
  const o = resolveAugmentOptions(options, 'options');
  if (typeof rng !== 'function') throw invalidType('rng', 'a function returning numbers in [0, 1) (see createRng)', rng);
  return augmentResolved(input, o, rng);
}

/** {@link augment} with options already resolved: nothing is checked again. */
export async function augmentResolved(input: ImageInput, o: ResolvedAugmentOptions, rng: Rng): Promise<Tensor> {
  const item = classifyInput(input, 'input');
  if (item.kind === 'tensor') throw invalidType('input', 'an image (a normalised Tensor cannot be augmented)', input);
  const img = await decodeRgb(item, o);
  const crop = o.randomResizedCrop;
  const box = crop ? randomResizedCropBox(img.width, img.height, crop.scale, crop.ratio, rng) : undefined;
  const flop = rng() < o.hflip;
  const [h, w] = o.size;
  const out = await resizeRgb(img, w, h, o.interpolation, { extract: box, flop });
  if (out === img) out.data = out.data.slice(); // jitter works in place; never touch the caller's pixels
  colorJitter(out, o.colorJitter, rng);
  return toNormalizedTensor(out, { left: 0, top: 0, width: w, height: h }, o.mean, o.std);
}
