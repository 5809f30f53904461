// The public model: a facade over the model core (src/core/model-core.ts)
// that validates arguments once and delegates. It holds no LibTorch handle of
// its own and exposes no internals.
import type { Architecture, ArchSpec } from './arch';
import type { NamedTensor, NamedTensorSource, NativeLayerSummary } from './binding';
import { buildCore } from './core/build';
import { FEATURE_LAYERS, resolveForwardOptions, type FeatureLayer, type ForwardOptions, type InputPipeline, type Precision } from './core/forward';
import type { ModelCore, QuantizationInfo, WeightsInfo } from './core/model-core';
import type { Dataset, DatasetSource } from './data/dataset';
import type { ImageInput } from './image/preprocess';
import { classify as classifyImages, type ClassifyItem, type ClassifyOptions, type Prediction } from './inference/classify';
import { explain as explainImage, type ExplainOptions, type Explanation } from './inference/explain';
import { extractFeatures as extractImageFeatures, type FeatureOptions } from './inference/features';
import { classifyStream as classifyImageStream } from './inference/stream';
import { quantize as quantizeModel, type QuantizeOptions, type QuantizeResult } from './inference/calibrate';
import { resolveVggArguments, type VggOptions } from './options';
import { checkImageBatch, type Tensor } from './tensor';
import { evaluate as evaluateModel, type EvaluateOptions, type EvaluateResult } from './train/evaluate';
import { fineTune as fineTuneModel } from './train/finetune';
import type { FineTuneReport } from './train/result';
import type { FineTuneOptions } from './train/options';
import {
  checkBoolean,
  checkInteger,
  checkKnownKeys,
  checkLabels,
  checkObject,
  checkOneOf,
  checkString,
  invalidRange,
  keysOf,
  orDefault,
} from './validate';
import { checkTensorSources } from './core/sources';
import { formatOfFile, SAVE_FORMATS, SAVE_LAYOUTS, type SaveFormat, type SaveLayout } from './weights/save';

export { FEATURE_LAYERS };
export type { FeatureLayer, ForwardOptions, InputPipeline, Precision, QuantizationInfo, QuantizeOptions, QuantizeResult, WeightsInfo };

/** One layer of a {@link ModelSummary}: name, module type, input and output shape for one image, parameters, multiply-adds. */
export type LayerSummary = NativeLayerSummary;

/** What {@link Vgg.summary} returns: sizes and cost of the model at one input size, for one image. */
export interface ModelSummary {
  /** The architecture name, e.g. 'vgg16_bn'. */
  arch: Architecture;
  /** Trainable and frozen parameters (buffers such as BN running stats excluded). */
  params: number;
  /** Parameters that get gradients (all but the `frozenStages`). */
  trainableParams: number;
  /**
   * Multiply-adds for one image at `inputSize`, counted as mmcv's
   * get_model_complexity_info does (mmcls's published "Flops"): conv/linear
   * multiply-adds plus bias adds, BN 2 per element, ReLU and pooling 1 per element.
   */
  macs: number;
  /** [height, width] in pixels the figures are for. */
  inputSize: [number, number];
  /** Every module in forward order ('features.N', 'avgpool' when the last map is not 7x7, 'classifier.N'). */
  layers: LayerSummary[];
}

/** Options of {@link Vgg.save}. */
export interface SaveOptions {
  /**
   * 'pth' (a torch.save zip), 'safetensors' (huggingface/safetensors) or
   * 'onnx' (an inference graph, opset 17, dynamic batch; see README "ONNX
   * export"). Default: from the file name (.safetensors, .onnx; anything else 'pth').
   */
  format?: SaveFormat;
  /**
   * Key names in a .pth or .safetensors. 'mmcls': `backbone.` keys (a .pth as
   * `{ meta, state_dict }`, meta holding arch, CLASSES, the input pipeline and
   * `meta`); 'torchvision': torchvision's `features.N` keys (a .pth holds the
   * bare state_dict, no meta); 'timm': timm's (`pre_logits.fc1` as a 7x7
   * convolution, `head.fc`). A .safetensors keeps meta in `__metadata__` in
   * every layout. Not for 'onnx'. Default: 'mmcls'.
   */
  layout?: SaveLayout;
  /**
   * Extra entries for the checkpoint's meta (a .pth in mmcls layout, a
   * .safetensors' `__metadata__` as JSON text, an ONNX file's metadata_props):
   * plain objects, arrays, strings, numbers, booleans, null. Non-integer numbers are written as pickle
   * BINFLOAT, which torch 1.13's `weights_only=True` loader refuses. Default: {}.
   */
  meta?: Record<string, unknown>;
  /**
   * With format 'onnx': write the QDQ int8 form of the calibrated model
   * ({@link Vgg.quantize}): QuantizeLinear/DequantizeLinear at this model's
   * activation scales, per-channel int8 weights with batch norm folded,
   * int32 biases, the classifier in float32, which onnxruntime runs as
   * QLinearConv. A model not calibrated is a ModelError 'NOT_CALIBRATED'.
   * Default: false.
   */
  quantized?: boolean;
}

