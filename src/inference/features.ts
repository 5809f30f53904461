// extractFeatures(): one layer's activations for many images as one
// [N, ...] tensor, batched and pipelined like classify (see pipeline.ts).
import { featureVectorWidth } from '../arch';
import type { ModelCore } from '../core/model-core';
import { FEATURE_LAYERS, HEAD_LAYERS, type FeatureLayer } from '../core/forward';
import type { ImageInput } from '../image/preprocess';
import { abortable, throwIfAborted } from '../abort';
import { checkImageBatch, numel, type ModelInput, type Tensor } from '../tensor';
import { checkBoolean, checkOneOf, invalidRange, isPlainObject, keysOf, outOfRange, orDefault } from '../validate';
import { BATCH_KEYS, checkItem, checkModel, itemName, resolveBatchOptions, runPipeline, type BatchOptions } from './pipeline';

/** Options of {@link Vgg.extractFeatures}: batching and preprocessing ({@link BatchOptions}) plus these. */
export interface FeatureOptions extends BatchOptions {
  /** Which activation to return (shapes under {@link FeatureLayer}). Default: 'pool5'. */
  layer?: FeatureLayer;
  /** Divide each row (one input's features, flattened) by max(its L2 norm, 1e-12), as `torch.nn.functional.normalize`. Default: false. */
  normalize?: boolean;
}

const FEATURE_KEYS = keysOf<FeatureOptions>()([...BATCH_KEYS, 'layer', 'normalize']);

function isTensorBatch(v: unknown): v is Tensor {
  return isPlainObject(v) && v.data instanceof Float32Array && Array.isArray(v.shape);
}

/**
 * Gathers per-input rows into one [N, ...] tensor as batches finish, so a
 * batch's output is garbage once copied; a single batch is returned as is.
 */
class Rows {
  private whole: Tensor | undefined;
  private data: Float32Array | undefined;
  private rest: number[] = [];
  private size = 0;

  constructor(
    private readonly n: number,
    private readonly layer: FeatureLayer,
  ) {}

  add(index: number, out: Tensor, row: number): void {
    if (this.whole) return; // every row already lives in `whole`
    if (!this.data) {
      if (out.shape[0] === this.n) {
        this.whole = out;
        return;
      }
      this.rest = out.shape.slice(1);
      this.size = numel(this.rest);
      this.data = new Float32Array(this.n * this.size);
    }
    const rest = out.shape.slice(1);
    if (rest.length !== this.rest.length || rest.some((s, i) => s !== this.rest[i])) {
      throw outOfRange(
        `'${this.layer}' has shape [${rest.join(', ')}] for inputs[${index}] but [${this.rest.join(', ')}] for ` +
          "earlier inputs: give every image one size (options.preprocess.crop), or use 'pool5'/'fc7', which do not depend on it",
      );
    }
    this.data.set(out.data.subarray(row * this.size, (row + 1) * this.size), index * this.size);
  }

  result(): Tensor {
    if (this.whole) return this.whole;
    return { data: this.data!, shape: [this.n, ...this.rest] };
  }
}

/** In place: each row divided by max(‖row‖₂, 1e-12), as torch.nn.functional.normalize does. */
export function l2NormalizeRows(t: Tensor): void {
  const n = t.shape[0];
  if (n === 0) return;
  const size = t.data.length / n;
  for (let r = 0; r < n; r++) {
    const row = t.data.subarray(r * size, (r + 1) * size);
    let sum = 0;
    for (let i = 0; i < size; i++) sum += row[i] * row[i];
    const scale = 1 / Math.max(Math.sqrt(sum), 1e-12);
    for (let i = 0; i < size; i++) row[i] *= scale;
  }
}

