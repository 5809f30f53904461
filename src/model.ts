// The public model: owns one native model, serialises calls to it, and
// carries what the TypeScript side knows (architecture, labels).
import { archName, parseArch, type Architecture, type ArchSpec } from './arch';
import { loadBinding, type NamedTensor, type NamedTensorSource, type NativeModel, type NativeLayerSummary, type NativeOutput, type NativeSummary } from './binding';
import { IMAGENET_CLASSES } from './labels/imagenet';
import { resolveVggArguments, type VggOptions } from './options';
import { SerialQueue } from './queue';
import { setThreads } from './runtime';
import { checkImageBatch, isPixelBatch, type ModelInput, type Tensor } from './tensor';
import { checkAbortSignal, checkBoolean, checkInteger, checkLabels, checkObject, checkOneOf, checkString, invalidRange } from './validate';
import { checkTensorSources } from './weights/sources';
import { saveCheckpoint, type SaveLayout } from './weights/save';
import type { ImageInput, PreprocessOptions } from './image/preprocess';
import { classify as classifyImages, type ClassifyItem, type ClassifyOptions, type Prediction } from './inference/classify';
import { extractFeatures as extractImageFeatures, type FeatureOptions } from './inference/features';
import { classifyStream as classifyImageStream } from './inference/stream';
import type { Dataset, DatasetSource } from './data/dataset';
import { evaluate as evaluateModel, type EvaluateOptions, type EvaluateResult } from './train/evaluate';
import { fineTune as fineTuneModel, type FineTuneReport } from './train/finetune';
import type { FineTuneOptions } from './train/options';
import { checkStateAgainstModel, partitionForModel, readWeights, type LoadedWeights } from './weights';

export type Precision = 'fp32' | 'fp16' | 'bf16';

/** How images were sized for training: a square side and 'squash' or ImageNet-style 'short' resizing. */
export interface InputPipeline { size: number; resize: 'squash' | 'short' }
export const FEATURE_LAYERS = ['stage1', 'stage2', 'stage3', 'stage4', 'stage5', 'pool5', 'fc6', 'fc7', 'logits'] as const;
export type FeatureLayer = typeof FEATURE_LAYERS[number];

export interface ForwardOptions {
  precision?: Precision;
  /** NHWC memory layout for the convolutions (faster on recent GPUs). */
  channelsLast?: boolean;
  signal?: AbortSignal;
}

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

export class Vgg {
  readonly arch: Architecture;
  readonly spec: ArchSpec;
  /** The LibTorch device, e.g. 'cpu' or 'cuda:0'. */
  readonly device: string;
  /** Class names for the logits, when known. */
  labels: string[] | undefined;
  /**
   * The input pipeline the weights were fine-tuned with (set by fineTune, saved
   * in the checkpoint's meta): classify, extractFeatures and evaluate use it
   * when not told otherwise. Undefined means ImageNet's (short side 256, crop 224).
   */
  inputPipeline: InputPipeline | undefined;
  /**
   * Where the weights came from, if a file was loaded: `skipped` lists tensors
   * re-initialised (a new head), `warnings` what the reader noticed but did not
   * refuse (an ONNX opset outside 7..17, a trailing Softmax, Gemm alpha/beta folded).
   */
  readonly weightsInfo: { path: string; format: string; layout: string; skipped: string[]; warnings: string[] } | undefined;

  /** @internal */ readonly native: NativeModel;
  /** @internal */ readonly queue = new SerialQueue();
  #numClasses: number;
  #disposed = false;

  /** @internal use vgg() */
  constructor(native: NativeModel, arch: Architecture, numClasses: number, labels: string[] | undefined,
    weightsInfo?: Vgg['weightsInfo']) {
    this.native = native;
    this.arch = arch;
    this.spec = parseArch(arch);
    this.device = native.device();
    this.#numClasses = numClasses;
    this.labels = labels;
    this.weightsInfo = weightsInfo;
    this.inputPipeline = undefined;
  }

