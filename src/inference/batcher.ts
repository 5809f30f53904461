// Dynamic batching across calls: concurrent forward(), classify() and
// extractFeatures() calls on one model whose forwards are compatible (same
// outputs, precision, layout, image size and normalisation) run as one native
// forward, and each caller gets its own rows back. A group takes its place in
// the model's serial queue when its first call arrives, so calls still run in
// the order made relative to everything else the model does; calls that come
// while the model is busy join the waiting group, which is where batches form
// under load. Written here rather than taken from a package: the grouping key,
// the serial queue and the per-caller AbortSignal are this model's own.
import type { NativeOutput } from '../binding';
import { abortErrorOf, throwIfAborted } from '../abort';
import { VggNativeError } from '../errors';
import { isPixelBatch, type ModelInput, type PixelBatch, type Tensor } from '../tensor';
import { checkInteger, checkKnownKeys, checkObject, invalidType, keysOf, orDefault } from '../validate';

/** What {@link BatchingOptions.onBatch} is told about each coalesced forward, as it starts. */
export interface BatchInfo {
  /** Images in the forward (rows along N). */
  images: number;
  /** Calls whose rows it holds. */
  calls: number;
  /** Milliseconds the group's first call waited before the forward started. */
  waitedMs: number;
  /** Calls still waiting for a later forward (the queue depth). */
  queued: number;
}

/**
 * Dynamic batching of concurrent calls on one model ({@link VggOptions.batching}).
 * Calls whose forwards are compatible (same layer or logits, precision,
 * channelsLast, image size and mean/std) are concatenated along N into one
 * native forward, up to `maxBatch` images; each caller gets exactly its own
 * rows, its own errors and its own AbortSignal. A call of more than `maxBatch`
 * images runs alone, unsplit. `false` turns coalescing off (every call its own
 * forward) but keeps the `maxQueue` bound.
 */
export interface BatchingOptions {
  /** Most images in one coalesced forward, an integer in 1..4096. Default: 8 (measured best on a 2-core CPU, see README "Serving"). */
  maxBatch?: number;
  /**
   * Milliseconds a group waits for more calls when the model is idle, an integer in 0..10000;
   * when the model is busy, calls gather while they wait their turn anyway, so 0 adds no
   * latency to a lone call and still batches under load. Default: 0 (`vgg-native serve`: 2).
   */
  maxWaitMs?: number;
  /**
   * Most calls waiting for their forward (not yet started), an integer in 1..1000000; one more
   * rejects at once with {@link QueueFullError} 'QUEUE_FULL'. Default: 1000000.
   */
  maxQueue?: number;
  /** Called as each forward starts, with its {@link BatchInfo} (for metrics). Default: none. */
  onBatch?: (info: BatchInfo) => void;
}

/** {@link BatchingOptions} with every default applied. */
export interface ResolvedBatching {
  maxBatch: number;
  maxWaitMs: number;
  maxQueue: number;
  onBatch?: (info: BatchInfo) => void;
}

/** The defaults, measured with 32 concurrent callers (README "Serving"). */
export const DEFAULT_BATCHING: ResolvedBatching = { maxBatch: 8, maxWaitMs: 0, maxQueue: 1_000_000 };

const BATCHING_KEYS = keysOf<BatchingOptions>()(['maxBatch', 'maxWaitMs', 'maxQueue', 'onBatch']);

/** Validates `batching` once: an object, or false for one forward per call. */
export function resolveBatchingOptions(param: string, v: unknown): ResolvedBatching {
  if (v === undefined) return DEFAULT_BATCHING;
  if (v === false) return { ...DEFAULT_BATCHING, maxBatch: 1, maxWaitMs: 0 };
  const o = checkKnownKeys(param, checkObject(param, v), BATCHING_KEYS);
  if (o.onBatch !== undefined && typeof o.onBatch !== 'function') throw invalidType(`${param}.onBatch`, 'a function', o.onBatch);
  return {
    maxBatch: orDefault(o.maxBatch, DEFAULT_BATCHING.maxBatch, (x) => checkInteger(`${param}.maxBatch`, x, 1, 4096)),
    maxWaitMs: orDefault(o.maxWaitMs, DEFAULT_BATCHING.maxWaitMs, (x) => checkInteger(`${param}.maxWaitMs`, x, 0, 10_000)),
    maxQueue: orDefault(o.maxQueue, DEFAULT_BATCHING.maxQueue, (x) => checkInteger(`${param}.maxQueue`, x, 1, 1_000_000)),
    ...(o.onBatch ? { onBatch: o.onBatch as ResolvedBatching['onBatch'] } : {}),
  };
}

