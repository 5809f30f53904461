// One error shape for the whole package: every error thrown on purpose has a
// stable `code` to branch on (never the message text).
//
// - Invalid arguments are Node's own kinds, as Node core throws them: a
//   TypeError with code 'ERR_INVALID_ARG_TYPE' or a RangeError with code
//   'ERR_OUT_OF_RANGE' (src/validate.ts makes them).
// - Everything else derives from VggNativeError: checkpoint and ONNX files,
//   datasets, image inputs, aborted and disposed calls, models that cannot do
//   what was asked.

/** Codes of the argument errors (TypeError / RangeError), as Node core names them. */
export type ArgumentErrorCode = 'ERR_INVALID_ARG_TYPE' | 'ERR_OUT_OF_RANGE';

/**
 * Base class of the package's errors other than invalid arguments.
 *
 * @example
 * ```ts
 * try {
 *   await model.classify('cat.jpg');
 * } catch (e) {
 *   if (e instanceof VggNativeError && e.code === 'DISPOSED') model = await vgg('vgg16');
 *   else throw e;
 * }
 * ```
 */
export class VggNativeError extends Error {
  /** Stable, documented in the README's error table; subclasses narrow it. */
  readonly code: string;

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
  /** The training loss became NaN or infinite. */
  | 'DIVERGED'
  /** A training checkpoint is missing, unreadable, or from a different run. */
  | 'BAD_RESUME'
  /** The native library failed in a way the package did not foresee (its message says how). */
  | 'NATIVE';

/** What a model cannot do in its present state. */
export class ModelError extends VggNativeError {
  declare readonly code: ModelErrorCode;

  constructor(code: ModelErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ModelError';
  }
}

/**
 * A call cancelled through its AbortSignal. `name` 'AbortError' and code
 * 'ABORT_ERR' as the DOM and Node's own AbortError have them.
 */
export class AbortError extends VggNativeError {
  declare readonly code: 'ABORT_ERR';

  constructor(message = 'The operation was aborted') {
    super('ABORT_ERR', message);
    this.name = 'AbortError';
  }
}

/** The error's stable code when it is one of the package's (or Node's argument errors), else undefined. */
export function errorCode(e: unknown): string | undefined {
  if (e instanceof VggNativeError) return e.code;
  const code = e instanceof TypeError || e instanceof RangeError ? (e as unknown as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}
