// One error shape for the whole package: every error thrown on purpose has a
// stable `code` to branch on (never the message text).
//
// - Invalid arguments are Node's own kinds, as Node core throws them: a
//   TypeError with code 'ERR_INVALID_ARG_TYPE' or a RangeError with code
//   'ERR_OUT_OF_RANGE' (src/validate.ts makes them).
// - Everything else derives from VggNativeError: checkpoint and ONNX files,
//   datasets, image inputs, aborted and disposed calls, models that cannot do
//   what was asked.

/**
 * Codes of the argument errors, as Node core names them: a `TypeError` with
 * code `'ERR_INVALID_ARG_TYPE'` for a value of the wrong type, a `RangeError`
 * with code `'ERR_OUT_OF_RANGE'` for a value of the right type outside what is
 * allowed (an unknown option key included). Both are thrown (or the promise
 * rejects) before any native work starts; the message has the form
 * "Expected <what> for <parameter> but received <value> of type <type>".
 */
export type ArgumentErrorCode = 'ERR_INVALID_ARG_TYPE' | 'ERR_OUT_OF_RANGE';

/**
 * Base class of the package's errors other than invalid arguments: every
 * error the package raises on purpose is a `VggNativeError` (or a subclass:
 * {@link ModelError}, {@link AbortError}, {@link ImageInputError},
 * {@link DatasetError}, {@link CheckpointError}, {@link OnnxFormatError},
 * {@link DownloadError}) or a `TypeError`/`RangeError` with an
 * {@link ArgumentErrorCode}. Branch on `code`, never on the message.
 *
 * @example
 * ```ts
 * import { vgg, VggNativeError } from 'vgg-native';
 *
 * let model = await vgg('vgg16');
 * model.dispose();
 * try {
 *   await model.classify('cat.jpg');
 * } catch (e) {
 *   if (e instanceof VggNativeError && e.code === 'DISPOSED') model = await vgg('vgg16');
 *   else throw e;
 * }
 * ```
 */
export class VggNativeError extends Error {
  /** Stable machine-readable reason, listed in the README's error table; each subclass narrows it to its own union of codes. */
  readonly code: string;

  /**
   * @param code - the stable code
   * @param message - what happened and what to do, for people
   * @param options - `cause`: the underlying error, kept as `error.cause`
   */
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'VggNativeError';
    this.code = code;
  }
}

/** Codes of {@link ModelError}. */
export type ModelErrorCode =
  /** The model was disposed before or while the call waited. */
  | 'DISPOSED'
  /** The call needs the classifier (logits, fc6, fc7, a new head) and the model was built with numClasses 0. */
  | 'NO_CLASSIFIER'
  /** The architecture asked for differs from the one the weights hold. */
  | 'ARCH_MISMATCH'
  /** A model joins one process group for its lifetime. */
  | 'ALREADY_DISTRIBUTED'
  /** Data-parallel: a rank did not join the process group within `distributed.timeoutMs`; the message names it. */
  | 'RENDEZVOUS_TIMEOUT'
  /** Data-parallel: the ranks were started with different world sizes, or with models of different shapes; refused at the rendezvous. */
  | 'RENDEZVOUS_MISMATCH'
  /** Data-parallel: a rank died, was stopped or was cut off while training; every other rank fails within `distributed.timeoutMs` naming it. */
  | 'RANK_LOST'
  /** `vgg-native launch`: a rank exited with an error and no restart was left; the others were stopped. The message is the first failure's. */
  | 'RANK_FAILED'
  /** The training loss became NaN or infinite. */
  | 'DIVERGED'
  /** A training checkpoint is missing, unreadable, or from a different run. */
  | 'BAD_RESUME'
  /** The native library failed in a way the package did not foresee, or no addon loads (its message says how). */
  | 'NATIVE'
  /** `vgg-native build` (the source build of the addon) failed; the compiler's output precedes the error. */
  | 'BUILD_FAILED'
  /** Precision 'int8' was asked of a model that was not calibrated: call {@link Vgg.quantize} (or load a checkpoint saved after it) first. */
  | 'NOT_CALIBRATED'
  /** int8 inference cannot run here: not the CPU, the oneDNN engine missing or off, or a CPU without VNNI (avx512_vnni, avx_vnni) or AMX. */
  | 'INT8_UNSUPPORTED'
  /** `fineTune({ precision: 'bf16' })` on a CPU without AVX512_BF16 or AMX-BF16, where bf16 would be emulated and slower than fp32. */
  | 'BF16_UNSUPPORTED';

/**
 * What a model cannot do in its present state: disposed, no classifier, an
 * architecture that contradicts the weights, a diverged or unresumable
 * training run, or a failure inside LibTorch. `code` is a {@link ModelErrorCode}.
 *
 * @example
 * ```ts
 * import { vgg, ModelError } from 'vgg-native';
 *
 * const model = await vgg('vgg11', { numClasses: 0 });
 * try {
 *   await model.classify('cat.jpg');
 * } catch (e) {
 *   if (e instanceof ModelError && e.code === 'NO_CLASSIFIER') console.log('a backbone: use extractFeatures()');
 *   else throw e;
 * }
 * ```
 */
export class ModelError extends VggNativeError {
  declare readonly code: ModelErrorCode;

  /**
   * @param code - one of {@link ModelErrorCode}
   * @param message - what happened and what to do
   * @param options - `cause`: the underlying error (LibTorch's, for 'NATIVE')
   */
  constructor(code: ModelErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ModelError';
  }
}

/**
 * A call cancelled through its AbortSignal. `name` 'AbortError' and code
 * 'ABORT_ERR' as the DOM and Node's own AbortError have them. When the
 * signal's `reason` is itself an AbortError that error is used; a string
 * reason becomes the message.
 *
 * @example
 * ```ts
 * import { vgg, AbortError } from 'vgg-native';
 *
 * const model = await vgg('vgg16');
 * const controller = new AbortController();
 * setTimeout(() => controller.abort(), 1000);
 * try {
 *   await model.classify(['a.jpg', 'b.jpg'], { signal: controller.signal });
 * } catch (e) {
 *   if (!(e instanceof AbortError)) throw e; // e.code === 'ABORT_ERR'
 * }
 * ```
 */
export class AbortError extends VggNativeError {
  declare readonly code: 'ABORT_ERR';

  /** @param message - Default: 'The operation was aborted'. */
  constructor(message = 'The operation was aborted') {
    super('ABORT_ERR', message);
    this.name = 'AbortError';
  }
}

/**
 * The stable code of an error: `e.code` for a {@link VggNativeError}, the
 * string `code` of a `TypeError`/`RangeError` (the package's argument errors:
 * 'ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE'), else undefined. Never throws.
 *
 * @param e - anything caught
 * @returns the code, or undefined for other errors and non-errors
 * @example
 * ```ts
 * import { vgg, errorCode } from 'vgg-native';
 *
 * try {
 *   await vgg('vgg15' as never);
 * } catch (e) {
 *   console.log(errorCode(e)); // 'ERR_OUT_OF_RANGE'
 * }
 * ```
 */
export function errorCode(e: unknown): string | undefined {
  if (e instanceof VggNativeError) return e.code;
  const code = e instanceof TypeError || e instanceof RangeError ? (e as unknown as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}
