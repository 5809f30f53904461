// POST /v1/features' arithmetic: one layer's activations of one image,
// optionally pooled over height and width, as JSON or float32 little-endian.
import type { Tensor } from '../tensor';

/** How a stage's map [1, C, H, W] is reduced: not at all, or averaged / maxed over H x W to [1, C]. */
export const POOLINGS = ['none', 'avg', 'max'] as const;
export type Pooling = (typeof POOLINGS)[number];

/** `t` pooled over its spatial dimensions; a tensor of rank < 4 (pool5, fc6, fc7, logits) as it is. */
export function pool(t: Tensor, pooling: Pooling): Tensor {
  if (pooling === 'none' || t.shape.length < 4) return t;
  const [n, c, h, w] = t.shape;
  const area = h * w;
  const out = new Float32Array(n * c);
  for (let i = 0; i < n * c; i++) {
    const plane = t.data.subarray(i * area, (i + 1) * area);
    let acc = pooling === 'max' ? -Infinity : 0;
    for (let k = 0; k < area; k++) acc = pooling === 'max' ? Math.max(acc, plane[k]) : acc + plane[k];
    out[i] = pooling === 'max' ? acc : acc / area;
  }
  return { data: out, shape: [n, c] };
}

/** float32 little-endian bytes of `t` (a copy when the host is big-endian). */
export function float32le(t: Tensor): Buffer {
  const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return bytes;
  return Buffer.from(bytes).swap32();
}
