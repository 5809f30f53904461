// The public model: a facade over the model core (src/core/model-core.ts)
// that validates arguments once and delegates. It holds no LibTorch handle of
// its own and exposes no internals.
import type { Architecture, ArchSpec } from './arch';
import type { NamedTensor, NamedTensorSource, NativeLayerSummary } from './binding';
import { buildCore } from './core/build';
import { FEATURE_LAYERS, resolveForwardOptions, type FeatureLayer, type ForwardOptions, type InputPipeline, type Precision } from './core/forward';
import type { ModelCore, WeightsInfo } from './core/model-core';
import type { Dataset, DatasetSource } from './data/dataset';
import type { ImageInput } from './image/preprocess';
import { classify as classifyImages, type ClassifyItem, type ClassifyOptions, type Prediction } from './inference/classify';
import { extractFeatures as extractImageFeatures, type FeatureOptions } from './inference/features';
import { classifyStream as classifyImageStream } from './inference/stream';
import { resolveVggArguments, type VggOptions } from './options';
import { checkImageBatch, type Tensor } from './tensor';
import { evaluate as evaluateModel, type EvaluateOptions, type EvaluateResult } from './train/evaluate';
import { fineTune as fineTuneModel, type FineTuneReport } from './train/finetune';
import type { FineTuneOptions } from './train/options';
import { checkBoolean, checkInteger, checkKnownKeys, checkLabels, checkObject, checkOneOf, checkString, keysOf, orDefault } from './validate';
import { checkTensorSources } from './weights/sources';
import type { SaveLayout } from './weights/save';

export { FEATURE_LAYERS };
export type { FeatureLayer, ForwardOptions, InputPipeline, Precision, WeightsInfo };

export type LayerSummary = NativeLayerSummary;

export interface ModelSummary {
  arch: Architecture;
  /** Trainable and frozen parameters (buffers such as BN running stats excluded). */
  params: number;
  trainableParams: number;
  /** Multiply-adds for one image at the given size, counted as mmcv does. */
  macs: number;
  inputSize: [number, number];
  layers: LayerSummary[];
}

/** Options of {@link Vgg.save}. */
export interface SaveOptions {
  /** 'mmcls' (default; with meta: arch, CLASSES) or 'torchvision' (a bare state_dict). */
  layout?: SaveLayout;
  /** Extra entries for the checkpoint's meta (mmcls layout). */
  meta?: Record<string, unknown>;
}

const SAVE_KEYS = keysOf<SaveOptions>()(['layout', 'meta']);

const cores = new WeakMap<Vgg, ModelCore>();