/**
 * A call refused because {@link BatchingOptions.maxQueue} calls already wait
 * on the model: nothing of it ran. Retry later (`vgg-native serve` answers 503
 * with Retry-After). `code` is 'QUEUE_FULL'.
 *
 * @example
 * ```ts
 * import { vgg, QueueFullError } from 'vgg-native';
 *
 * const model = await vgg('vgg11', { batching: { maxQueue: 16 } });
 * try {
 *   await model.classify('cat.jpg');
 * } catch (e) {
 *   if (e instanceof QueueFullError) console.log('busy, try again');
 *   else throw e;
 * }
 * ```
 */
export class QueueFullError extends VggNativeError {
  declare readonly code: 'QUEUE_FULL';

  /** @param maxQueue - the bound that was reached */
  constructor(maxQueue: number) {
    super('QUEUE_FULL', `${maxQueue} calls already wait for this model (batching.maxQueue): retry later, or raise maxQueue`);
    this.name = 'QueueFullError';
  }
}

/** What runs a group: the native forward of the concatenated input. */
export type RunForward = (x: ModelInput) => Promise<NativeOutput[]>;

/** Puts a task in the model's serial queue; resolves or rejects with it. */
export type Schedule = (task: () => Promise<void>) => Promise<void>;

interface Request {
  input: ModelInput;
  rows: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  resolve: (out: NativeOutput[]) => void;
  reject: (e: unknown) => void;
}

interface Group {
  key: string;
  run: RunForward;
  requests: Request[];
  rows: number;
  createdAt: number;
  /** No call joins any more: full, sealed, or started. */
  closed: boolean;
  /** Its forward began: the calls left the queue. */
  started: boolean;
  /** Ends the idle wait early (the group filled or was sealed). */
  wake: (() => void) | undefined;
}

/** One per model: groups calls by their forward's key and runs each group as one forward in the serial queue. */
export class Batcher {
  readonly #open = new Map<string, Group>();
  #waiting = 0;

  constructor(
    public options: ResolvedBatching,
    private readonly schedule: Schedule,
  ) {}

  /** Calls waiting for their forward to start. */
  get queued(): number {
    return this.#waiting;
  }

  /**
   * Runs `input` (N rows) in a forward shared with compatible calls (equal `key`), resolving with
   * its own N rows of each output. @throws QueueFullError when maxQueue calls wait; AbortError
   */
  submit(key: string, input: ModelInput, run: RunForward, signal: AbortSignal | undefined): Promise<NativeOutput[]> {
    throwIfAborted(signal);
    if (this.#waiting >= this.options.maxQueue) return Promise.reject(new QueueFullError(this.options.maxQueue));
    const rows = input.shape[0];
    let group = this.#open.get(key);
    if (group && group.rows + rows > this.options.maxBatch) {
      this.#close(group);
      group = undefined;
    }
    if (!group) group = this.#openGroup(key, run);
    const g = group;
    return new Promise<NativeOutput[]>((resolve, reject) => {
      const request: Request = { input, rows, signal, onAbort: undefined, resolve, reject };
      if (signal) {
        request.onAbort = () => this.#drop(g, request);
        signal.addEventListener('abort', request.onAbort, { once: true });
      }
      g.requests.push(request);
      g.rows += rows;
      this.#waiting++;
      if (g.rows >= this.options.maxBatch) this.#close(g);
    });
  }

  /** Lets no call join the open groups: what is queued after this (a weight change, a save) must not overtake them. */
  seal(): void {
    for (const g of [...this.#open.values()]) this.#close(g);
  }

  #openGroup(key: string, run: RunForward): Group {
    const g: Group = { key, run, requests: [], rows: 0, createdAt: performance.now(), closed: false, started: false, wake: undefined };
    this.#open.set(key, g);
    this.schedule(() => this.#runGroup(g)).catch((e: unknown) => {
      // The queue refused the group (a disposed model) or its forward failed: every caller in it gets the error.
      if (!g.started) this.#start(g);
      for (const r of g.requests) r.reject(e);
    });
    return g;
  }

  #close(g: Group): void {
    g.closed = true;
    if (this.#open.get(g.key) === g) this.#open.delete(g.key);
    g.wake?.();
  }

  /** The group's calls stop waiting: no more joins, aborts or queue slots. */
  #start(g: Group): void {
    this.#close(g);
    g.started = true;
    this.#waiting -= g.requests.length;
    for (const r of g.requests) if (r.onAbort) r.signal!.removeEventListener('abort', r.onAbort);
  }

