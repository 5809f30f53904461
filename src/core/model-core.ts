// The model core: one native model, the queue that serialises calls to it,
// and what the TypeScript side knows about it (architecture, labels, input
// pipeline). inference/ and train/ take a ModelCore; the public Vgg (model.ts)
// is a facade that validates arguments and delegates here. Nothing in this
// file validates arguments: callers pass resolved, checked values.
import { archName, type Architecture, type ArchSpec, type BackboneOptions } from '../arch';
import type {
  NamedTensor,
  NamedTensorSource,
  NativeDistributedConfig,
  NativeExplanation,
  NativeModel,
  NativeOptimizerConfig,
  NativeOutput,
  NativeSummary,
  NativeTrainStepOptions,
} from '../binding';
import { ModelError } from '../errors';
import type { PreprocessOptions } from '../image/preprocess';
import { SerialQueue } from '../queue';
// Dynamic batching across calls (issue 24): forwards go through the batcher.
import { Batcher, batchKey, DEFAULT_BATCHING, type ResolvedBatching } from '../inference/batcher';
import { isPixelBatch, type ModelInput, type Tensor } from '../tensor';
import { checkStateAgainstModel } from '../weights';
import { saveWeights, type SaveFormat, type SaveLayout } from '../weights/save';
import type { EmaInfo } from '../weights/layout';
import { loadBinding } from '../binding';
import { HEAD_LAYERS, type FeatureLayer, type InputPipeline, type Precision, type ResolvedForwardOptions } from './forward';
import { summarize } from './summary';

/** Where a model's weights came from, when a file was loaded ({@link Vgg.weightsInfo}). */
export interface WeightsInfo {
  /** The file loaded: as given to vgg(), or the cache file for named or URL weights. */
  path: string;
  /** The container the reader recognised: a {@link WeightsFormat} ('pth-zip', 'pth-legacy', 'torchscript', 'safetensors', 'onnx', 'onnx-model'). */
  format: string;
  /** Key naming in the file: 'mmcls', 'timm', 'torchvision' or 'onnx'. */
  layout: string;
  /** The checkpoint also held EMA weights: where (e.g. "'state_dict_ema'"), and `used`: whether they were loaded (vgg()'s `ema` option) rather than the live ones. */
  ema?: EmaInfo;
  /** Canonical names of tensors re-initialised instead of loaded (a new head, or what did not fit with strict: false). */
  skipped: string[];
  /** What the reader noticed but did not refuse (an ONNX opset outside 7..17, a trailing Softmax, Gemm alpha/beta folded). */
  warnings: string[];
}

/** A model's int8 calibration ({@link Vgg.quantization}): saved in a .pth's meta as `quantization`. */
export interface QuantizationInfo {
  /** How each threshold was chosen: 'minmax' (max |x|) or 'percentile' (the `percentile`-th percentile of |x|). */
  method: 'minmax' | 'percentile';
  /** The percentile used by 'percentile' (e.g. 99.99); absent for 'minmax'. */
  percentile?: number;
  /** Images the statistics were gathered on (absent when unknown). */
  samples?: number;
  /**
   * Input scale of each convolution, in order (8 for VGG-11 ... 16 for VGG-19): the convolution sees
   * round(x / scale) in s8 (the first, on the normalised image) or u8 (the others, after ReLU/pooling).
   */
  scales: number[];
}

/** Whether this process can run int8 on `device`; the reason when not. */
export function int8Support(device: string): string | undefined {
  if (device !== 'cpu') return `int8 inference runs on the CPU only, and this model is on ${device}`;
  const { onednn } = loadBinding().runtime();
  if (!onednn.built) return 'int8 inference needs the oneDNN engine, and this addon was built without it';
  if (!onednn.enabled) return 'int8 inference needs the oneDNN engine, which the onednn setting (VGG_NATIVE_ONEDNN=0) turned off';
  if (!onednn.int8) return `int8 inference needs a CPU with VNNI (avx512_vnni, avx_vnni) or AMX; oneDNN reports ${onednn.isa} here`;
  return undefined;
}

export class ModelCore {
  readonly arch: Architecture;
  readonly device: string;
  readonly #queue = new SerialQueue();
  readonly #batcher = new Batcher(DEFAULT_BATCHING, (task) => this.#enqueue(task, undefined, true));
  labels: string[] | undefined;
  inputPipeline: InputPipeline | undefined;
  // Private: every native call goes through a method here, inside the queue.
  readonly #native: NativeModel;
  #numClasses: number;
  #disposed = false;
  #quantization: QuantizationInfo | undefined;
  /** The scales are installed natively (the CPU can run int8): int8 is the default precision. */
  #int8Ready = false;