const SAVE_KEYS = keysOf<SaveOptions>()(['format', 'layout', 'meta', 'quantized']);

const cores = new WeakMap<Vgg, ModelCore>();

/** @internal The core behind a model, for the package's own tests and bench. */
export function coreOf(model: Vgg): ModelCore {
  const core = cores.get(model);
  if (!core) throw new TypeError('not a model from vgg()');
  return core;
}

/**
 * A VGG on LibTorch, made by {@link vgg}. Every native call (forward,
 * classify, extractFeatures, fineTune, evaluate, stateDict, loadStateDict,
 * resetHead, save) runs on libuv's thread pool and returns a Promise; calls on
 * one model run one at a time, in the order made. Inputs are RGB images or
 * float32 NCHW tensors normalised with mean/std on the 0..255 scale (ImageNet's
 * by default, see {@link IMAGENET_MEAN}). Free the native memory with
 * {@link Vgg.dispose} when done; after it, calls reject with
 * {@link ModelError} 'DISPOSED'.
 *
 * @example
 * ```ts
 * import { vgg } from 'vgg-native';
 *
 * const model = await vgg('vgg16_bn', { weights: 'imagenet' });
 * console.log(model.arch, model.device, model.numClasses); // 'vgg16_bn' 'cpu' 1000
 * const [top] = await model.classify('cat.jpg', { topK: 1 });
 * console.log(top.label, top.probability);
 * model.dispose();
 * ```
 */
export class Vgg {
  readonly #core: ModelCore;

  /** @internal use vgg() */
  constructor(core: ModelCore) {
    this.#core = core;
    cores.set(this, core);
  }

  /** The architecture name, e.g. 'vgg16_bn'. */
  get arch(): Architecture {
    return this.#core.arch;
  }
  /** Depth and batch norm of the architecture. */
  get spec(): ArchSpec {
    return this.#core.spec;
  }
  /** The LibTorch device, e.g. 'cpu' or 'cuda:0'. */
  get device(): string {
    return this.#core.device;
  }
  /** Classes of the last layer: the width of the logits (0: a backbone without classifier). Changes when fineTune or resetHead gives a new head. */
  get numClasses(): number {
    return this.#core.numClasses;
  }
  /** Whether {@link Vgg.dispose} was called. */
  get disposed(): boolean {
    return this.#core.disposed;
  }
  /**
   * The int8 calibration ({@link Vgg.quantize}, or a checkpoint saved after it): method and
   * per-convolution input scales; undefined before. While set (and the CPU can run int8),
   * forward passes default to precision 'int8'.
   */
  get quantization(): QuantizationInfo | undefined {
    const q = this.#core.quantization;
    return q ? { ...q, scales: [...q.scales] } : undefined;
  }