  /** A waiting call whose signal fired leaves its group at once; a started one runs to the end. */
  #drop(g: Group, r: Request): void {
    const i = g.requests.indexOf(r);
    if (i < 0) return;
    g.requests.splice(i, 1);
    g.rows -= r.rows;
    this.#waiting--;
    r.reject(abortErrorOf(r.signal!));
  }

  /** The group's turn in the serial queue: wait for company while the model idles, then one forward. */
  async #runGroup(g: Group): Promise<void> {
    const left = g.createdAt + this.options.maxWaitMs - performance.now();
    if (!g.closed && left > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        g.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.#start(g);
    const requests = g.requests;
    if (requests.length === 0) return;
    this.options.onBatch?.({ images: g.rows, calls: requests.length, waitedMs: performance.now() - g.createdAt, queued: this.#waiting });
    const outputs = await g.run(requests.length === 1 ? requests[0].input : concat(requests.map((r) => r.input)));
    let start = 0;
    for (const r of requests) {
      r.resolve(requests.length === 1 ? outputs : outputs.map((o) => rowsOf(o, start, r.rows)));
      start += r.rows;
    }
  }
}

/** Rows [start, start + n) of an output, copied: a caller never holds a view of another caller's rows. */
function rowsOf(o: NativeOutput, start: number, n: number): NativeOutput {
  const size = o.data.length / o.shape[0];
  return { name: o.name, data: o.data.slice(start * size, (start + n) * size), shape: [n, ...o.shape.slice(1)] };
}

/** Inputs of one key (same kind and per-image shape) concatenated along N. */
function concat(inputs: ModelInput[]): ModelInput {
  const n = inputs.reduce((sum, x) => sum + x.shape[0], 0);
  const first = inputs[0];
  if (isPixelBatch(first)) {
    const pixels = new Uint8Array(inputs.reduce((sum, x) => sum + (x as PixelBatch).pixels.length, 0));
    let at = 0;
    for (const x of inputs as PixelBatch[]) {
      pixels.set(x.pixels, at);
      at += x.pixels.length;
    }
    return { pixels, shape: [n, first.shape[1], first.shape[2], 3], mean: first.mean, std: first.std };
  }
  const data = new Float32Array(inputs.reduce((sum, x) => sum + (x as Tensor).data.length, 0));
  let at = 0;
  for (const x of inputs as Tensor[]) {
    data.set(x.data, at);
    at += x.data.length;
  }
  return { data, shape: [n, ...first.shape.slice(1)] };
}

/** The grouping key: calls with equal keys can share a forward. */
export function batchKey(input: ModelInput, outputs: string | readonly string[], precision: string, channelsLast: boolean): string {
  const image = isPixelBatch(input) ? ['pixels', input.shape.slice(1), input.mean, input.std] : ['float32', input.shape.slice(1)];
  return JSON.stringify([outputs, precision, channelsLast, image]);
}
