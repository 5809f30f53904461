// Errors raised while turning one input into pixels. Kept apart from option
// validation errors (TypeError/RangeError, thrown before any work starts).

export interface ImageInputErrorDetails {
  /** Position of the input in a batch, when the input came from one. */
  index?: number;
  /** File path of the input, when it was given as a path. */
  path?: string;
  /** The underlying error (usually sharp's / libvips'). */
  cause?: unknown;
}

/** An input that could not be decoded or is not a usable image. */
export class ImageInputError extends Error {
  readonly index?: number;
  readonly path?: string;
  /** The message without the "Image input #i "path":" prefix. */
  readonly reason: string;

  constructor(reason: string, details: ImageInputErrorDetails = {}) {
    const where = [
      details.index !== undefined ? `#${details.index}` : '',
      details.path !== undefined ? `"${details.path}"` : '',
    ].filter(Boolean).join(' ');
    super(where ? `Image input ${where}: ${reason}` : `Image input: ${reason}`, { cause: details.cause });
    this.name = 'ImageInputError';
    this.index = details.index;
    this.path = details.path;
    this.reason = reason;
  }

  /** The same error with the batch index attached (errors are raised per item first). */
  withIndex(index: number): ImageInputError {
    return new ImageInputError(this.reason, { index, path: this.path, cause: this.cause });
  }
}