  constructor(
    native: NativeModel,
    readonly spec: ArchSpec,
    numClasses: number,
    labels: string[] | undefined,
    readonly weightsInfo: WeightsInfo | undefined,
    /** The mmcls options the native model was built with: what summary() needs beyond the table. */
    readonly backbone: BackboneOptions,
  ) {
    this.#native = native;
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

  /** The int8 calibration, or undefined before quantize(). */
  get quantization(): QuantizationInfo | undefined {
    return this.#quantization;
  }

  /** The precision a forward runs in: the one asked for, else 'int8' once quantised, else 'fp32'. @throws ModelError 'NOT_CALIBRATED', 'INT8_UNSUPPORTED' */
  precisionFor(asked: Precision | undefined): Precision {
    const p = asked ?? (this.#int8Ready ? 'int8' : 'fp32');
    if (p === 'int8' && !this.#int8Ready) {
      if (!this.#quantization) {
        throw new ModelError('NOT_CALIBRATED', `precision 'int8' needs a calibrated model: call quantize() on this ${this.arch} first`);
      }
      throw new ModelError('INT8_UNSUPPORTED', int8Support(this.device) ?? 'int8 inference is not available for this model');
    }
    return p;
  }

  /** Forward options with the precision settled ({@link precisionFor}). */
  #forwardOptions(o: ResolvedForwardOptions): { precision: Precision; channelsLast: boolean } {
    return { precision: this.precisionFor(o.precision), channelsLast: o.channelsLast };
  }

  /** Accumulates one calibration batch (float32 NCHW input or 8-bit pixels); `reset` starts over. Resolves with the images so far. */
  calibrateBatch(input: ModelInput, reset: boolean, signal?: AbortSignal): Promise<number> {
    return this.#enqueue(
      () =>
        isPixelBatch(input)
          ? this.#native.calibrate(input.pixels, input.shape, { reset, normalize: { mean: [...input.mean], std: [...input.std] } })
          : this.#native.calibrate(input.data, input.shape, { reset }),
      signal,
    );
  }

  /** Per-convolution input scales from the accumulated statistics. */
  async finishCalibration(method: 'minmax' | 'percentile', percentile: number): Promise<number[]> {
    const out = await this.#enqueue(() => this.#native.finishCalibration({ method, percentile }));
    return Array.from(out.data);
  }

  /**
   * Installs (or, with undefined, removes) a calibration. Where int8 cannot run, `strict` throws
   * ModelError 'INT8_UNSUPPORTED'; otherwise the calibration is kept (reported, saved) but not used.
   */
  async setQuantization(q: QuantizationInfo | undefined, strict: boolean): Promise<void> {
    const unsupported = q ? int8Support(this.device) : undefined;
    if (unsupported && strict) throw new ModelError('INT8_UNSUPPORTED', unsupported);
    const ready = q !== undefined && !unsupported;
    await this.#enqueue(() => this.#native.setQuantization(ready ? Float32Array.from(q!.scales) : null));
    this.#quantization = q;
    this.#int8Ready = ready;
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

  /** Calls waiting in the batcher for their forward (the serve queue-depth metric). */
  get queued(): number {
    return this.#batcher.queued;
  }

  /** Dynamic batching of concurrent forwards ({@link Batcher}); set once by vgg(). */
  configureBatching(options: ResolvedBatching): void {
    this.#batcher.options = options;
  }

  /** Runs a native call in turn; rejects at once after dispose(), or with AbortError when `signal` fires first. */
  async #enqueue<T>(task: () => Promise<T>, signal?: AbortSignal, batched = false): Promise<T> {
    this.assertAlive(); // a disposed model rejects at once, not after the calls queued before it
    if (!batched) this.#batcher.seal(); // nothing joins a forward queued before this call
    return this.#queue.run(async () => {
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
    const [out] = await this.#batchedForward(x, 'logits', o);
    return { data: out.data, shape: out.shape };
  }

  /** A forward shared with concurrent compatible calls (the batcher); resolves with this call's rows. */
  #batchedForward(input: ModelInput, outputs: 'logits' | FeatureLayer[], o: ResolvedForwardOptions): Promise<NativeOutput[]> {
    this.assertAlive();
    const opts = { outputs, ...this.#forwardOptions(o) };
    const run = (x: ModelInput): Promise<NativeOutput[]> => {
      this.assertAlive(); // the group may have waited for company while dispose() ran
      return isPixelBatch(x)
        ? this.#native.forward(x.pixels, x.shape, { ...opts, normalize: { mean: [...x.mean], std: [...x.std] } })
        : this.#native.forward(x.data, x.shape, opts);
    };
    return this.#batcher.submit(batchKey(input, outputs, opts.precision, opts.channelsLast), input, run, o.signal);
  }

