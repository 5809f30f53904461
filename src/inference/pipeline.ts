// Batching with one batch of read-ahead, shared by classify, classifyStream
// and extractFeatures: while LibTorch runs batch k on its worker thread,
// sharp decodes batch k+1 on libuv's pool. Items come out in input order;
// at most two batches are held at once, so a source of any length streams.
import { ModelCore } from '../core/model-core';
import { resolveForwardOptions, type Precision, type ResolvedForwardOptions } from '../core/forward';
import { checkTensorInput, classifyInput } from '../image/decode';
import { ImageInputError, cropBatchResolved, type Crop, type ImageInput, type PreprocessOptions } from '../image/preprocess';
import { resolvePreprocessOptions, type ResolvedPreprocessOptions } from '../image/options';
import { abortable, throwIfAborted } from '../abort';
import type { ModelInput, PixelBatch, Tensor } from '../tensor';
import { checkAbortSignal, checkBoolean, checkInteger, checkObject, invalidRange, invalidType, keysOf, outOfRange, orDefault } from '../validate';

/**
 * Options every batched entry point takes ({@link Vgg.classify},
 * {@link Vgg.classifyStream}, {@link Vgg.extractFeatures}). An unknown key is
 * a RangeError 'ERR_OUT_OF_RANGE'.
 */
export interface BatchOptions {
  /** Images per native call, an integer in 1..4096. Default: 8 on CPU, 32 on CUDA. */
  batchSize?: number;
  /** Images decoded at once (sharp, libuv's pool), an integer in 1..1024. Default: min(4, CPUs). */
  concurrency?: number;
  /**
   * How images become tensors. Default: the model's {@link Vgg.inputPipeline}
   * when it has one, else mmcls' ImageNet test pipeline (short side 256, centre
   * crop 224, ImageNet mean/std). Every crop must be at least 32x32 pixels.
   */
  preprocess?: PreprocessOptions;
  /** 'fp32', or autocast to 'fp16' (CUDA only) / 'bf16'. Default: 'fp32'. */
  precision?: Precision;
  /** NHWC memory layout for the convolutions (faster on recent GPUs). Default: false. */
  channelsLast?: boolean;
  /** Aborting rejects with AbortError; queued batches never reach the model. Default: none. */
  signal?: AbortSignal;
}

export interface ResolvedBatchOptions {
  batchSize: number;
  concurrency: number | undefined;
  /** Resolved once per call: every batch runs it as it is. */
  preprocess: ResolvedPreprocessOptions;
  forward: ResolvedForwardOptions;
  signal: AbortSignal | undefined;
  failFast: boolean;
}

/** The keys of BatchOptions; callers list theirs with keysOf<TheirOptions>() (which must include these). */
export const BATCH_KEYS = keysOf<BatchOptions>()(['batchSize', 'concurrency', 'preprocess', 'precision', 'channelsLast', 'signal']);

/** The network needs at least 32x32 to survive five 2x2 poolings. */
const MIN_SIZE = 32;

/** Validates the options shared by all entry points once; `known` are all the caller's keys (its interface's, checked by keysOf). */
export function resolveBatchOptions(
  model: ModelCore,
  options: unknown,
  known: readonly string[],
): { resolved: ResolvedBatchOptions; raw: Record<string, unknown> } {
  const o = checkObject('options', options);
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) throw invalidRange('options', `only the keys ${known.join(', ')}`, key);
  }
  const signal = checkAbortSignal('options.signal', o.signal);
  if (o.channelsLast !== undefined) checkBoolean('options.channelsLast', o.channelsLast);
  // Resolved here, once: a bad option fails before any image is read, and no batch resolves it again.
  const preprocess = resolvePreprocessOptions(o.preprocess ?? model.defaultPreprocess(), 'options.preprocess');
  return {
    raw: o,
    resolved: {
      batchSize: orDefault(o.batchSize, model.device.startsWith('cuda') ? 32 : 8, (v) => checkInteger('options.batchSize', v, 1, 4096)),
      concurrency: orDefault(o.concurrency, undefined, (v) => checkInteger('options.concurrency', v, 1, 1024)),
      preprocess,
      forward: { ...resolveForwardOptions({ precision: o.precision, channelsLast: o.channelsLast }), signal },
      signal,
      failFast: orDefault(o.failFast, false, (v) => checkBoolean('options.failFast', v)),
    },
  };
}