  /** @internal preprocessing defaults matching inputPipeline (as the training data loader resized). */
  defaultPreprocess(): PreprocessOptions | undefined {
    const p = this.inputPipeline;
    if (!p) return undefined;
    return p.resize === 'squash' ? { resize: 'squash', crop: p.size } : { resizeShort: Math.round((p.size * 256) / 224), crop: p.size };
  }

  get numClasses(): number { return this.#numClasses; }
  get disposed(): boolean { return this.#disposed; }

  /** @internal */
  assertAlive(): void {
    if (this.#disposed) throw new Error(`this ${this.arch} model was disposed; create a new one with vgg()`);
  }

  /** @internal runs a native call in turn; rejects at once after dispose(). */
  schedule<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      this.assertAlive();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.queue.run(() => {
      this.assertAlive();
      return task();
    }, signal);
  }

  /** Logits [N, numClasses] (or the last stage's feature map when numClasses is 0). */
  async forward(x: Tensor, options?: ForwardOptions): Promise<Tensor> {
    const input = checkImageBatch('x', x);
    const o = resolveForwardOptions(options);
    const [out] = await this.schedule(() => this.native.forward(input.data, input.shape, { outputs: 'logits', ...o }), o.signal);
    return { data: out.data, shape: out.shape };
  }

  /** The outputs mmcls's backbone returns for outIndices (stages, then logits when asked). */
  async forwardStages(x: Tensor, options?: ForwardOptions): Promise<Array<{ name: string } & Tensor>> {
    const input = checkImageBatch('x', x);
    const o = resolveForwardOptions(options);
    return this.schedule(() => this.native.forward(input.data, input.shape, { outputs: 'stages', ...o }), o.signal);
  }

  /** @internal named activations (stage1..5, pool5, fc6, fc7, logits) of float32 NCHW or 8-bit pixels. */
  forwardLayers(input: ModelInput, layers: FeatureLayer[], options: ResolvedForwardOptions): Promise<NativeOutput[]> {
    if (this.#numClasses === 0 && layers.some((l) => l === 'fc6' || l === 'fc7' || l === 'logits')) {
      return Promise.reject(invalidRange('options.layer', "a convolutional layer ('stage1'..'stage5', 'pool5') for a model without classifier", layers.join(',')));
    }
    const opts = { outputs: layers, ...options };
    return this.schedule(() => (isPixelBatch(input)
      ? this.native.forward(input.pixels, input.shape, { ...opts, normalize: { mean: [...input.mean], std: [...input.std] } })
      : this.native.forward(input.data, input.shape, opts)), options.signal);
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
    return classifyImages(this, input as readonly ImageInput[], options);
  }

  /** Classifies a (possibly endless) sequence of images with bounded read-ahead, in order. */
  classifyStream(source: Iterable<ImageInput> | AsyncIterable<ImageInput>, options?: ClassifyOptions): AsyncGenerator<ClassifyItem, void, undefined> {
    return classifyImageStream(this, source, options);
  }

  /**
   * Activations of one layer for each image, [N, ...]:
   * - 'pool5' (default): 512-d global average of stage5, any input size: retrieval (with normalize) and linear probes;
   * - 'fc6' / 'fc7': 4096-d after ReLU: the classic transfer-learning descriptor (fc7), linear probes;
   * - 'stage1'..'stage5': feature maps for detection / segmentation backbones;
   * - 'logits'. `normalize: true` L2-normalises each row (cosine similarity = dot product).
   */
  extractFeatures(inputs: ImageInput | readonly ImageInput[] | Tensor, options?: FeatureOptions): Promise<Tensor> {
    return extractImageFeatures(this, inputs, options);
  }

  /**
   * Trains on a labelled image folder, list or CSV (the head is replaced when the
   * class count differs; labels become the class names). Resolves with per-epoch
   * losses, top-1/top-5 and throughput. See FineTuneOptions for schedules,
   * checkpoints, resume, AbortSignal and distributed data-parallel training.
   */
  fineTune(options: FineTuneOptions): Promise<FineTuneReport> {
    return fineTuneModel(this, options);
  }

  /** Top-1, top-5, loss, per-class accuracy and the confusion matrix on a labelled dataset. */
  evaluate(dataset: DatasetSource | Dataset, options?: EvaluateOptions): Promise<EvaluateResult> {
    return evaluateModel(this, dataset, options);
  }

  /** Parameters and multiply-adds (at 224x224 unless a size is given), layer by layer. */
  summary(inputSize: number | [number, number] = 224): ModelSummary {
    this.assertAlive();
    const [h, w] = typeof inputSize === 'number' ? [inputSize, inputSize] : inputSize;
    checkInteger('inputSize (height)', h, 1, 65536);
    checkInteger('inputSize (width)', w, 1, 65536);
    const s: NativeSummary = this.native.summary(h, w);
    return { arch: this.arch, params: s.params, trainableParams: s.trainableParams, macs: s.macs, inputSize: [h, w], layers: s.layers };
  }

  /** Every parameter and buffer by its mmcls name: a snapshot (training later does not change it). */
  stateDict(): Promise<NamedTensor[]> {
    return this.schedule(() => this.native.stateDict(true));
  }

  /**
   * Loads named tensors (mmcls names without `backbone.`). Names and shapes must
   * match; with `strict` (default) every tensor of the model must be given.
   */
  loadStateDict(entries: NamedTensorSource[], options?: { strict?: boolean }): Promise<void> {
    let strict: boolean;
    try {
      checkTensorSources('entries', entries);
      const o = checkObject('options', options);
      strict = o.strict === undefined ? true : checkBoolean('options.strict', o.strict);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.schedule(() => {
      const shapes = this.native.stateShapes();
      const given = new Set(entries.map((e) => e.name));
      const problems = checkStateAgainstModel(strict ? shapes : shapes.filter((s) => given.has(s.name)), entries, { strict: true });
      if (problems) throw problems;
      return this.native.loadStateDict(entries);
    });
  }

  /** Replaces the classifier's last layer with a fresh one (N(0, 0.01), seeded when `seed` is given) for numClasses classes. */
  async resetHead(numClasses: number, labels?: string[], seed?: number): Promise<void> {
    checkInteger('numClasses', numClasses, 1, 1_000_000);
    if (labels !== undefined) checkLabels('labels', labels, numClasses);
    if (seed !== undefined) checkInteger('seed', seed, 0);
    if (this.#numClasses === 0) throw new Error('this model was built without a classifier (numClasses 0): create it with numClasses instead');
    await this.schedule(() => this.native.resetHead(numClasses, seed));
    this.#numClasses = numClasses;
    this.labels = labels;
  }

  /**
   * Writes the weights as a zip-format .pth that `torch.load(path, weights_only=True)` reads:
   * layout 'mmcls' (default; with meta: arch, CLASSES) or 'torchvision' (a bare state_dict).
   * Written to a temp file and renamed, so a crash never leaves half a checkpoint.
   */
  async save(file: string, options?: { layout?: SaveLayout; meta?: Record<string, unknown> }): Promise<void> {
    checkString('file', file);
    const o = checkObject('options', options);
    const layout = o.layout === undefined ? 'mmcls' : checkOneOf('options.layout', o.layout, ['mmcls', 'torchvision'] as const);
    const meta = checkObject('options.meta', o.meta);
    // Inside the queue: the state views alias live weights a fine-tune step would change.
    await this.schedule(async () => {
      const state = await this.native.stateDict(false); // views: written before anything else runs
      const pipeline = this.inputPipeline ? { input_size: this.inputPipeline.size, input_resize: this.inputPipeline.resize } : {};
      await saveCheckpoint(file, { arch: this.spec, state, labels: this.labels, layout, extraMeta: { ...pipeline, ...meta } });
    });
  }

  /** Frees the native model now; later calls reject. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.native.dispose();
  }
}

export interface ResolvedForwardOptions { precision: Precision; channelsLast: boolean; signal?: AbortSignal }

const FORWARD_KEYS = ['precision', 'channelsLast', 'signal'];

export function resolveForwardOptions(options: unknown): ResolvedForwardOptions {
  const o = checkObject('options', options);
  for (const key of Object.keys(o)) {
    if (!FORWARD_KEYS.includes(key) && o[key] !== undefined) throw invalidRange('options', `only the keys ${FORWARD_KEYS.join(', ')}`, key);
  }
  return {
    precision: o.precision === undefined ? 'fp32' : checkOneOf('options.precision', o.precision, ['fp32', 'fp16', 'bf16'] as const),
    channelsLast: o.channelsLast === undefined ? false : checkBoolean('options.channelsLast', o.channelsLast),
    signal: checkAbortSignal('options.signal', o.signal),
  };
}

function defaultLabels(numClasses: number): string[] | undefined {
  return numClasses === 1000 ? [...IMAGENET_CLASSES] : undefined;
}

/**
 * Builds a VGG, optionally loading weights. The architecture is inferred
 * from the weights when not given; a contradiction is an error.
 *
 *   const model = await vgg('vgg16_bn', { weights: 'vgg16_bn_....pth' });
 *   const model = await vgg({ weights: 'vgg16-12.onnx' });
 */
export async function vgg(arch?: Architecture | VggOptions, options?: VggOptions): Promise<Vgg> {
  const r = resolveVggArguments(arch, options);
  if (r.threads !== undefined) setThreads(r.threads);
  const binding = loadBinding();
  let weights: LoadedWeights | undefined;
  if (r.weights) weights = await readWeights(r.weights);

  let spec: ArchSpec;
  if (weights) {
    const found = archName(weights.arch);
    if (r.arch && r.arch !== found) {
      throw new Error(`arch '${r.arch}' was asked for, but ${r.weights} holds a ${found} (${weights.layout} layout); ` +
        `pass arch '${found}' or omit it`);
    }
    spec = weights.arch;
  } else {
    spec = parseArch(r.arch ?? 'vgg16');
  }
  const ckptClasses = weights?.numClasses;
  const numClasses = r.numClasses ?? ckptClasses ?? 1000;
  const headDiffers = ckptClasses !== undefined && ckptClasses !== numClasses;
  // Initialising 130M+ parameters only to overwrite them costs more than reading them.
  const fullyLoaded = weights !== undefined && r.strict && !headDiffers;
  const ceilMode = weights?.ceilMode ?? r.config.ceilMode;
  if (r.ceilModeGiven && ceilMode !== r.config.ceilMode) {
    throw invalidRange('options.ceilMode', `${ceilMode} (the MaxPool ceil_mode of ${r.weights}) or no value`, r.config.ceilMode);
  }
  const native = await binding.Model.create({
    ...r.config, ceilMode, depth: spec.depth, batchNorm: spec.batchNorm, numClasses, device: r.device, initWeights: !fullyLoaded,
  });
  try {
    let skipped: string[] = [];
    if (weights) {
      const entries = [...weights.tensors].map(([name, tensor]) => ({ name, tensor }));
      const modelState = native.stateShapes();
      // A numClasses other than the checkpoint's (or strict: false) re-initialises what does not fit.
      if (fullyLoaded) {
        const problem = checkStateAgainstModel(modelState, entries, { strict: true, file: r.weights });
        if (problem) throw problem;
        await native.loadStateDict(entries);
      } else {
        const p = partitionForModel(modelState, entries);
        if (r.strict && p.skipped.some((n) => !n.startsWith('classifier.6.'))) {
          throw checkStateAgainstModel(modelState, entries.filter((e) => !e.name.startsWith('classifier.6.')), { strict: true, file: r.weights })!;
        }
        skipped = p.skipped;
        await native.loadStateDict(p.fit);
      }
    }
    if (r.labels) checkLabels('options.labels', r.labels, numClasses);
    const labels = r.labels ?? (weights?.labels && weights.labels.length === numClasses ? weights.labels : defaultLabels(numClasses));
    const info = weights ? { path: r.weights!, format: weights.format, layout: weights.layout, skipped, warnings: weights.warnings } : undefined;
    const model = new Vgg(native, archName(spec), numClasses, labels, info);
    const size = weights?.meta?.input_size;
    const resize = weights?.meta?.input_resize;
    if (typeof size === 'number' && Number.isInteger(size) && size >= 32 && (resize === 'squash' || resize === 'short')) {
      model.inputPipeline = { size, resize };
    }
    return model;
  } catch (e) {
    native.dispose();
    throw e;
  }
}