  /** Logits [N, numClasses] from the trunk's output [N, 512, h, w] (cached features): the classifier alone. */
  async classifierLogits(x: Tensor, o: ResolvedForwardOptions): Promise<Tensor> {
    // The classifier runs in float32 whatever the trunk's precision: int8 only changes the trunk.
    const p = this.precisionFor(o.precision);
    const opts = { outputs: 'classifier' as const, precision: p === 'int8' ? 'fp32' : p, channelsLast: o.channelsLast };
    const [out] = await this.#enqueue(() => this.#native.forward(x.data, x.shape, opts), o.signal);
    return { data: out.data, shape: out.shape };
  }

  /** The outputs mmcls's backbone returns for outIndices (stages, then logits when the model has a classifier). */
  stages(x: Tensor, o: ResolvedForwardOptions): Promise<NativeOutput[]> {
    const opts = { outputs: 'stages' as const, ...this.#forwardOptions(o) };
    return this.#enqueue(() => this.#native.forward(x.data, x.shape, opts), o.signal);
  }

  /** Named activations of float32 NCHW input or 8-bit pixels (normalised natively). */
  async forwardLayers(input: ModelInput, layers: FeatureLayer[], options: ResolvedForwardOptions): Promise<NativeOutput[]> {
    if (layers.some((l) => HEAD_LAYERS.includes(l))) this.assertClassifier(`return ${layers.join(', ')}`);
    return this.#batchedForward(input, layers, options);
  }

  /**
   * Grad-CAM maps [N, H, W] (0..1) of float32 NCHW input or 8-bit pixels at `layer` ('stage1'..'stage5'),
   * for `classIndices` (one per image) or each image's top-1 class; with the logits of the same pass.
   */
  async explain(input: ModelInput, layer: string, classIndices: number[] | undefined, signal?: AbortSignal): Promise<NativeExplanation> {
    this.assertClassifier('explain its decisions (Grad-CAM needs class scores)');
    const opts = { layer, ...(classIndices ? { classIndices } : {}) };
    return this.#enqueue(
      () =>
        isPixelBatch(input)
          ? this.#native.explain(input.pixels, input.shape, { ...opts, normalize: { mean: [...input.mean], std: [...input.std] } })
          : this.#native.explain(input.data, input.shape, opts),
      signal,
    );
  }

  /** Parameters and multiply-adds at h x w, layer by layer: arithmetic over the architecture table (summary.ts). */
  summary(h: number, w: number): NativeSummary {
    this.assertAlive();
    return summarize(this.spec, { ...this.backbone, numClasses: this.#numClasses }, h, w);
  }

  /** Every parameter and buffer by its mmcls name: a snapshot. */
  stateDict(): Promise<NamedTensor[]> {
    return this.#enqueue(() => this.#native.stateDict(true));
  }

  /** Loads named tensors; with `strict` every tensor of the model must be given. Names and shapes are checked first. */
  loadStateDict(entries: NamedTensorSource[], strict: boolean): Promise<void> {
    return this.#enqueue(() => {
      const shapes = this.#native.stateShapes();
      const given = new Set(entries.map((e) => e.name));
      const problems = checkStateAgainstModel(strict ? shapes : shapes.filter((s) => given.has(s.name)), entries, { strict: true });
      if (problems) throw problems;
      return this.#native.loadStateDict(entries);
    });
  }

  /** A fresh last layer for numClasses classes (N(0, 0.01), seeded when `seed` is given). */
  async resetHead(numClasses: number, labels: string[] | undefined, seed: number | undefined): Promise<void> {
    this.assertClassifier('take a new head');
    await this.#enqueue(() => this.#native.resetHead(numClasses, seed));
    this.#numClasses = numClasses;
    this.labels = labels;
  }

  /** fc6 rewritten to compute on x * scale + shift per channel of the trunk's output (scale, shift: [512]). */
  composeClassifierInput(scale: Float32Array, shift: Float32Array): Promise<void> {
    return this.#enqueue(() => this.#native.composeClassifierInput(scale, shift));
  }

  /** A new optimizer over the trainable parameters (two groups: backbone, head); its state starts empty. */
  configureOptimizer(config: NativeOptimizerConfig): Promise<void> {
    return this.#enqueue(() => this.#native.configureOptimizer(config));
  }

