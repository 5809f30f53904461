// The model core: one native model, the queue that serialises calls to it,
// and what the TypeScript side knows about it (architecture, labels, input
// pipeline). inference/ and train/ take a ModelCore; the public Vgg (model.ts)
// is a facade that validates arguments and delegates here. Nothing in this
// file validates arguments: callers pass resolved, checked values.
import { archName, type Architecture, type ArchSpec } from '../arch';
import type { NamedTensor, NamedTensorSource, NativeExplanation, NativeModel, NativeOutput, NativeSummary } from '../binding';
import { ModelError } from '../errors';
import type { PreprocessOptions } from '../image/preprocess';
import { SerialQueue } from '../queue';
import { isPixelBatch, type ModelInput, type Tensor } from '../tensor';
import { checkStateAgainstModel } from '../weights';
import { saveCheckpoint, type SaveLayout } from '../weights/save';
import { HEAD_LAYERS, type FeatureLayer, type InputPipeline, type ResolvedForwardOptions } from './forward';

/** Where a model's weights came from, when a file was loaded ({@link Vgg.weightsInfo}). */
export interface WeightsInfo {
  /** The file loaded: as given to vgg(), or the cache file for named or URL weights. */
  path: string;
  /** The container the reader recognised: a {@link WeightsFormat} ('pth-zip', 'pth-legacy', 'onnx', 'onnx-model'). */
  format: string;
  /** Key naming in the file: 'mmcls', 'torchvision' or 'onnx'. */
  layout: string;
  /** Canonical names of tensors re-initialised instead of loaded (a new head, or what did not fit with strict: false). */
  skipped: string[];
  /** What the reader noticed but did not refuse (an ONNX opset outside 7..17, a trailing Softmax, Gemm alpha/beta folded). */
  warnings: string[];
}

export class ModelCore {
  readonly arch: Architecture;
  readonly device: string;
  readonly queue = new SerialQueue();
  labels: string[] | undefined;
  inputPipeline: InputPipeline | undefined;
  #numClasses: number;
  #disposed = false;

  constructor(
    readonly native: NativeModel,
    readonly spec: ArchSpec,
    numClasses: number,
    labels: string[] | undefined,
    readonly weightsInfo: WeightsInfo | undefined,
  ) {
    this.arch = archName(spec);
    this.device = native.device();
    this.#numClasses = numClasses;
    this.labels = labels;
  }

