// Resampling of decoded RGB with sharp (off the main thread).
//
// Kernel choice, measured against PIL's Image.BILINEAR (mmcls' pillow backend)
// through the whole default pipeline (short side 256, crop 224, normalise):
// mean |ours - PIL| in normalised units (test/preprocess.test.ts asserts < 0.02):
//                chelsea coffee astronaut rocket china  flower hubble motorcycle camera logo
//   linear       .00399  .00357 .00278    .00190 .00380 .00294 .00263 .00401     .00261 .00187
//   mitchell     .00865  .00711 .01128    .00348 .01143 .00687 .00676 .01199     .00965 .00370
//   cubic        .01925  .01650 .02793    .00823 .03410 .01660 .02046 .03560     .02249 .01025
//   lanczos3     .02805  .02390 .03948    .01261 .05334 .02447 .03288 .05403     .03235 .01548
//   nearest      .06334  .04841 .09614    .03090 .15946 .05050 .09794 .11063     .08918 .02907
//   linear fused into the decode (one sharp call), shrink-on-load on: hubble .01039
//   (JPEG DCT downscaling); with fastShrinkOnLoad: false it equals the row above.
//   rocket with its ICC profile applied (PIL ignores it): .089 whatever the kernel.
//   A JS port of PIL's fixed-point Resample.c gives 0 but runs on the main thread.
// Max abs difference with linear: 2 grey levels (0.035).
// libvips' 'linear' reduce widens the triangle with the shrink factor, as PIL
// does, so it antialiases the same way; the residue is fixed-point rounding.
// Resizing decoded pixels (not fused into the decoder) also keeps JPEG
// shrink-on-load and alpha premultiplication out of the result.
import sharp from 'sharp';
import type { Interpolation } from './options';
import type { RgbImage } from './normalize';

const KERNELS: Record<Interpolation, keyof sharp.KernelEnum> = {
  bilinear: 'linear',
  bicubic: 'cubic', // Catmull-Rom (a = -0.5), PIL's BICUBIC kernel
  nearest: 'nearest',
  lanczos: 'lanczos3',
};

export interface ResizeExtras {
  /** Region of `img` to take before resampling (augmentation's random crop). */
  extract?: { left: number; top: number; width: number; height: number };
  /** Mirror left-right. */
  flop?: boolean;
}

/** Resamples (a region of) `img` to exactly width x height; aspect is the caller's business. */
export async function resizeRgb(img: RgbImage, width: number, height: number, interpolation: Interpolation,
  extras: ResizeExtras = {}): Promise<RgbImage> {
  const { extract, flop = false } = extras;
  if (!extract && !flop && width === img.width && height === img.height) return img;
  let s = sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: 3 },
    limitInputPixels: false, // already checked against maxPixels when decoded
  });
  if (extract) s = s.extract(extract); // called before resize(): sharp crops first, then resamples
  s = s.resize(width, height, { fit: 'fill', kernel: KERNELS[interpolation] });
  if (flop) s = s.flop();
  const data = await s.raw().toBuffer();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
}