/** Throws a TypeError unless `model` is a live model core. */
export function checkModel(model: unknown): ModelCore {
  if (!(model instanceof ModelCore)) {
    throw invalidType('model', 'a model from vgg()', model);
  }
  (model as ModelCore).assertAlive();
  return model as ModelCore;
}

/** The parameter name errors use for an item: `input` alone, `inputs[i]` in a batch. */
export function itemName(index: number, single: boolean): string {
  return single ? 'input' : `inputs[${index}]`;
}

/** Sorts out inputs of the wrong kind before any work (TypeError/RangeError naming the item). */
export function checkItem(input: unknown, name: string): void {
  const c = classifyInput(input, name);
  if (c.kind === 'tensor') checkTensorInput(c.tensor, name);
}

export type Outcome<R> =
  | { index: number; input: ImageInput; value: R; error?: undefined }
  | { index: number; input: ImageInput; value?: undefined; error: Error };

/** A decoded item: 8-bit crop (normalised natively) or a caller's tensor, or its error. */
type Prepared = { index: number; input: ImageInput; crop?: Crop; tensor?: Tensor; error?: Error };

/** The normalisation of this chunk's crops. */
interface Normalize {
  mean: readonly number[];
  std: readonly number[];
}

type AnyIterator = Iterator<ImageInput> | AsyncIterator<ImageInput>;

function iteratorOf(source: Iterable<ImageInput> | AsyncIterable<ImageInput>): AnyIterator {
  const asyncIt = (source as AsyncIterable<ImageInput>)[Symbol.asyncIterator];
  return typeof asyncIt === 'function' ? asyncIt.call(source) : (source as Iterable<ImageInput>)[Symbol.iterator]();
}

async function readChunk(it: AnyIterator, size: number, start: number): Promise<Array<{ index: number; input: ImageInput }>> {
  const chunk: Array<{ index: number; input: ImageInput }> = [];
  while (chunk.length < size) {
    const r = await it.next();
    if (r.done) break;
    chunk.push({ index: start + chunk.length, input: r.value });
  }
  return chunk;
}

function reindex(error: Error, index: number, single: boolean): Error {
  if (!(error instanceof ImageInputError)) return error;
  // preprocessBatch numbers items within the chunk; the caller's numbering is what helps.
  return single ? new ImageInputError(error.reason, { path: error.path, cause: error.cause, code: error.code }) : error.withIndex(index);
}

/** Decodes one chunk (never rejects for a bad item: the item carries its error). */
async function prepare(
  chunk: Array<{ index: number; input: ImageInput }>,
  o: ResolvedBatchOptions,
  single: boolean,
): Promise<{ items: Prepared[]; normalize: Normalize }> {
  const out: Prepared[] = chunk.map(({ index, input }) => ({ index, input }));
  const todo: number[] = [];
  chunk.forEach(({ index, input }, k) => {
    try {
      checkItem(input, itemName(index, single));
      todo.push(k);
    } catch (e) {
      out[k].error = e as Error;
    }
  });
  const { results, mean, std } = await cropBatchResolved(
    todo.map((k) => chunk[k].input),
    o.preprocess,
    o.concurrency,
  );
  results.forEach((r, j) => {
    const item = out[todo[j]];
    if (!r.ok) {
      item.error = reindex(r.error, item.index, single);
      return;
    }
    const [h, w] = 'box' in r.crop ? [r.crop.box.height, r.crop.box.width] : r.crop.shape.slice(2);
    if (h < MIN_SIZE || w < MIN_SIZE) {
      item.error = outOfRange(
        `Expected at least ${MIN_SIZE}x${MIN_SIZE} pixels after preprocessing for ` +
          `${itemName(item.index, single)} but received ${h}x${w} (options.preprocess.crop / resizeShort)`,
      );
      return;
    }
    if ('box' in r.crop) item.crop = r.crop;
    else item.tensor = r.crop;
  });
  return { items: out, normalize: { mean, std } };
}

