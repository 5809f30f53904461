// Errors raised while turning one input into pixels. Kept apart from option
// validation errors (TypeError/RangeError, thrown before any work starts).
import { VggNativeError } from '../errors';

/** Codes of {@link ImageInputError}. */
export type ImageInputErrorCode =
  /** A file path that does not exist. */
  | 'NOT_FOUND'
  /** An empty buffer. */
  | 'EMPTY'
  /** Not an image, or a format this sharp build cannot read. */
  | 'UNSUPPORTED_FORMAT'
  /** More pixels than options.maxPixels. */
  | 'TOO_LARGE'
  /** The image data is truncated or corrupt. */
  | 'CORRUPT'
  /** The decoder failed otherwise (its message says how). */
  | 'DECODE_FAILED';

/** What {@link ImageInputError}'s constructor takes besides the reason. */
export interface ImageInputErrorDetails {
  /** Position of the input in a batch, when the input came from one. */
  index?: number;
  /** File path of the input, when it was given as a path. */
  path?: string;
  /** The underlying error (usually sharp's / libvips'). */
  cause?: unknown;
  /** Default 'DECODE_FAILED'. */
  code?: ImageInputErrorCode;
}

/**
 * An input that could not be decoded or is not a usable image; `code` is an
 * {@link ImageInputErrorCode}. The message reads `Image input #<index>
 * "<path>": <reason>`; `cause` holds sharp's / libvips' error.
 *
 * @example
 * ```ts
 * import { vgg, ImageInputError } from 'vgg-native';
 *
 * const model = await vgg('vgg16', { weights: 'imagenet' });
 * for (const item of await model.classify(['ok.jpg', 'truncated.jpg'])) {
 *   if (item.error instanceof ImageInputError) console.warn(item.error.code, item.error.path); // 'CORRUPT' 'truncated.jpg'
 * }
 * ```
 */
export class ImageInputError extends VggNativeError {
  declare readonly code: ImageInputErrorCode;
  /** Position of the input in the call's array, when it came from one. */
  readonly index?: number;
  /** File path of the input, when it was given as a path. */
  readonly path?: string;
  /** The message without the "Image input #i "path":" prefix. */
  readonly reason: string;

  /**
   * @param reason - what is wrong with the input, without the "Image input" prefix
   * @param details - index, path, cause and code (default 'DECODE_FAILED')
   */
  constructor(reason: string, details: ImageInputErrorDetails = {}) {
    const where = [details.index !== undefined ? `#${details.index}` : '', details.path !== undefined ? `"${details.path}"` : '']
      .filter(Boolean)
      .join(' ');
    super(details.code ?? 'DECODE_FAILED', where ? `Image input ${where}: ${reason}` : `Image input: ${reason}`, { cause: details.cause });
    this.name = 'ImageInputError';
    this.index = details.index;
    this.path = details.path;
    this.reason = reason;
  }

  /**
   * The same error with the batch index attached (errors are raised per item first).
   * @param index - position of the input in its batch
   * @returns a new ImageInputError; this one is unchanged
   */
  withIndex(index: number): ImageInputError {
    return new ImageInputError(this.reason, { index, path: this.path, cause: this.cause, code: this.code });
  }
}
