// What a forward pass takes and gives, shared by the facade (model.ts),
// inference/ and train/: precision, memory layout, the named layers.
import { checkAbortSignal, checkBoolean, checkKnownKeys, checkObject, checkOneOf, keysOf, orDefault } from '../validate';

/**
 * Arithmetic of a forward pass: 'fp32', or autocast to 'fp16' (CUDA only; on
 * the CPU the call rejects with ModelError 'NATIVE') / 'bf16' (CUDA and CPU:
 * oneDNN's native bf16 kernels where the CPU has avx512_bf16 or AMX, else
 * LibTorch's emulating autocast), or 'int8' (CPU inference only, after
 * {@link Vgg.quantize}: the convolutional trunk in u8/s8 on oneDNN's VNNI
 * kernels, the classifier in float32). Weights stay float32; outputs are float32.
 */
export type Precision = 'fp32' | 'fp16' | 'bf16' | 'int8';

/** The precisions, in the order the docs list them. */
export const PRECISIONS = ['fp32', 'fp16', 'bf16', 'int8'] as const satisfies readonly Precision[];

/** The precisions training runs in (int8 is for inference only). */
export type TrainPrecision = Exclude<Precision, 'int8'>;

/** {@link TrainPrecision}s, in the order the docs list them. */
export const TRAIN_PRECISIONS = ['fp32', 'fp16', 'bf16'] as const satisfies readonly TrainPrecision[];

// The named layers come from the architecture table.
export { FEATURE_LAYERS, HEAD_LAYERS, type FeatureLayer } from '../arch';

/**
 * How images were sized for training ({@link Vgg.inputPipeline}): a square
 * side and 'squash' or ImageNet-style 'short' resizing. Saved in a checkpoint's
 * meta as `input_size` / `input_resize`.
 */
export interface InputPipeline {
  /** Side of the square input, pixels. */
  size: number;
  /** 'squash': resized to size x size; 'short': short side to size * 256 / 224, centre crop of size. */
  resize: 'squash' | 'short';
}

/** Options of `forward()` and `forwardStages()`. */
export interface ForwardOptions {
  /**
   * 'fp32', 'fp16' (CUDA only), 'bf16' or 'int8' (CPU, after {@link Vgg.quantize}). 'bf16' runs native bf16 kernels
   * where the CPU has avx512_bf16 or AMX. Default: 'int8' once the model is quantised, else 'fp32'.
   */
  precision?: Precision;
  /** NHWC memory layout for the convolutions (faster on recent GPUs); the input and output stay NCHW. Default: false. */
  channelsLast?: boolean;
  /** Aborting rejects the call with AbortError (code 'ABORT_ERR') if its native work has not started. Default: none. */
  signal?: AbortSignal;
}

/** {@link ForwardOptions} with every default applied. */
export interface ResolvedForwardOptions {
  /** Absent: the model's default ('int8' once quantised, else 'fp32'). */
  precision?: Precision;
  channelsLast: boolean;
  signal?: AbortSignal;
}

const FORWARD_KEYS = keysOf<ForwardOptions>()(['precision', 'channelsLast', 'signal']);

/** Validates forward options once and applies their defaults. */
export function resolveForwardOptions(options: unknown): ResolvedForwardOptions {
  const o = checkKnownKeys('options', checkObject('options', options), FORWARD_KEYS);
  return {
    precision: orDefault(o.precision, undefined, (v) => checkOneOf('options.precision', v, PRECISIONS)),
    channelsLast: orDefault(o.channelsLast, false, (v) => checkBoolean('options.channelsLast', v)),
    signal: checkAbortSignal('options.signal', o.signal),
  };
}
