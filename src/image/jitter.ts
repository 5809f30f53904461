// torchvision ColorJitter (brightness, contrast, saturation) on 8-bit RGB.
// Done in JS on the already-cropped image (224x224: ~50k pixels, well under a
// millisecond) rather than with sharp's modulate(), which scales lightness in
// LCh: torchvision/PIL blend in RGB, and fine-tuning should see the same
// distribution the weights were trained with.
import type { RgbImage } from './normalize';
import { uniform, type Rng } from './random';

/**
 * torchvision's ColorJitter on 8-bit RGB (PIL's ImageEnhance blends): each
 * enabled jitter draws a factor f uniformly from [max(0, 1 - v), 1 + v] and
 * blends `img * f + other * (1 - f)`, the jitters applied in a random order.
 * Each value is a non-negative number.
 */
export interface ColorJitterOptions {
  /** Brightness: blends with black. 0 = off. Default: 0. */
  brightness?: number;
  /** Contrast: blends with the image's mean grey (ITU-R 601 luma, as PIL's convert('L')). 0 = off. Default: 0. */
  contrast?: number;
  /** Saturation: blends with the image's own grey version. 0 = off. Default: 0. */
  saturation?: number;
}

const clip = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** PIL's ITU-R 601 luma, as Image.convert('L'). */
function luma(d: Uint8Array, i: number): number {
  return (d[i] * 299 + d[i + 1] * 587 + d[i + 2] * 114) / 1000;
}

/** out = img * f + other * (1 - f), where `other` is black, a grey level, or the luma image. */
function blend(d: Uint8Array, f: number, other: (i: number) => number): void {
  for (let i = 0; i < d.length; i += 3) {
    const o = other(i) * (1 - f);
    d[i] = clip(d[i] * f + o);
    d[i + 1] = clip(d[i + 1] * f + o);
    d[i + 2] = clip(d[i + 2] * f + o);
  }
}

/** Applies the enabled jitters in a random order (as torchvision does), in place. */
export function colorJitter(img: RgbImage, o: Required<ColorJitterOptions>, rng: Rng): void {
  const d = img.data;
  const ops: Array<() => void> = [];
  if (o.brightness > 0) ops.push(() => blend(d, uniform(rng, Math.max(0, 1 - o.brightness), 1 + o.brightness), () => 0));
  if (o.contrast > 0) {
    ops.push(() => {
      const f = uniform(rng, Math.max(0, 1 - o.contrast), 1 + o.contrast);
      let sum = 0;
      for (let i = 0; i < d.length; i += 3) sum += Math.round(luma(d, i));
      const mean = Math.round(sum / (d.length / 3));
      blend(d, f, () => mean);
    });
  }
  if (o.saturation > 0) {
    ops.push(() => blend(d, uniform(rng, Math.max(0, 1 - o.saturation), 1 + o.saturation), (i) => Math.round(luma(d, i))));
  }
  // Fisher-Yates shuffle of the order.
  for (let i = ops.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [ops[i], ops[j]] = [ops[j], ops[i]];
  }
  for (const op of ops) op();
}