/** Same-size crops in one [n,H,W,3] byte buffer: a row copy per image row, no float conversion here. */
export function packCrops(crops: Crop[], normalize: Normalize): PixelBatch {
  const { width: w, height: h } = crops[0].box;
  const rowBytes = w * 3;
  const pixels = new Uint8Array(crops.length * h * rowBytes);
  crops.forEach(({ image, box }, i) => {
    const stride = image.width * 3;
    for (let y = 0; y < h; y++) {
      const from = (box.top + y) * stride + box.left * 3;
      pixels.set(image.data.subarray(from, from + rowBytes), (i * h + y) * rowBytes);
    }
  });
  return { pixels, shape: [crops.length, h, w, 3], mean: normalize.mean, std: normalize.std };
}

/** Same-size tensors in one [n,3,H,W] buffer: one copy per image, none for a batch of one. */
export function stack(tensors: Tensor[]): Tensor {
  if (tensors.length === 1) return tensors[0];
  const [, c, h, w] = tensors[0].shape;
  const size = c * h * w;
  const data = new Float32Array(tensors.length * size);
  tensors.forEach((t, i) => data.set(t.data, i * size));
  return { data, shape: [tensors.length, c, h, w] };
}

/**
 * Runs `run` on the decoded items of one batch, grouped by image size (all
 * equal with the default crop; `crop: false` can mix sizes) and kind (8-bit
 * crops, or tensors the caller passed). `run` gets n images, as a
 * PixelBatch or a [n,3,H,W] tensor, and resolves with n per-row values.
 */
async function runBatch<R>(items: Prepared[], normalize: Normalize, run: (x: ModelInput) => Promise<R[]>): Promise<Map<number, R>> {
  const groups = new Map<string, Prepared[]>();
  for (const item of items) {
    if (!item.tensor && !item.crop) continue;
    const key = item.crop ? `crop ${item.crop.box.height}x${item.crop.box.width}` : item.tensor!.shape.join('x');
    const g = groups.get(key);
    if (g) g.push(item);
    else groups.set(key, [item]);
  }
  const values = new Map<number, R>();
  for (const group of groups.values()) {
    const rows = await run(
      group[0].crop
        ? packCrops(
            group.map((g) => g.crop!),
            normalize,
          )
        : stack(group.map((g) => g.tensor!)),
    );
    group.forEach((g, i) => values.set(g.index, rows[i]));
  }
  return values;
}

/**
 * Decodes `source` in batches of `o.batchSize`, runs each batch with `run`,
 * and yields one outcome per input in input order. With `o.failFast` the
 * first bad input is thrown (before its batch runs) instead of yielded.
 * `single`: the source is one input given alone (errors name `input`).
 */
export async function* runPipeline<R>(
  source: Iterable<ImageInput> | AsyncIterable<ImageInput>,
  o: ResolvedBatchOptions,
  run: (x: ModelInput) => Promise<R[]>,
  single = false,
): AsyncGenerator<Outcome<R>, void, undefined> {
  const it = iteratorOf(source);
  let read = 0;
  let exhausted = false;
  const fetchBatch = async (): Promise<{ items: Prepared[]; normalize: Normalize } | null> => {
    if (exhausted) return null;
    const chunk = await readChunk(it, o.batchSize, read);
    read += chunk.length;
    if (chunk.length < o.batchSize) exhausted = true;
    return chunk.length === 0 ? null : prepare(chunk, o, single);
  };
  let pending = fetchBatch();
  try {
    for (;;) {
      throwIfAborted(o.signal);
      const prepared = await abortable(pending, o.signal);
      if (!prepared) return;
      const { items, normalize } = prepared;
      // Read-ahead: the next batch decodes while this one runs in LibTorch.
      pending = fetchBatch();
      pending.catch(() => undefined); // awaited next round; if we stop first, its failure is moot
      if (o.failFast) {
        const bad = items.find((i) => i.error);
        if (bad) throw bad.error;
      }
      const values = await abortable(runBatch(items, normalize, run), o.signal);
      for (const item of items) {
        throwIfAborted(o.signal); // a consumer resuming after abort gets no more items
        if (item.error) yield { index: item.index, input: item.input, error: item.error };
        else yield { index: item.index, input: item.input, value: values.get(item.index) as R };
      }
    }
  } finally {
    // Stop reading a source we will not finish (closes e.g. a directory stream).
    if (!exhausted && typeof it.return === 'function') {
      pending
        .then(
          () => it.return!(),
          () => it.return!(),
        )
        .catch(() => undefined);
    }
  }
}
