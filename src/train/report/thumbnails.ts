// The report's worst misclassified validation images: kept while validation
// scores its batches (no second pass over the data), then, for those few
// only, small PNGs of the image as the network saw it and of the picked
// class's Grad-CAM over it, as data: URIs the page embeds.
import sharp from 'sharp';
import type { ModelCore } from '../../core/model-core';
import type { DatasetItem } from '../../data/types';
import { cropBatch, type Crop, type PreprocessOptions } from '../../image/preprocess';
import { blend, type RgbPixels } from '../../inference/overlay';
import { packCrops } from '../../inference/pipeline';
import type { Misclassified } from './collect';

/** Worst misclassified images kept per validation pass. */
export const WORST_COUNT = 8;

/** Thumbnails are at most this many pixels a side (smaller images are kept as they are; the page scales them up). */
export const THUMB_SIZE = 96;

/** Grad-CAM at conv5's rectified maps, as the paper and explain() do by default. */
const GRADCAM_LAYER = 'stage5';

/**
 * Keeps the `k` misclassified items with the highest cross-entropy among the
 * batches it is shown; `observe` fits evaluate's scoreLoader.
 */
export class WorstTracker {
  readonly #worst: Misclassified[] = [];

  constructor(
    private readonly items: readonly DatasetItem[],
    private readonly k = WORST_COUNT,
  ) {}

  /** logits: [n, C] row-major for the batch's rows. */
  observe = (logits: Float32Array, batch: { labels: BigInt64Array; indices: number[] }): void => {
    const C = logits.length / Math.max(1, batch.labels.length);
    batch.indices.forEach((index, r) => {
      const row = logits.subarray(r * C, (r + 1) * C);
      const y = Number(batch.labels[r]);
      const { arg, loss, probability } = scoreRow(row, y);
      if (arg !== y) this.#keep({ path: this.items[index]?.path ?? `#${index}`, trueClass: y, predicted: arg, loss, probability });
    });
  };

  /** The kept items, worst first. */
  get worst(): Misclassified[] {
    return [...this.#worst];
  }

  #keep(m: Misclassified): void {
    if (this.#worst.length === this.k && m.loss <= this.#worst[this.k - 1].loss) return;
    const at = this.#worst.findIndex((w) => m.loss > w.loss);
    this.#worst.splice(at < 0 ? this.#worst.length : at, 0, m);
    if (this.#worst.length > this.k) this.#worst.pop();
  }
}

/** Arg-max, cross-entropy of class y and the arg-max's softmax probability of one logit row. */
function scoreRow(row: Float32Array, y: number): { arg: number; loss: number; probability: number } {
  let arg = 0;
  for (let c = 1; c < row.length; c++) if (row[c] > row[arg]) arg = c;
  const max = row[arg];
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return { arg, loss: Math.log(sum) + max - row[y], probability: 1 / sum };
}

/** A PNG data: URI of 8-bit RGB pixels, shrunk to THUMB_SIZE a side when larger. */
async function dataUri(p: RgbPixels): Promise<string> {
  const png = await sharp(Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength), {
    raw: { width: p.width, height: p.height, channels: 3 },
  })
    .resize(THUMB_SIZE, THUMB_SIZE, { fit: 'inside', withoutEnlargement: true })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/**
 * The worst items with `thumbnail` and `overlay` filled: one Grad-CAM pass
 * over all of them (each explained for its predicted class), preprocessed as
 * the model's input pipeline says. Rejects when any image cannot be read or
 * Grad-CAM fails; the caller then shows the items without pictures.
 */
export async function withThumbnails(
  model: ModelCore,
  worst: readonly Misclassified[],
  preprocess: PreprocessOptions | undefined,
  signal?: AbortSignal,
): Promise<Misclassified[]> {
  if (worst.length === 0) return [];
  const { results, mean, std } = await cropBatch(
    worst.map((m) => m.path),
    preprocess,
  );
  const crops = results.map((r) => {
    if (!r.ok) throw r.error;
    if (!('box' in r.crop)) throw new Error('unreachable: a file path decodes to a crop');
    return r.crop as Crop;
  });
  const { width, height } = crops[0].box;
  if (crops.some((c) => c.box.width !== width || c.box.height !== height)) throw new Error('the crops differ in size: no common batch');
  const batch = packCrops(crops, { mean, std });
  const [n, h, w] = batch.shape;
  const cams = await model.explain(
    batch,
    GRADCAM_LAYER,
    worst.map((m) => m.predicted),
    signal,
  );
  const out: Misclassified[] = [];
  for (let i = 0; i < n; i++) {
    const image: RgbPixels = { data: batch.pixels.subarray(i * h * w * 3, (i + 1) * h * w * 3), width: w, height: h };
    const map = { data: cams.maps.data.subarray(i * h * w, (i + 1) * h * w), shape: [h, w] };
    out.push({ ...worst[i], thumbnail: await dataUri(image), overlay: await dataUri(blend(map, image)) });
  }
  return out;
}