  /**
   * One optimizer step on a batch: float32 NCHW images, or the trunk's output [N, 512, h, w] with
   * `features`; labels int64 [N]. Resolves with the batch's mean loss (nats), correct top-1 count and
   * the gradient norm before clipping.
   */
  trainStep(batch: TrainingBatch, options: TrainStepOptions): Promise<{ loss: number; correct: number; gradNorm: number }> {
    return this.#enqueue(() => this.#native.trainStep(batch.data, batch.shape, batch.labels, options));
  }

  /** The optimizer's state (LibTorch archive) to `file`. */
  saveOptimizer(file: string): Promise<void> {
    return this.#enqueue(() => this.#native.saveOptimizer(file));
  }

  /** The optimizer's state from `file` (the optimizer must be configured with the same groups). */
  loadOptimizer(file: string): Promise<void> {
    return this.#enqueue(() => this.#native.loadOptimizer(file));
  }

  /** Joins the process group (blocks a pool thread until every rank has joined), then takes rank 0's weights. */
  joinProcessGroup(config: NativeDistributedConfig): Promise<void> {
    return this.#enqueue(() => this.#native.setDistributed(config));
  }

  /** Rank 0's weights to every rank of the joined group. */
  broadcastWeights(): Promise<void> {
    return this.#enqueue(() => this.#native.broadcastWeights());
  }

  /** Writes a zip-format .pth (atomically: temp file, then rename). */
  /** @throws ModelError 'NOT_CALIBRATED' for the QDQ form of a model quantize() has not calibrated */
  async save(file: string, format: SaveFormat, layout: SaveLayout, meta: Record<string, unknown>, quantized = false): Promise<void> {
    if (quantized && !this.#quantization) {
      throw new ModelError('NOT_CALIBRATED', `save(..., { quantized: true }) needs a calibrated model: call quantize() on this ${this.arch} first`);
    }
    // Inside the queue: the state views alias live weights a fine-tune step would change.
    await this.#enqueue(async () => {
      const state = await this.#native.stateDict(false); // views: written before anything else runs
      await saveWeights(file, format, {
        arch: this.spec,
        numClasses: this.#numClasses,
        backbone: this.backbone,
        state,
        labels: this.labels,
        inputPipeline: this.inputPipeline,
        layout,
        extraMeta: this.#quantization ? { quantization: quantizationMeta(this.#quantization), ...meta } : meta,
        ...(quantized && this.#quantization ? { activationScales: this.#quantization.scales } : {}),
      });
    });
  }

  /** Frees the native model now; later calls reject with ModelError 'DISPOSED'. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#native.dispose();
  }
}

/** The calibration as a checkpoint's meta `quantization` holds it. */
function quantizationMeta(q: QuantizationInfo): Record<string, unknown> {
  return {
    method: q.method,
    ...(q.percentile !== undefined ? { percentile: q.percentile } : {}),
    ...(q.samples !== undefined ? { samples: q.samples } : {}),
    scales: [...q.scales],
  };
}

/** A checkpoint meta's `quantization`, or undefined when absent or malformed. */
export function quantizationFromMeta(v: unknown): QuantizationInfo | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const method = o.method;
  const scales = o.scales;
  if (method !== 'minmax' && method !== 'percentile') return undefined;
  if (!Array.isArray(scales) || scales.length === 0 || !scales.every((s) => typeof s === 'number' && Number.isFinite(s) && s > 0)) {
    return undefined;
  }
  return {
    method,
    ...(typeof o.percentile === 'number' ? { percentile: o.percentile } : {}),
    ...(typeof o.samples === 'number' ? { samples: o.samples } : {}),
    scales: scales as number[],
  };
}

/** What {@link ModelCore.trainStep} learns from. */
export interface TrainingBatch {
  data: Float32Array;
  shape: number[];
  labels: BigInt64Array;
}

/** {@link ModelCore.trainStep}'s options: lossScale weights this rank's mean loss; seed reseeds dropout in the worker. */
export type TrainStepOptions = NativeTrainStepOptions & { lossScale?: number; seed?: number; features?: boolean };

/**
 * LibTorch's and the addon's own failures reach JavaScript as plain Errors
 * (N-API has no subclasses): they become ModelError 'NATIVE' with the same
 * message, so every error the package rejects with has a code.
 */
export function nativeError(e: unknown): unknown {
  return e instanceof Error && e.constructor === Error ? new ModelError('NATIVE', e.message, { cause: e }) : e;
}
