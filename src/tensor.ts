import { invalidRange, invalidType, isPlainObject } from './validate';

/**
 * A dense float32 tensor, row-major (C order): the last dimension varies
 * fastest, so image batches are NCHW `[N, 3, H, W]` and feature rows `[N, C]`.
 * Model inputs hold RGB already normalised, `(v - mean) / std` on the 0..255
 * scale (see {@link preprocess}).
 */
export interface Tensor {
  /** The elements, row-major; `data.length` equals the product of `shape`. */
  data: Float32Array;
  /** Size of each dimension, e.g. `[N, 3, H, W]` for images, `[N, numClasses]` for logits. */
  shape: number[];
}

/**
 * Same-size 8-bit RGB images for the network, [N, H, W, 3] interleaved, with
 * the normalisation still to apply: (v - mean[c]) / std[c], 0..255 units.
 * The native side normalises on the thread pool, so the JS thread only copies
 * bytes (a quarter of a float32 batch's size).
 */
export interface PixelBatch {
  pixels: Uint8Array;
  shape: [number, number, number, 3];
  mean: readonly number[];
  std: readonly number[];
}

/** What the model's forward takes internally: float32 NCHW, or pixels to normalise. */
export type ModelInput = Tensor | PixelBatch;

export function isPixelBatch(x: ModelInput): x is PixelBatch {
  return (x as PixelBatch).pixels !== undefined;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Checks a Tensor's own consistency (shape of non-negative integers, data length). */
export function checkTensor(param: string, value: unknown): Tensor {
  if (!isPlainObject(value) || !('data' in value) || !('shape' in value)) {
    throw invalidType(param, 'a Tensor { data: Float32Array, shape: number[] }', value);
  }
  const { data, shape } = value as { data: unknown; shape: unknown };
  if (!(data instanceof Float32Array)) throw invalidType(`${param}.data`, 'a Float32Array', data);
  if (!Array.isArray(shape)) throw invalidType(`${param}.shape`, 'an array of sizes', shape);
  shape.forEach((s, i) => {
    if (typeof s !== 'number') throw invalidType(`${param}.shape[${i}]`, 'a non-negative integer', s);
    if (!Number.isInteger(s) || s < 0) throw invalidRange(`${param}.shape[${i}]`, 'a non-negative integer', s);
  });
  const n = numel(shape as number[]);
  if (data.length !== n) {
    throw invalidRange(`${param}.data`, `${n} elements for shape [${(shape as number[]).join(', ')}]`, data);
  }
  return { data, shape: shape as number[] };
}

/**
 * An image batch for the network: [N,3,H,W] (or [3,H,W], given a batch of 1),
 * large enough to survive five 2x2 poolings.
 */
export function checkImageBatch(param: string, value: unknown, minSize = 32): Tensor {
  const t = checkTensor(param, value);
  const shape = t.shape.length === 3 ? [1, ...t.shape] : t.shape;
  if (shape.length !== 4) throw invalidRange(`${param}.shape`, 'an NCHW shape [N, 3, H, W] or [3, H, W]', t.shape);
  if (shape[1] !== 3) throw invalidRange(`${param}.shape[1]`, '3 channels (RGB)', shape[1]);
  if (shape[0] < 1) throw invalidRange(`${param}.shape[0]`, 'a batch of at least 1', shape[0]);
  if (shape[2] < minSize || shape[3] < minSize) {
    throw invalidRange(`${param}.shape`, `height and width of at least ${minSize}`, t.shape);
  }
  return { data: t.data, shape };
}