  /**
   * Post-training static quantisation for int8 inference on the CPU. Runs the float32 model over
   * calibration images and records, for each convolution, the range of its input (max |x| for
   * 'minmax', the 99.99th percentile of |x| for 'percentile'); from then on the convolutional trunk
   * runs in 8-bit on oneDNN's VNNI kernels: weights s8 per output channel (BN folded first),
   * activations u8 (s8 for the normalised image), ReLU fused, max pooling on u8; the classifier stays
   * float32. {@link Vgg.classify}, {@link Vgg.extractFeatures}, {@link Vgg.forward} and
   * {@link Vgg.forwardStages} then default to precision 'int8' (pass `precision: 'fp32'` per call for
   * float32); {@link Vgg.explain}, {@link Vgg.evaluate} and training stay float32 unless asked.
   * {@link Vgg.save} (.pth, mmcls layout) stores the calibration in meta `quantization`, and
   * {@link vgg} restores it. Calibrate again after changing the weights (fine-tuning, loading).
   *
   * @param options - calibration (a folder or image paths; required), samples (default 100), method
   *   ('percentile' or 'minmax'; default 'percentile'), percentile (default 99.99), preprocess, batchSize (default 8), signal
   * @returns `{ method, samples, scales: number[] (one per convolution), seconds }`
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' naming the option (e.g. `options.samples`), before any work; the promise rejects
   * @throws {@link ModelError} 'INT8_UNSUPPORTED' (not the CPU, no oneDNN engine, or a CPU without VNNI/AMX), 'DISPOSED', 'NATIVE'
   * @throws {@link ImageInputError} for an unreadable calibration image
   * @throws {@link AbortError} 'ABORT_ERR' when `options.signal` fires
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const model = await vgg('vgg16_bn', { weights: 'imagenet' });
   * const q = await model.quantize({ calibration: 'calib-images/', samples: 200 });
   * console.log(q.method, q.samples, q.scales.length); // 'percentile' 200 13
   * const [top] = await model.classify('cat.jpg', { topK: 1 }); // int8 trunk
   * const [ref] = await model.classify('cat.jpg', { topK: 1, precision: 'fp32' });
   * await model.save('vgg16_bn-int8.pth'); // vgg({ weights: 'vgg16_bn-int8.pth' }) runs int8 at once
   * ```
   */
  quantize(options: QuantizeOptions): Promise<QuantizeResult> {
    return quantizeModel(this.#core, options);
  }

  /**
   * Where the weights came from, if a file was loaded: `skipped` lists tensors
   * re-initialised (a new head), `warnings` what the reader noticed but did not
   * refuse (an ONNX opset outside 7..17, a trailing Softmax, Gemm alpha/beta folded).
   * Undefined for a randomly initialised model.
   */
  get weightsInfo(): WeightsInfo | undefined {
    return this.#core.weightsInfo;
  }
  /** Class names for the logits, index i naming logit i, when known (the checkpoint's, ImageNet's for 1000 classes, or the fine-tuning classes). */
  get labels(): string[] | undefined {
    return this.#core.labels;
  }
  /**
   * Replaces the class names (a copy is kept); undefined removes them, and
   * {@link Prediction.label} then reads `class_<index>`.
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' when not an array of strings
   * @throws RangeError 'ERR_OUT_OF_RANGE' when its length is not numClasses
   */
  set labels(labels: string[] | undefined) {
    this.#core.labels = labels === undefined ? undefined : checkLabels('labels', labels, this.#core.numClasses);
  }
  /**
   * The input pipeline the weights were fine-tuned with (set by fineTune, saved
   * in the checkpoint's meta): classify, extractFeatures and evaluate use it
   * when not told otherwise. Undefined means ImageNet's (short side 256, crop 224).
   */
  get inputPipeline(): InputPipeline | undefined {
    return this.#core.inputPipeline;
  }

  /**
   * Runs the network on a ready tensor, in eval mode (dropout off, batch norm
   * with running statistics).
   *
   * @param x - float32 NCHW `[N, 3, H, W]` (or `[3, H, W]` for one image),
   *   RGB normalised as the weights expect, H and W at least 32 pixels; sizes
   *   other than 224 reach the classifier through an adaptive pool to 7x7
   * @param options - precision, channelsLast, signal
   * @returns logits `[N, numClasses]` float32 (raw scores, before softmax), or
   *   the last stage's map `[N, 512, h, w]` when numClasses is 0
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad `x` (shape, 3 channels, under 32x32, data length) or option; the promise rejects
   * @throws {@link ModelError} 'DISPOSED'; 'NATIVE' when LibTorch fails (e.g. precision 'fp16' on the CPU)
   * @throws {@link AbortError} 'ABORT_ERR' when `options.signal` fires before the call starts
   * @example
   * ```ts
   * import { vgg, preprocess } from 'vgg-native';
   *
   * const model = await vgg('vgg16', { weights: 'imagenet' });
   * const x = await preprocess('cat.jpg'); // [1, 3, 224, 224]
   * const logits = await model.forward(x); // shape [1, 1000]
   * ```
   */
  async forward(x: Tensor, options?: ForwardOptions): Promise<Tensor> {
    return this.#core.logits(checkImageBatch('x', x), resolveForwardOptions(options));
  }

  /**
   * The outputs mmcls's VGG backbone returns for `outIndices`: each stage
   * asked for, in order (named 'stage1'..'stage5', maps `[N, C, H/2^k, W/2^k]`
   * after the stage's MaxPool), then 'logits' `[N, numClasses]` whenever the
   * model has a classifier.
   *
   * @param x - float32 NCHW `[N, 3, H, W]` or `[3, H, W]`, normalised, H and W at least 32
   * @param options - precision, channelsLast, signal
   * @returns one named float32 tensor per output
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad `x` or option; the promise rejects
   * @throws {@link ModelError} 'DISPOSED', 'NATIVE'
   * @throws {@link AbortError} 'ABORT_ERR' when `options.signal` fires before the call starts
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const model = await vgg('vgg16', { numClasses: 0, outIndices: [2, 3, 4] });
   * const x = { data: new Float32Array(3 * 224 * 224), shape: [1, 3, 224, 224] };
   * for (const o of await model.forwardStages(x)) console.log(o.name, o.shape); // stage3 [1, 256, 28, 28] ...
   * ```
   */
  async forwardStages(
    x: Tensor,
    options?: ForwardOptions,
  ): Promise<
    Array<
      {
        /** 'stage1'..'stage5' or 'logits'. */
        name: string;
      } & Tensor
    >
  > {
    return this.#core.stages(checkImageBatch('x', x), resolveForwardOptions(options));
  }

  /**
   * Top-K classes of one image: softmax of the logits (in float64), most
   * probable first, labels from `model.labels`. The image goes through
   * `options.preprocess` (default: the model's {@link Vgg.inputPipeline}, else
   * mmcls's ImageNet test pipeline: short side 256 bilinear, centre crop 224,
   * ImageNet mean/std).
   *
   * @param input - a path, encoded bytes, a sharp instance, raw pixels or a ready `[3, H, W]` / `[1, 3, H, W]` tensor
   * @param options - topK (default 5), preprocess, precision, signal, ...
   * @returns up to topK predictions (topK is clamped to numClasses)
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad option or an input of the wrong kind (naming `inputs[i]`), before any work; the promise rejects
   * @throws {@link ModelError} 'NO_CLASSIFIER' (numClasses 0), 'DISPOSED', 'NATIVE'
   * @throws {@link AbortError} 'ABORT_ERR' when `options.signal` fires
   * @throws {@link ImageInputError} when the image cannot be read: 'NOT_FOUND', 'EMPTY', 'UNSUPPORTED_FORMAT', 'TOO_LARGE', 'CORRUPT', 'DECODE_FAILED'
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const model = await vgg('vgg16_bn', { weights: 'imagenet' });
   * for (const p of await model.classify('cat.jpg', { topK: 3 })) console.log(p.index, p.label, p.probability.toFixed(3));
   * ```
   */
  classify(input: ImageInput, options?: ClassifyOptions): Promise<Prediction[]>;
  /**
   * Top-K classes of many images, with `failFast: true`: one Prediction[] per
   * input, in input order; the first image that cannot be read rejects the
   * call with its error (an {@link ImageInputError} carrying `.index` and `.path`).
   *
   * @param inputs - image inputs, batched `batchSize` at a time
   * @param options - with `failFast: true`
   * @returns predictions per input, in input order
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad option or an input of the wrong kind (naming `inputs[i]`), before any work; the promise rejects
   * @throws {@link ModelError} 'NO_CLASSIFIER' (numClasses 0), 'DISPOSED', 'NATIVE'
   * @throws {@link AbortError} 'ABORT_ERR' when `options.signal` fires
   * @throws {@link ImageInputError} for the first unreadable image (codes as for one input)
   */
  classify(inputs: readonly ImageInput[], options: ClassifyOptions & { failFast: true }): Promise<Prediction[][]>;
  /**
   * Top-K classes of many images: one {@link ClassifyItem} per input, in input
   * order. A bad image (unreadable, truncated, too large, missing file) is
   * reported on its item's `error` and the others are still classified. The
   * next batch decodes on sharp's pool while the current one runs in LibTorch.
   *
   * @param inputs - image inputs, batched `batchSize` at a time
   * @param options - batching, preprocessing, topK, signal; `failFast` false or absent
   * @returns one item per input, each with `predictions` or `error`
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad option or an input of the wrong kind (naming `inputs[i]`), before any work; the promise rejects
   * @throws {@link ModelError} 'NO_CLASSIFIER' (numClasses 0), 'DISPOSED', 'NATIVE'
   * @throws {@link AbortError} 'ABORT_ERR' when `options.signal` fires
   */
  classify(inputs: readonly ImageInput[], options?: ClassifyOptions & { failFast?: false }): Promise<ClassifyItem[]>;
  /**
   * Top-K classes of many images when `failFast` is only known at run time:
   * Prediction[][] with `failFast: true`, ClassifyItem[] otherwise.
   *
   * @param inputs - image inputs
   * @param options - as for the other overloads
   * @returns per input: predictions (failFast) or items
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad option or an input of the wrong kind (naming `inputs[i]`), before any work; the promise rejects
   * @throws {@link ModelError} 'NO_CLASSIFIER' (numClasses 0), 'DISPOSED', 'NATIVE'
   * @throws {@link AbortError} 'ABORT_ERR' when `options.signal` fires
   * @throws {@link ImageInputError} for the first unreadable image, with failFast
   */
  classify(inputs: readonly ImageInput[], options?: ClassifyOptions): Promise<ClassifyItem[] | Prediction[][]>;
  classify(input: ImageInput | readonly ImageInput[], options?: ClassifyOptions): Promise<unknown> {
    return classifyImages(this.#core, input as readonly ImageInput[], options);
  }

  /**
   * Classifies every input of a (possibly endless) iterable or async iterable,
   * yielding one {@link ClassifyItem} per input in source order as soon as its
   * batch is done; at most two batches are read ahead (one decoding, one
   * running), so folders too big for memory stream. A bad input is yielded
   * with its `error` (TypeError for an input of the wrong kind,
   * {@link ImageInputError} for an unreadable image) and the stream goes on;
   * with `failFast: true` it is thrown instead, after every input before it
   * was yielded. Breaking out early calls the source's `return()`.
   *
   * @param source - an iterable or async iterable of image inputs (not a string or Buffer)
   * @param options - as for {@link Vgg.classify}
   * @returns an async generator of items
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad source or option, and
   *   {@link ModelError} 'NO_CLASSIFIER' or 'DISPOSED': thrown synchronously, by this call
   * @throws {@link AbortError} 'ABORT_ERR' from `next()` once `options.signal` fires; {@link ModelError} 'NATIVE' from `next()`
   * @example
   * ```ts
   * import { readdir } from 'node:fs/promises';
   * import { vgg } from 'vgg-native';
   *
   * const model = await vgg('vgg16', { weights: 'imagenet' });
   * const files = (await readdir('photos')).map((f) => `photos/${f}`);
   * for await (const r of model.classifyStream(files)) {
   *   console.log(r.index, r.error ? r.error.message : r.predictions[0].label);
   * }
   * ```
   */
  classifyStream(source: Iterable<ImageInput> | AsyncIterable<ImageInput>, options?: ClassifyOptions): AsyncGenerator<ClassifyItem, void, undefined> {
    return classifyImageStream(this.#core, source, options);
  }

  /**
   * Grad-CAM (Selvaraju et al., 2017): where in the image the evidence for a class lies.
   * Same inputs and preprocessing as {@link Vgg.classify}; gradients flow natively on the
   * thread pool, outside inference mode, and leave the model's training mode, weights,
   * gradients and batch-norm statistics as they were.
   *
   * @param input - a path, Buffer, raw pixels or a `[1, 3, H, W]` tensor
   * @param options - `classIndex` (default: the top-1 class), `layer` ('stage1'..'stage5', default
   *   'stage5': conv5's rectified maps before pool5, the paper's choice), `preprocess`, `signal`
   * @returns `{ map: Tensor [H, W] 0..1 at the input's resolution, classIndex, label, probability, toPng(), save(path) }`
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad input or option;
   *   {@link ModelError} 'NO_CLASSIFIER', 'DISPOSED' or 'NATIVE'; {@link ImageInputError} for an unreadable image;
   *   {@link AbortError} 'ABORT_ERR' once `options.signal` fires
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const model = await vgg('vgg16', { weights: 'imagenet' });
   * const cam = await model.explain('cat.jpg');
   * console.log(cam.label, cam.probability);
   * await cam.save('cat-cam.png'); // the Turbo-coloured map blended over the crop
   * ```
   */
  explain(input: ImageInput, options?: ExplainOptions): Promise<Explanation> {
    return explainImage(this.#core, input, options);
  }

  /**
   * Activations of one layer for each image, one float32 tensor `[N, ...]` in input order:
   * - 'pool5' (default): `[N, 512]`, global average of stage5, any input size: retrieval (with normalize) and linear probes;
   * - 'fc6' / 'fc7': `[N, 4096]` after ReLU: the classic transfer-learning descriptor (fc7), linear probes;
   * - 'stage1'..'stage5': feature maps `[N, C, H, W]` (at 224x224: 64x112x112 ... 512x7x7) for detection / segmentation backbones;
   * - 'logits': `[N, numClasses]`, raw scores before softmax.
   *
   * `normalize: true` divides each row by max(L2 norm, 1e-12), as
   * `torch.nn.functional.normalize` (cosine similarity = dot product).
   *
   * @param inputs - one image input, an array of them (decoded with
   *   `options.preprocess`, batched and pipelined), or a ready float32 NCHW
   *   tensor `[N, 3, H, W]` / `[3, H, W]` (run in slices of batchSize)
   * @param options - layer (default 'pool5'), normalize (default false), batching, preprocessing, signal
   * @returns `[N, ...]`; an empty array gives `[0, width]` for 'pool5', 'fc6', 'fc7' and 'logits'
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad option or input; also
   *   RangeError for a stage layer over images of different sizes, or an empty array with a stage layer; the promise rejects
   * @throws {@link ImageInputError} for the first unreadable image (with `.index`): there is no partial tensor
   * @throws {@link ModelError} 'NO_CLASSIFIER' for 'fc6', 'fc7' or 'logits' on a model with numClasses 0, 'DISPOSED', 'NATIVE'
   * @throws {@link AbortError} 'ABORT_ERR' when `options.signal` fires
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const model = await vgg('vgg16', { weights: 'imagenet' });
   * const f = await model.extractFeatures(['a.jpg', 'b.jpg'], { layer: 'fc7', normalize: true }); // shape [2, 4096]
   * let cosine = 0;
   * for (let i = 0; i < 4096; i++) cosine += f.data[i] * f.data[4096 + i];
   * ```
   */
  extractFeatures(inputs: ImageInput | readonly ImageInput[] | Tensor, options?: FeatureOptions): Promise<Tensor> {
    return extractImageFeatures(this.#core, inputs, options);
  }

  /**
   * Trains on a labelled image folder, list or CSV (the head is replaced when the
   * class count differs; labels become the class names). Resolves with per-epoch
   * losses, top-1/top-5 and throughput. See FineTuneOptions for schedules,
   * checkpoints, resume, AbortSignal and distributed data-parallel training.
   * The data is loaded and checked (labels, at least 2 classes, every image
   * decoded once) before any weight changes; afterwards `inputPipeline` records
   * `imageSize` and `resize`, which {@link Vgg.save} stores in the checkpoint.
   *
   * @param options - train (required), epochs (required), batchSize (default 32), and the rest of {@link FineTuneOptions},
   *   each with its default there
   * @returns the report: one entry per epoch, the best epoch, classes, counts, what was skipped
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' for an option of the wrong type, RangeError 'ERR_OUT_OF_RANGE' for a value
   *   outside what is allowed or an unknown key (also: `freeze` other than the model's frozenStages, a batchSize not
   *   divisible by the number of ranks), nested ones included (`options.augment.hflip`), before anything is read; the promise rejects
   * @throws {@link DatasetError} 'NOT_FOUND', 'NOT_A_FOLDER', 'BAD_CSV', 'EMPTY', 'TOO_FEW_CLASSES', 'BAD_LABELS',
   *   'UNREADABLE_IMAGES' (without skipInvalid), before the first step
   * @throws {@link ModelError} 'NO_CLASSIFIER' (numClasses 0), 'DISPOSED', 'DIVERGED' (loss NaN or infinite),
   *   'BAD_RESUME' (no, unreadable or foreign checkpoint), 'ALREADY_DISTRIBUTED', 'NATIVE'
   * @throws {@link CheckpointError} when a resumed checkpoint's model.pth cannot be read or does not fit
   * @throws {@link AbortError} 'ABORT_ERR' when `options.signal` fires: training stops at the next step
   *   boundary, after writing a checkpoint when `checkpointDir` is set
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const model = await vgg('vgg11_bn', { weights: 'imagenet' });
   * const report = await model.fineTune({
   *   train: 'data/train', epochs: 3, batchSize: 32,
   *   onProgress: (p) => console.log(p.epoch, p.step, p.loss.toFixed(3)),
   * });
   * console.log(report.best.valTop1, model.labels);
   * await model.save('tuned.pth');
   * ```
   */
  fineTune(options: FineTuneOptions): Promise<FineTuneReport> {
    return fineTuneModel(this.#core, options);
  }

  /**
   * Top-1, top-5, loss, per-class accuracy and the confusion matrix on a
   * labelled dataset, in eval mode. Images are resized to `imageSize` with
   * `resize` (default: the model's {@link Vgg.inputPipeline}, else ImageNet's
   * short side 256 / centre crop 224) and normalised with ImageNet's mean/std.
   * A folder's class names are looked up in `model.labels`, so index i is the
   * model's class i; a Dataset's labels must already be the model's indices.
   *
   * @param dataset - an ImageFolder path, a `{ path, label }` list, `{ csv, root? }`, or a {@link Dataset}
   * @param options - batchSize (default 32), imageSize, resize, precision, signal, skipInvalid; see {@link EvaluateOptions}
   * @returns accuracies as fractions in [0, 1], mean loss, per-class figures, the confusion matrix, skipped items
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad option (an unknown key included,
   *   checked before anything is read), more classes than the model's outputs, or a label outside [0, numClasses); the promise rejects
   * @throws {@link DatasetError} 'NOT_FOUND', 'NOT_A_FOLDER', 'BAD_CSV', 'EMPTY', 'BAD_LABELS', 'UNREADABLE_IMAGES'
   * @throws {@link ModelError} 'NO_CLASSIFIER', 'DISPOSED', 'NATIVE'
   * @throws {@link AbortError} 'ABORT_ERR' when `options.signal` fires
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const model = await vgg({ weights: 'tuned.pth' });
   * const r = await model.evaluate('data/test');
   * console.log(r.top1, r.top5, r.loss, r.count);
   * ```
   */
  evaluate(dataset: DatasetSource | Dataset, options?: EvaluateOptions): Promise<EvaluateResult> {
    return evaluateModel(this.#core, dataset, options);
  }

  /**
   * Parameters and multiply-adds for one image, layer by layer, computed from
   * shapes (no kernel runs, synchronous). Multiply-adds are counted as mmcv's
   * get_model_complexity_info does, which produced mmcls's published figures.
   *
   * @param inputSize - side in pixels, or [height, width]; integers in 1..65536. Default: 224.
   * @returns totals and one {@link LayerSummary} per module
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad size
   * @throws {@link ModelError} 'DISPOSED'
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const s = (await vgg('vgg16')).summary();
   * console.log(s.params / 1e6, s.macs / 1e9); // about 138.36 (M) and 15.5 (G multiply-adds)
   * ```
   */
  summary(inputSize: number | [number, number] = 224): ModelSummary {
    const [h, w] = typeof inputSize === 'number' ? [inputSize, inputSize] : inputSize;
    checkInteger('inputSize (height)', h, 1, 65536);
    checkInteger('inputSize (width)', w, 1, 65536);
    const s = this.#core.summary(h, w);
    return { arch: this.arch, params: s.params, trainableParams: s.trainableParams, macs: s.macs, inputSize: [h, w], layers: s.layers };
  }

  /**
   * Every parameter and buffer by its canonical name (mmcls's, without
   * `backbone.`), in state_dict order: a snapshot (training later does not
   * change it). float32 except batch norm's `num_batches_tracked` (int64).
   *
   * @returns one {@link NamedTensor} per tensor
   * @throws {@link ModelError} 'DISPOSED', 'NATIVE'
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const state = await (await vgg('vgg11')).stateDict();
   * console.log(state[0].name, state[0].shape); // 'features.0.conv.weight' [64, 3, 3, 3]
   * ```
   */
  stateDict(): Promise<NamedTensor[]> {
    return this.#core.stateDict();
  }

  /**
   * Loads named tensors (mmcls names without `backbone.`). Names and shapes must
   * match; with `strict` (default) every tensor of the model must be given.
   * Nothing is loaded when a check fails.
   *
   * @param entries - `{ name, tensor }` with in-memory arrays or file regions, e.g. from {@link Vgg.stateDict} or {@link readWeights}
   * @param options - `strict`: every tensor of the model must be present. Default: true.
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a malformed entry or option; the promise rejects
   * @throws {@link CheckpointError} 'STATE_MISMATCH' listing unknown names, shape mismatches and (strict) missing tensors
   * @throws {@link ModelError} 'DISPOSED', 'NATIVE'
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const a = await vgg('vgg11', { seed: 1 });
   * const b = await vgg('vgg11');
   * await b.loadStateDict((await a.stateDict()).map(({ name, data, shape }) => ({ name, tensor: { kind: 'array', data, shape } })));
   * ```
   */
  async loadStateDict(entries: NamedTensorSource[], options?: { strict?: boolean }): Promise<void> {
    checkTensorSources('entries', entries);
    const o = checkKnownKeys('options', checkObject('options', options), ['strict']);
    return this.#core.loadStateDict(
      entries,
      orDefault(o.strict, true, (v) => checkBoolean('options.strict', v)),
    );
  }

  /**
   * Replaces the classifier's last Linear (classifier.6) with a fresh one for
   * `numClasses` classes: weights drawn from N(0, 0.01), seeded when `seed` is given.
   *
   * @param numClasses - an integer in 1..1000000
   * @param labels - class names, one per class; omitted, the model has none
   * @param seed - a non-negative integer. Default: none (LibTorch's generator as it is).
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad argument; the promise rejects
   * @throws {@link ModelError} 'NO_CLASSIFIER' (numClasses 0 at build), 'DISPOSED', 'NATIVE'
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const model = await vgg('vgg16', { weights: 'imagenet' });
   * await model.resetHead(3, ['cat', 'dog', 'fox'], 0); // logits are now [N, 3]
   * ```
   */
  async resetHead(numClasses: number, labels?: string[], seed?: number): Promise<void> {
    checkInteger('numClasses', numClasses, 1, 1_000_000);
    if (labels !== undefined) checkLabels('labels', labels, numClasses);
    if (seed !== undefined) checkInteger('seed', seed, 0);
    await this.#core.resetHead(numClasses, labels, seed);
  }

  /**
   * Writes the model: a zip-format .pth that `torch.load(path, weights_only=True)` reads,
   * a .safetensors (huggingface/safetensors' format), or an ONNX graph that
   * onnxruntime runs (opset 17, input 'input' [N, 3, H, W] float32 normalised as
   * the model's preprocessing, output 'logits' [N, classes], or the features
   * of a model without a classifier; mean, std, size and labels in metadata_props).
   * The format follows the file name unless `format` says otherwise; .pth and
   * .safetensors take a key `layout` (mmcls by default, torchvision or timm).
   * Written to a temp file and renamed, so a crash never leaves half a file.
   * The mmcls meta also holds `input_size`/`input_resize` when the model has an
   * {@link Vgg.inputPipeline}, so {@link vgg} restores it on load.
   *
   * @param file - the path to write (replaced if it exists)
   * @param options - format (default: by extension), layout (default 'mmcls') and extra meta
   * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad path or option (a `layout` with 'onnx'); the promise rejects
   * @throws {@link CheckpointError} 'BAD_VALUE' for a meta value the format cannot hold (a function, a class instance, nesting beyond 100 levels)
   * @throws {@link ModelError} 'DISPOSED', 'NATIVE'
   * @throws the file system's error (e.g. code 'ENOENT' when the folder does not exist) when the file cannot be written
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const model = await vgg('vgg11', { numClasses: 10 });
   * await model.save('vgg11.pth', { meta: { epoch: 3 } });
   * await model.save('vgg11_tv.pth', { layout: 'torchvision' });
   * await model.save('vgg11.safetensors', { layout: 'timm' });
   * await model.save('vgg11.onnx');
   * ```
   */
  async save(file: string, options?: SaveOptions): Promise<void> {
    checkString('file', file);
    const o = checkKnownKeys('options', checkObject('options', options), SAVE_KEYS);
    const format = orDefault(o.format, formatOfFile(file), (v) => checkOneOf('options.format', v, SAVE_FORMATS));
    const layout = orDefault(o.layout, 'mmcls', (v) => checkOneOf('options.layout', v, SAVE_LAYOUTS));
    if (format === 'onnx' && o.layout !== undefined)
      throw invalidRange('options.layout', "no layout for format 'onnx' (an ONNX graph names its own tensors)", o.layout);
    const quantized = orDefault(o.quantized, false, (v) => checkBoolean('options.quantized', v));
    if (quantized && format !== 'onnx') throw invalidRange('options.quantized', "true only with format 'onnx' (the QDQ form)", o.quantized);
    await this.#core.save(file, format, layout, checkObject('options.meta', o.meta), quantized);
  }

  /**
   * Frees the native model now (weights, optimizer state, cached CPU blocks);
   * later calls reject with {@link ModelError} 'DISPOSED'. Idempotent; never throws.
   *
   * @example
   * ```ts
   * import { vgg } from 'vgg-native';
   *
   * const model = await vgg('vgg11');
   * model.dispose();
   * console.log(model.disposed); // true
   * ```
   */
  dispose(): void {
    this.#core.dispose();
  }
}

/**
 * Builds a VGG, optionally loading weights. The architecture is inferred
 * from the weights when not given; a contradiction is an error. Without
 * weights and arch, a vgg16. Building (allocation and initialisation) and
 * loading run off the event loop; named weights are downloaded into the
 * cache first (see {@link downloadWeights}).
 *
 * @param arch - 'vgg11' ... 'vgg19_bn'; or the options, with the architecture left to the weights
 * @param options - see {@link VggOptions}
 * @returns the model, in eval mode, on `options.device`
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad arch or option (unknown key,
 *   labels not one per class, ceilMode against the file's); the promise rejects
 * @throws {@link ModelError} 'ARCH_MISMATCH' when `arch` differs from the weights'; 'NATIVE' when the addon is not built
 * @throws {@link CheckpointError} for a .pth that cannot be read safely or does not fit ('STATE_MISMATCH' with strict), codes in {@link CheckpointErrorCode}
 * @throws {@link OnnxFormatError} for an .onnx / .model that is not a VGG the reader can map
 * @throws {@link DownloadError} when named or URL weights cannot be fetched, codes in {@link DownloadErrorCode}
 * @example
 * ```ts
 * import { vgg } from 'vgg-native';
 *
 * const a = await vgg('vgg11');                                          // random init (mmcls's scheme)
 * const b = await vgg({ weights: 'vgg16-7.onnx' });                      // architecture inferred
 * const c = await vgg('vgg16_bn', { weights: 'imagenet', numClasses: 5 }); // new 5-class head
 * const d = await vgg('vgg19', { numClasses: 0, outIndices: [2, 3, 4] }); // backbone only
 * ```
 */
export async function vgg(arch?: Architecture | VggOptions, options?: VggOptions): Promise<Vgg> {
  const resolved = resolveVggArguments(arch, options);
  const core = await buildCore(resolved);
  core.configureBatching(resolved.batching); // issue 24: dynamic batching across calls
  return new Vgg(core);
}
