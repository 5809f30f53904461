// What decoding and resizing one image may cost, decided from its header
// before any pixel is allocated. A 438-byte 60000x2 PNG once asked the short-side
// resize for 7,680,000x256 pixels: a 5.9 GB sharp output buffer, past Node's
// buffer.constants.MAX_LENGTH (4 GiB on Node 20), where Node frees the memory
// through the finalizer and node-addon-api's Buffer::NewOrCopy frees its
// finalizer data a second time (a double free that aborts the process). No
// buffer we ask sharp for comes near that size: every request is bounded here.

/** Images with more pixels than this (2^25, 33.5 MP) are shrunk while libvips decodes them (streamed, never held whole). */
export const DECODE_BUDGET_PIXELS = 2 ** 25;
/**
 * Decoders that can hand libvips rows as they go: baseline JPEG and
 * non-interlaced PNG. The others (GIF, WebP, AVIF, TIFF, progressive JPEG,
 * interlaced PNG) hold the whole frame, so past DECODE_BUDGET_PIXELS they are refused.
 */
export function streams(format: string, progressive: boolean): boolean {
  return (format === 'jpeg' || format === 'png') && !progressive;
}
/**
 * Widest stored row any decode may have (2^16 pixels; JPEG's own limit is
 * 65535). libvips works in strips of whole rows, one buffer per stage and
 * thread: a 16,777,216x3 PNG took 1.6 GB and a 16,777,216x1 RGBA one 517 MB
 * though both are small in pixels (found by the fuzzer).
 */
export const MAX_ROW_PIXELS = 2 ** 16;
/** Most pixels a resize may produce (2^26: 201 MB of RGB); more is refused as TOO_LARGE. */
export const MAX_RESIZED_PIXELS = 2 ** 26;
/**
 * 'short' resize with a centre crop: an image more elongated than this (long
 * side / short side) is centre-cropped to this aspect before resizing, so the
 * intermediate stays under MAX_ASPECT x resizeShort² pixels. The crop window
 * lies far inside that region, so only sub-pixel alignment changes.
 */
export const MAX_ASPECT = 16;
/**
 * The stated bound on decoding plus preprocessing one image: peak memory above
 * the process's baseline stays under 4 bytes per pixel of a 4-channel decode
 * of the budget, 4 x 3 x DECODE_BUDGET_PIXELS = 403 MB (measured in test/hostile-images.test.ts).
 */
export const PEAK_BOUND_BYTES = 4 * 3 * DECODE_BUDGET_PIXELS;

export interface Size {
  width: number;
  height: number;
}

/** The size an image of `width` x `height` is decoded at: itself, or shrunk (aspect kept) to at most DECODE_BUDGET_PIXELS. */
export function decodeSize(width: number, height: number): Size {
  const pixels = width * height;
  if (pixels <= DECODE_BUDGET_PIXELS) return { width, height };
  const f = Math.sqrt(DECODE_BUDGET_PIXELS / pixels);
  let w = Math.max(1, Math.floor(width * f));
  let h = Math.max(1, Math.floor(height * f));
  // A one-pixel-thin strip keeps its short side: take it all off the long one.
  if (w * h > DECODE_BUDGET_PIXELS) {
    if (w > h) w = Math.floor(DECODE_BUDGET_PIXELS / h);
    else h = Math.floor(DECODE_BUDGET_PIXELS / w);
  }
  return { width: w, height: h };
}

/** The centre region of an image past MAX_ASPECT, cropped to MAX_ASPECT; undefined when within it. */
export function aspectWindow(width: number, height: number): { left: number; top: number; width: number; height: number } | undefined {
  const short = Math.min(width, height);
  const keep = MAX_ASPECT * short;
  if (Math.max(width, height) <= keep) return undefined;
  return width > height
    ? { left: Math.floor((width - keep) / 2), top: 0, width: keep, height }
    : { left: 0, top: Math.floor((height - keep) / 2), width, height: keep };
}
