// explain(): Grad-CAM (Selvaraju et al., 2017) for one image: why the
// classifier picks a class. The image goes through classify()'s pipeline
// (pipeline.ts: same decoding, preprocessing and normalisation); the map is
// computed natively (native/gradcam.cc) with autograd on the thread pool, at
// the last convolution of a stage before its pool ('stage5' by default: the
// rectified conv5 maps the paper uses), upsampled to the input's size.
import type { ModelCore } from '../core/model-core';
import type { ImageInput, PreprocessOptions } from '../image/preprocess';
import { isPixelBatch, type ModelInput, type Tensor } from '../tensor';
import { checkInteger, checkOneOf, keysOf, orDefault } from '../validate';
import { softmax } from './classify';
import { writeFileAtomic } from '../fs/atomic-file';
import { blend, encodePng, tensorToRgb, type RgbPixels } from './overlay';
import { checkItem, checkModel, resolveBatchOptions, runPipeline } from './pipeline';

/** Where Grad-CAM looks: stage k's last convolution output (after ReLU), before the stage's max-pool. */
export type GradCamLayer = 'stage1' | 'stage2' | 'stage3' | 'stage4' | 'stage5';

/** The layers {@link Vgg.explain} accepts, shallow to deep. */
export const GRADCAM_LAYERS: readonly GradCamLayer[] = ['stage1', 'stage2', 'stage3', 'stage4', 'stage5'];

/** Options of {@link Vgg.explain}. */
export interface ExplainOptions {
  /** The class to explain, 0..numClasses-1. Default: the model's top-1 class for the image. */
  classIndex?: number;
  /** The activation to explain. Default 'stage5' (conv5's rectified maps, before pool5, as in the paper). */
  layer?: GradCamLayer;
  /** How the image becomes a tensor; default: the model's input pipeline, as classify() uses. */
  preprocess?: PreprocessOptions;
  /** Aborting rejects with AbortError. */
  signal?: AbortSignal;
}

/** A Grad-CAM explanation of one image. */
export interface Explanation {
  /** The heat map [H, W] at the network input's resolution, 0..1 (1 = most evidence for the class). */
  map: Tensor;
  /** The class explained. */
  classIndex: number;
  /** `model.labels[classIndex]`, or `class_<classIndex>`. */
  label: string;
  /** The class's softmax probability for this image, 0..1. */
  probability: number;
  /** PNG bytes of the map (Turbo colours) blended over the image the network saw. */
  toPng(): Promise<Buffer>;
  /** Writes toPng() to `file` atomically (temp file, then rename). */
  save(file: string): Promise<void>;
}

const EXPLAIN_KEYS = keysOf<ExplainOptions>()(['classIndex', 'layer', 'preprocess', 'signal']);

/** The image of row `i` of a network input, as 8-bit RGB (the crop itself, or a stretched tensor). */
function imageOf(x: ModelInput, i: number): RgbPixels {
  if (isPixelBatch(x)) {
    const [, h, w] = x.shape;
    return { data: x.pixels.subarray(i * h * w * 3, (i + 1) * h * w * 3), width: w, height: h };
  }
  const [, c, h, w] = x.shape;
  return tensorToRgb({ data: x.data.subarray(i * c * h * w, (i + 1) * c * h * w), shape: [1, c, h, w] });
}

/**
 * Grad-CAM of one image: d logit / d A at `layer`, weights = the gradients' spatial
 * means, map = ReLU(sum_k w_k A_k), bilinearly upsampled to the input's size and
 * scaled to 0..1. The model's training mode, weights, gradients and BN statistics are
 * left as they were.
 *
 * @param model - a live model core with a classifier
 * @param input - what classify() takes: a path, Buffer, raw pixels or a [1, 3, H, W] tensor
 * @param options - see {@link ExplainOptions}
 * @returns the map, the class it explains with its probability, and PNG helpers
 * @throws TypeError (ERR_INVALID_ARG_TYPE) / RangeError (ERR_OUT_OF_RANGE) for bad arguments
 *   (classIndex outside 0..numClasses-1, unknown layer or option);
 *   ModelError 'NO_CLASSIFIER' (numClasses 0), 'DISPOSED'; ImageInputError for an unreadable image;
 *   AbortError when `signal` fires.
 * @example
 * const cam = await explain(core, 'cat.jpg', { layer: 'stage5' });
 * await cam.save('cat-cam.png');
 */
export async function explain(model: ModelCore, input: ImageInput, options?: ExplainOptions): Promise<Explanation> {
  checkModel(model);
  const { resolved, raw } = resolveBatchOptions(model, options, EXPLAIN_KEYS);
  model.assertClassifier('explain its decisions (Grad-CAM needs class scores)');
  const classIndex = orDefault(raw.classIndex, undefined, (v) => checkInteger('options.classIndex', v, 0, model.numClasses - 1));
  const layer = orDefault(raw.layer, 'stage5', (v) => checkOneOf('options.layer', v, GRADCAM_LAYERS));
  checkItem(input, 'input');

  const labels = model.labels;
  const run = async (x: ModelInput): Promise<Explanation[]> => {
    const n = x.shape[0];
    const r = await model.explain(x, layer, classIndex === undefined ? undefined : new Array<number>(n).fill(classIndex), resolved.signal);
    const [, h, w] = r.maps.shape;
    const k = r.logits.shape[1];
    return r.classIndices.map((c, i) => {
      const map: Tensor = { data: r.maps.data.slice(i * h * w, (i + 1) * h * w), shape: [h, w] };
      const image = imageOf(x, i);
      const toPng = (): Promise<Buffer> => encodePng(blend(map, image));
      return {
        map,
        classIndex: c,
        label: labels?.[c] ?? `class_${c}`,
        probability: softmax(r.logits.data.subarray(i * k, (i + 1) * k))[c],
        toPng,
        save: async (file: string) => writeFileAtomic(file, await toPng()),
      };
    });
  };
  for await (const r of runPipeline([input], { ...resolved, batchSize: 1, failFast: true }, run, true)) return r.value!;
  throw new Error('unreachable: the pipeline yields one item for one input');
}
