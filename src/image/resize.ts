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
//
// ENLARGING is different: PIL samples output x at (x + 0.5) / scale - 0.5
// (pixel centres aligned, clamped at the edges), libvips' resize() upsizes
// with another alignment (an 8 -> 12 row: PIL 0 0 17 83 100 117 183 200 175 75
// 50 50, resize(linear) 0 0 0 50 100 100 150 200 200 125 50 50). So enlarged
// axes go through affine() instead: pad one edge-copy pixel (affine would
// blend a background colour in where PIL clamps), affine with idx = odx = -0.5
// (output x then samples padded (x + 0.5) / scale + 0.5 and sits at index x),
// keep the top-left width x height. Three sharp calls, all off the main
// thread; 1500x1000 -> 3000x2000 takes 175 ms instead of 88. Shrunk axes stay
// on resize() in the first call. MAD vs PIL (bilinear, no crop unless said,
// max over the inputs; test/preprocess.test.ts asserts < 0.02):
//                                   x1.5    x2      x4      x7      before (resize() only)
//   8x8 sklearn digits (4)         .00289  .00000  .00142  .00160   .460 .379 .188 .107
//   10 photos squashed to 32x32    .00459  .00464  .00355  .00245   .201 .167 .083 .048
//   10 photos, short side 64       .00445  .00420  .00355  .00231   .151 .125 .062 .036
//   short side 64, default pipeline (x4, crop 224)      .00375      before .070
//   300x100 squashed to 224x224 (x down, y up)          .00117      before .121
//   augment 32x32 -> 224, flipped                       .00245      before .048
//   shrinking, the 10 photos above: unchanged (.00187 .. .00401)
// Pixels differ by at most 1 grey level on an 8 -> 12 digit (libvips fixed point).
// bicubic uses affine's 'bicubic' (Catmull-Rom, as PIL): max .019 (digits),
// .0076 (photos), was .52 / .23. lanczos has no affine interpolator and
// nearest is left on resize() (exact for integer factors; at x1.5 libvips
// and PIL break ties differently): .53 and .67 at x1.5, as before.
import { ImageInputError } from './errors';
import { MAX_RESIZED_PIXELS } from './limits';
import sharp from 'sharp';
import type { Interpolation } from './options';
import type { RgbImage } from './normalize';

const KERNELS: Record<Interpolation, keyof sharp.KernelEnum> = {
  bilinear: 'linear',
  bicubic: 'cubic', // Catmull-Rom (a = -0.5), PIL's BICUBIC kernel
  nearest: 'nearest',
  lanczos: 'lanczos3',
};

/**
 * libvips interpolators for enlarging an axis. lanczos has none; nearest stays
 * on resize(), which already equals PIL for integer factors (PIL's NEAREST
 * breaks ties by float rounding that affine() does not reproduce).
 */
const INTERPOLATORS: Partial<Record<Interpolation, 'bilinear' | 'bicubic'>> = {
  bilinear: 'bilinear',
  bicubic: 'bicubic', // libvips' bicubic interpolator is Catmull-Rom too, PIL's BICUBIC when enlarging
};

export interface ResizeExtras {
  /** Region of `img` to take before resampling (augmentation's random crop). */
  extract?: { left: number; top: number; width: number; height: number };
  /** Mirror left-right. */
  flop?: boolean;
}

const raw = (b: Buffer, width: number, height: number): RgbImage => ({ data: new Uint8Array(b.buffer, b.byteOffset, b.byteLength), width, height });

/** sharp over interleaved RGB bytes (already checked against maxPixels when decoded). */
const rawSharp = (data: Uint8Array, width: number, height: number) =>
  sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels: 3 }, limitInputPixels: false });

/** Resamples (a region of) `img` to exactly width x height; aspect is the caller's business. */
export async function resizeRgb(
  img: RgbImage,
  width: number,
  height: number,
  interpolation: Interpolation,
  extras: ResizeExtras = {},
): Promise<RgbImage> {
  const { extract, flop = false } = extras;
  if (!extract && !flop && width === img.width && height === img.height) return img;
  let s = rawSharp(img.data, img.width, img.height);
  if (extract) s = s.extract(extract); // called before resize(): sharp crops first, then resamples
  const srcW = extract ? extract.width : img.width;
  const srcH = extract ? extract.height : img.height;
  const interpolator = INTERPOLATORS[interpolation];
  const upX = interpolator !== undefined && width > srcW;
  const upY = interpolator !== undefined && height > srcH;
  // affine() below runs on over the one-pixel padding by about a scale factor per side.
  const largest = (upX ? Math.ceil(((srcW + 2) * width) / srcW) : width) * (upY ? Math.ceil(((srcH + 2) * height) / srcH) : height);
  if (largest > MAX_RESIZED_PIXELS) {
    throw new ImageInputError(
      `resizing to ${width}x${height} would allocate ${largest} pixels, over ${MAX_RESIZED_PIXELS}; choose a smaller resizeShort or a crop`,
      {
        code: 'TOO_LARGE',
      },
    );
  }
  // Shrunk (or kept) axes go through resize() (with extract and flop, in the
  // first call); enlarged ones through affine() in the second.
  const midW = upX ? srcW : width;
  const midH = upY ? srcH : height;
  if (midW !== srcW || midH !== srcH) s = s.resize(midW, midH, { fit: 'fill', kernel: KERNELS[interpolation] });
  if (flop) s = s.flop();
  if (!upX && !upY) return raw(await s.raw().toBuffer(), width, height);
  // Enlarged axes: pad the input with one copy of its edge pixels, so that
  // affine() finds a real pixel wherever PIL clamps (alone it would blend in
  // a background colour), then sample padded position p + 1: with idx = odx =
  // -0.5, output x samples (x + 0.5) / scale + 0.5 and lands at index x.
  const padX = upX ? 1 : 0;
  const padY = upY ? 1 : 0;
  const padded = await s.extend({ left: padX, right: padX, top: padY, bottom: padY, extendWith: 'copy' }).raw().toBuffer({ resolveWithObject: true });
  const { data, info } = await rawSharp(padded.data, padded.info.width, padded.info.height)
    .affine([width / midW, 0, 0, height / midH], { idx: -0.5 * padX, odx: -0.5 * padX, idy: -0.5 * padY, ody: -0.5 * padY, interpolator })
    .raw()
    .toBuffer({ resolveWithObject: true });
  // The output runs on over the padding (about scale pixels): keep the first width x height.
  if (info.width < width || info.height < height)
    throw new ImageInputError(`affine gave ${info.width}x${info.height}, expected at least ${width}x${height}`);
  if (info.width === width && info.height === height) return raw(data, width, height);
  return raw(await rawSharp(data, info.width, info.height).extract({ left: 0, top: 0, width, height }).raw().toBuffer(), width, height);
}