/** @internal The core behind a model, for the package's own tests and bench. */
export function coreOf(model: Vgg): ModelCore {
  const core = cores.get(model);
  if (!core) throw new TypeError('not a model from vgg()');
  return core;
}

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
  /** Classes of the last layer (0: a backbone without classifier). */
  get numClasses(): number {
    return this.#core.numClasses;
  }
  /** Whether dispose() was called. */
  get disposed(): boolean {
    return this.#core.disposed;
  }
  /**
   * Where the weights came from, if a file was loaded: `skipped` lists tensors
   * re-initialised (a new head), `warnings` what the reader noticed but did not
   * refuse (an ONNX opset outside 7..17, a trailing Softmax, Gemm alpha/beta folded).
   */
  get weightsInfo(): WeightsInfo | undefined {
    return this.#core.weightsInfo;
  }
  /** Class names for the logits, when known. */
  get labels(): string[] | undefined {
    return this.#core.labels;
  }
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

  /** Logits [N, numClasses] (or the last stage's feature map when numClasses is 0). */
  forward(x: Tensor, options?: ForwardOptions): Promise<Tensor> {
    try {
      return this.#core.logits(checkImageBatch('x', x), resolveForwardOptions(options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The outputs mmcls's backbone returns for outIndices (stages, then logits when asked). */
  forwardStages(x: Tensor, options?: ForwardOptions): Promise<Array<{ name: string } & Tensor>> {
    try {
      return this.#core.stages(checkImageBatch('x', x), resolveForwardOptions(options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Top-K classes per image (softmax of the logits), labels from `model.labels`.
   * One input → its predictions; an array → one item per input in order, a bad
   * image carrying its error (or, with failFast, the first error rejects).
   */
  classify(input: ImageInput, options?: ClassifyOptions): Promise<Prediction[]>;
  classify(inputs: readonly ImageInput[], options: ClassifyOptions & { failFast: true }): Promise<Prediction[][]>;
  classify(inputs: readonly ImageInput[], options?: ClassifyOptions & { failFast?: false }): Promise<ClassifyItem[]>;
  classify(inputs: readonly ImageInput[], options?: ClassifyOptions): Promise<ClassifyItem[] | Prediction[][]>;
  classify(input: ImageInput | readonly ImageInput[], options?: ClassifyOptions): Promise<unknown> {
    return classifyImages(this.#core, input as readonly ImageInput[], options);
  }

  /** Classifies a (possibly endless) sequence of images with bounded read-ahead, in order. */
  classifyStream(source: Iterable<ImageInput> | AsyncIterable<ImageInput>, options?: ClassifyOptions): AsyncGenerator<ClassifyItem, void, undefined> {
    return classifyImageStream(this.#core, source, options);
  }

  /**
   * Activations of one layer for each image, [N, ...]:
   * - 'pool5' (default): 512-d global average of stage5, any input size: retrieval (with normalize) and linear probes;
   * - 'fc6' / 'fc7': 4096-d after ReLU: the classic transfer-learning descriptor (fc7), linear probes;
   * - 'stage1'..'stage5': feature maps for detection / segmentation backbones;
   * - 'logits'. `normalize: true` L2-normalises each row (cosine similarity = dot product).
   */
  extractFeatures(inputs: ImageInput | readonly ImageInput[] | Tensor, options?: FeatureOptions): Promise<Tensor> {
    return extractImageFeatures(this.#core, inputs, options);
  }

  /**
   * Trains on a labelled image folder, list or CSV (the head is replaced when the
   * class count differs; labels become the class names). Resolves with per-epoch
   * losses, top-1/top-5 and throughput. See FineTuneOptions for schedules,
   * checkpoints, resume, AbortSignal and distributed data-parallel training.
   */
  fineTune(options: FineTuneOptions): Promise<FineTuneReport> {
    return fineTuneModel(this.#core, options);
  }

  /** Top-1, top-5, loss, per-class accuracy and the confusion matrix on a labelled dataset. */
  evaluate(dataset: DatasetSource | Dataset, options?: EvaluateOptions): Promise<EvaluateResult> {
    return evaluateModel(this.#core, dataset, options);
  }

  /** Parameters and multiply-adds (at 224x224 unless a size is given), layer by layer. */
  summary(inputSize: number | [number, number] = 224): ModelSummary {
    const [h, w] = typeof inputSize === 'number' ? [inputSize, inputSize] : inputSize;
    checkInteger('inputSize (height)', h, 1, 65536);
    checkInteger('inputSize (width)', w, 1, 65536);
    const s = this.#core.summary(h, w);
    return { arch: this.arch, params: s.params, trainableParams: s.trainableParams, macs: s.macs, inputSize: [h, w], layers: s.layers };
  }

  /** Every parameter and buffer by its mmcls name: a snapshot (training later does not change it). */
  stateDict(): Promise<NamedTensor[]> {
    return this.#core.stateDict();
  }

  /**
   * Loads named tensors (mmcls names without `backbone.`). Names and shapes must
   * match; with `strict` (default) every tensor of the model must be given.
   */
  loadStateDict(entries: NamedTensorSource[], options?: { strict?: boolean }): Promise<void> {
    try {
      checkTensorSources('entries', entries);
      const o = checkKnownKeys('options', checkObject('options', options), ['strict']);
      return this.#core.loadStateDict(
        entries,
        orDefault(o.strict, true, (v) => checkBoolean('options.strict', v)),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Replaces the classifier's last layer with a fresh one (N(0, 0.01), seeded when `seed` is given) for numClasses classes. */
  async resetHead(numClasses: number, labels?: string[], seed?: number): Promise<void> {
    checkInteger('numClasses', numClasses, 1, 1_000_000);
    if (labels !== undefined) checkLabels('labels', labels, numClasses);
    if (seed !== undefined) checkInteger('seed', seed, 0);
    await this.#core.resetHead(numClasses, labels, seed);
  }

  /**
   * Writes the weights as a zip-format .pth that `torch.load(path, weights_only=True)` reads:
   * layout 'mmcls' (default; with meta: arch, CLASSES) or 'torchvision' (a bare state_dict).
   * Written to a temp file and renamed, so a crash never leaves half a checkpoint.
   */
  async save(file: string, options?: SaveOptions): Promise<void> {
    checkString('file', file);
    const o = checkKnownKeys('options', checkObject('options', options), SAVE_KEYS);
    const layout = orDefault(o.layout, 'mmcls', (v) => checkOneOf('options.layout', v, ['mmcls', 'torchvision'] as const));
    await this.#core.save(file, layout, checkObject('options.meta', o.meta));
  }

  /** Frees the native model now; later calls reject. Idempotent. */
  dispose(): void {
    this.#core.dispose();
  }
}

/**
 * Builds a VGG, optionally loading weights. The architecture is inferred
 * from the weights when not given; a contradiction is an error.
 *
 *   const model = await vgg('vgg16_bn', { weights: 'vgg16_bn_....pth' });
 *   const model = await vgg({ weights: 'vgg16-12.onnx' });
 */
export async function vgg(arch?: Architecture | VggOptions, options?: VggOptions): Promise<Vgg> {
  return new Vgg(await buildCore(resolveVggArguments(arch, options)));
}