/**
 * One layer's activations, one row per input: Tensor [N, ...].
 *
 * Layers ('stageK' maps have the stage's width and stride 2^K with the
 * default pools; sizes below are for 224x224 inputs):
 * - 'stage1'..'stage5': [N,64,112,112], [N,128,56,56], [N,256,28,28],
 *   [N,512,14,14], [N,512,7,7] — what mmcls' backbone returns for
 *   out_indices 0..4. Use them as a detection / segmentation backbone
 *   (FPN-style multi-scale maps) or for style/texture statistics.
 * - 'pool5': [N,512], stage5 averaged over height and width, for any input
 *   size. Retrieval / near-duplicate search (with `normalize: true`, cosine
 *   similarity is a dot product) and a compact linear probe, especially
 *   when the images are far from ImageNet.
 * - 'fc6', 'fc7': [N,4096] after ReLU (dropout is off in inference). 'fc7'
 *   is what the class head reads: the usual linear-probe / transfer feature,
 *   and with `normalize: true` a strong retrieval feature for ImageNet-like
 *   photos.
 * - 'logits': [N,numClasses], raw class scores before softmax.
 * 'fc6', 'fc7' and 'logits' need the classifier (a model built with
 * numClasses 0 has none); other sizes than 224x224 reach it through an
 * adaptive average pool to 7x7.
 *
 * `inputs`: one image input, an array of them (decoded with
 * `options.preprocess`, batched and pipelined like classify), or a ready
 * Tensor [N,3,H,W] / [3,H,W] (run in slices of batchSize, no copy). A bad
 * image rejects the call with its error (ImageInputError with `.index`):
 * there is no partial tensor. `signal` aborts with AbortError.
 */
export async function extractFeatures(
  model: ModelCore,
  inputs: ImageInput | readonly ImageInput[] | Tensor,
  options?: FeatureOptions,
): Promise<Tensor> {
  checkModel(model);
  const { resolved: o, raw } = resolveBatchOptions(model, options, FEATURE_KEYS);
  const layer = orDefault(raw.layer, 'pool5', (v) => checkOneOf('options.layer', v, FEATURE_LAYERS));
  if (HEAD_LAYERS.includes(layer)) model.assertClassifier(`return ${layer} (ask for 'stage1'..'stage5' or 'pool5')`);
  const normalize = orDefault(raw.normalize, false, (v) => checkBoolean('options.normalize', v));
  const forward = async (x: ModelInput): Promise<Tensor> => (await model.forwardLayers(x, [layer], o.forward))[0];

  let result: Tensor;
  if (isTensorBatch(inputs)) {
    const x = checkImageBatch('inputs', inputs);
    const [n, c, h, w] = x.shape;
    const size = c * h * w;
    const rows = new Rows(n, layer);
    for (let start = 0; start < n; start += o.batchSize) {
      throwIfAborted(o.signal);
      const end = Math.min(n, start + o.batchSize);
      const out = await abortable(forward({ data: x.data.subarray(start * size, end * size), shape: [end - start, c, h, w] }), o.signal);
      for (let i = start; i < end; i++) rows.add(i, out, i - start);
    }
    result = rows.result();
  } else {
    const single = !Array.isArray(inputs);
    const list: readonly ImageInput[] = single ? [inputs as ImageInput] : (inputs as readonly ImageInput[]);
    list.forEach((input, i) => checkItem(input, itemName(i, single)));
    if (list.length === 0) {
      const width = featureVectorWidth(model.spec, layer, model.numClasses);
      if (width === undefined) throw invalidRange('inputs', `at least one image (the size of '${layer}' depends on the images')`, inputs);
      return { data: new Float32Array(0), shape: [0, width] };
    }
    const rows = new Rows(list.length, layer);
    const run = async (x: ModelInput): Promise<Array<{ out: Tensor; row: number }>> => {
      const out = await forward(x);
      return Array.from({ length: x.shape[0] }, (_, row) => ({ out, row }));
    };
    for await (const r of runPipeline(list, { ...o, failFast: true }, run, single)) rows.add(r.index, r.value!.out, r.value!.row);
    result = rows.result();
  }
  if (normalize) l2NormalizeRows(result);
  return result;
}