  get numClasses(): number {
    return this.#numClasses;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** @throws ModelError 'DISPOSED' after dispose(). */
  assertAlive(): void {
    if (this.#disposed) throw new ModelError('DISPOSED', `this ${this.arch} model was disposed; create a new one with vgg()`);
  }

  /** @throws ModelError 'NO_CLASSIFIER' when the model was built with numClasses 0. */
  assertClassifier(what: string): void {
    if (this.#numClasses === 0) {
      throw new ModelError(
        'NO_CLASSIFIER',
        `this ${this.arch} was built without a classifier (numClasses 0), so it cannot ${what}: create it with numClasses`,
      );
    }
  }

  /** Runs a native call in turn; rejects at once after dispose(), or with AbortError when `signal` fires first. */
  schedule<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      this.assertAlive();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.queue.run(async () => {
      this.assertAlive();
      try {
        return await task();
      } catch (e) {
        throw nativeError(e);
      }
    }, signal);
  }

  /** Preprocessing that matches inputPipeline (as the training data loader resized), or undefined for ImageNet's. */
  defaultPreprocess(): PreprocessOptions | undefined {
    const p = this.inputPipeline;
    if (!p) return undefined;
    return p.resize === 'squash' ? { resize: 'squash', crop: p.size } : { resizeShort: Math.round((p.size * 256) / 224), crop: p.size };
  }

  /** Logits [N, numClasses] of float32 NCHW input (or the last stage's map when numClasses is 0). */
  async logits(x: Tensor, o: ResolvedForwardOptions): Promise<Tensor> {
    const [out] = await this.schedule(() => this.native.forward(x.data, x.shape, { outputs: 'logits', ...o }), o.signal);
    return { data: out.data, shape: out.shape };
  }

  /** Logits [N, numClasses] from the trunk's output [N, 512, h, w] (cached features): the classifier alone. */
  async classifierLogits(x: Tensor, o: ResolvedForwardOptions): Promise<Tensor> {
    const [out] = await this.schedule(() => this.native.forward(x.data, x.shape, { outputs: 'classifier', ...o }), o.signal);
    return { data: out.data, shape: out.shape };
  }

  /** The outputs mmcls's backbone returns for outIndices (stages, then logits when the model has a classifier). */
  stages(x: Tensor, o: ResolvedForwardOptions): Promise<NativeOutput[]> {
    return this.schedule(() => this.native.forward(x.data, x.shape, { outputs: 'stages', ...o }), o.signal);
  }

  /** Named activations of float32 NCHW input or 8-bit pixels (normalised natively). */
  forwardLayers(input: ModelInput, layers: FeatureLayer[], options: ResolvedForwardOptions): Promise<NativeOutput[]> {
    if (layers.some((l) => HEAD_LAYERS.includes(l))) {
      try {
        this.assertClassifier(`return ${layers.join(', ')}`);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const opts = { outputs: layers, ...options };
    return this.schedule(
      () =>
        isPixelBatch(input)
          ? this.native.forward(input.pixels, input.shape, { ...opts, normalize: { mean: [...input.mean], std: [...input.std] } })
          : this.native.forward(input.data, input.shape, opts),
      options.signal,
    );
  }

  /**
   * Grad-CAM maps [N, H, W] (0..1) of float32 NCHW input or 8-bit pixels at `layer` ('stage1'..'stage5'),
   * for `classIndices` (one per image) or each image's top-1 class; with the logits of the same pass.
   */
  explain(input: ModelInput, layer: string, classIndices: number[] | undefined, signal?: AbortSignal): Promise<NativeExplanation> {
    try {
      this.assertClassifier('explain its decisions (Grad-CAM needs class scores)');
    } catch (e) {
      return Promise.reject(e);
    }
    const opts = { layer, ...(classIndices ? { classIndices } : {}) };
    return this.schedule(
      () =>
        isPixelBatch(input)
          ? this.native.explain(input.pixels, input.shape, { ...opts, normalize: { mean: [...input.mean], std: [...input.std] } })
          : this.native.explain(input.data, input.shape, opts),
      signal,
    );
  }

  /** Parameters and multiply-adds at h x w, layer by layer. */
  summary(h: number, w: number): NativeSummary {
    this.assertAlive();
    return this.native.summary(h, w);
  }

  /** Every parameter and buffer by its mmcls name: a snapshot. */
  stateDict(): Promise<NamedTensor[]> {
    return this.schedule(() => this.native.stateDict(true));
  }

  /** Loads named tensors; with `strict` every tensor of the model must be given. Names and shapes are checked first. */
  loadStateDict(entries: NamedTensorSource[], strict: boolean): Promise<void> {
    return this.schedule(() => {
      const shapes = this.native.stateShapes();
      const given = new Set(entries.map((e) => e.name));
      const problems = checkStateAgainstModel(strict ? shapes : shapes.filter((s) => given.has(s.name)), entries, { strict: true });
      if (problems) throw problems;
      return this.native.loadStateDict(entries);
    });
  }

  /** A fresh last layer for numClasses classes (N(0, 0.01), seeded when `seed` is given). */
  async resetHead(numClasses: number, labels: string[] | undefined, seed: number | undefined): Promise<void> {
    this.assertClassifier('take a new head');
    await this.schedule(() => this.native.resetHead(numClasses, seed));
    this.#numClasses = numClasses;
    this.labels = labels;
  }

  /** Writes a zip-format .pth (atomically: temp file, then rename). */
  async save(file: string, layout: SaveLayout, meta: Record<string, unknown>): Promise<void> {
    // Inside the queue: the state views alias live weights a fine-tune step would change.
    await this.schedule(async () => {
      const state = await this.native.stateDict(false); // views: written before anything else runs
      const pipeline = this.inputPipeline ? { input_size: this.inputPipeline.size, input_resize: this.inputPipeline.resize } : {};
      await saveCheckpoint(file, { arch: this.spec, state, labels: this.labels, layout, extraMeta: { ...pipeline, ...meta } });
    });
  }

  /** Frees the native model now; later calls reject with ModelError 'DISPOSED'. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.native.dispose();
  }
}

/**
 * LibTorch's and the addon's own failures reach JavaScript as plain Errors
 * (N-API has no subclasses): they become ModelError 'NATIVE' with the same
 * message, so every error the package rejects with has a code.
 */
export function nativeError(e: unknown): unknown {
  return e instanceof Error && e.constructor === Error ? new ModelError('NATIVE', e.message, { cause: e }) : e;
}
