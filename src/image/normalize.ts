// Interleaved 8-bit RGB (HWC) -> normalised float32 NCHW, cropping on the way
// (cropping while copying is cheaper than asking sharp for another pass).
import type { Tensor } from '../tensor';

export interface RgbImage {
  /** Interleaved R,G,B bytes, row-major, no padding. */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

export function toNormalizedTensor(img: RgbImage, box: Box, mean: readonly number[], std: readonly number[]): Tensor {
  const { width: W, height: H, left, top } = box;
  const plane = W * H;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const m = mean[c];
    const s = std[c];
    const base = c * plane;
    for (let y = 0; y < H; y++) {
      let src = ((y + top) * img.width + left) * 3 + c;
      let dst = base + y * W;
      for (let x = 0; x < W; x++, src += 3) out[dst++] = (img.data[src] - m) / s;
    }
  }
  return { data: out, shape: [1, 3, H, W] };
}
