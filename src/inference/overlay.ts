// Pictures of Grad-CAM maps: a perceptual colour map (Google's Turbo, through
// its published polynomial fit) blended over the image the network saw, encoded
// by sharp (callers write it with fs/atomic-file, so a reader never sees half a PNG).
import sharp from 'sharp';
import type { Tensor } from '../tensor';

/** How strongly the colour map covers the image in an overlay (0 = image only, 1 = map only). */
export const OVERLAY_ALPHA = 0.5;

// Turbo (Mikhailov, 2019): degree-5 polynomials per channel, in 0..1.
const TURBO: readonly (readonly number[])[] = [
  [0.13572138, 4.6153926, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
  [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
  [0.1066733, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
];

/** Turbo's colour for v in 0..1 (clamped), as 0..255 RGB. */
export function turbo(v: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, v));
  const channel = (c: readonly number[]): number => {
    let y = 0;
    for (let i = c.length - 1; i >= 0; i--) y = y * x + c[i];
    return Math.round(Math.min(1, Math.max(0, y)) * 255);
  };
  return [channel(TURBO[0]), channel(TURBO[1]), channel(TURBO[2])];
}

/** 8-bit RGB pixels [H, W, 3], interleaved. */
export interface RgbPixels {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * A normalised [1, 3, H, W] tensor shown as an image: each channel stretched
 * min..max to 0..255 (the caller's normalisation is unknown here).
 */
export function tensorToRgb(t: Tensor): RgbPixels {
  const [, , height, width] = t.shape;
  const plane = height * width;
  const data = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const ch = t.data.subarray(c * plane, (c + 1) * plane);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of ch) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const scale = hi > lo ? 255 / (hi - lo) : 0;
    for (let i = 0; i < plane; i++) data[i * 3 + c] = Math.round((ch[i] - lo) * scale);
  }
  return { data, width, height };
}

/** The map's Turbo colours blended over `image` (same size) with weight `alpha`. */
export function blend(map: Tensor, image: RgbPixels, alpha = OVERLAY_ALPHA): RgbPixels {
  const n = image.width * image.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const rgb = turbo(map.data[i]);
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round((1 - alpha) * image.data[i * 3 + c] + alpha * rgb[c]);
  }
  return { data: out, width: image.width, height: image.height };
}

/** PNG bytes of 8-bit RGB pixels. */
export function encodePng(p: RgbPixels): Promise<Buffer> {
  return sharp(Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength), {
    raw: { width: p.width, height: p.height, channels: 3 },
  })
    .png()
    .toBuffer();
}
