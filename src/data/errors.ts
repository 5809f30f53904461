// Problems with the data itself (missing folders, unusable labels, unreadable
// images), as opposed to invalid options (TypeError/RangeError from validate.ts).
import { VggNativeError } from '../errors';

/** One item that could not be used, and why. */
export interface DatasetProblem {
  /** The image (absolute path) or entry concerned. */
  path: string;
  /** Why it could not be used, e.g. 'file not found' or a decoder message. */
  reason: string;
}

/** What {@link DatasetError}'s constructor takes besides code and message. */
export interface DatasetErrorDetails {
  /** The file or folder the error is about, when there is one. */
  path?: string;
  /** Every bad item found (the message lists the first few). */
  problems?: DatasetProblem[];
  /** The underlying error (e.g. the file system's), kept as `error.cause`. */
  cause?: unknown;
}

/** Codes of {@link DatasetError}. */
export type DatasetErrorCode =
  /** The folder or CSV file does not exist or cannot be read. */
  | 'NOT_FOUND'
  /** A file was given where a dataset folder was expected. */
  | 'NOT_A_FOLDER'
  /** The CSV is malformed: no header with path and label, wrong field counts, empty cells, an open quote. */
  | 'BAD_CSV'
  /** Nothing to train on: no class folders, no images, an empty list, or an epoch that would be empty. */
  | 'EMPTY'
  /** Fewer than 2 classes. */
  | 'TOO_FEW_CLASSES'
  /** Labels out of range, mixed indices and names, or classes that disagree with options.classes or the training set. */
  | 'BAD_LABELS'
  /** Images that cannot be decoded (without skipInvalid), or none that can. */
  | 'UNREADABLE_IMAGES';

/**
 * A dataset that cannot be trained on as it stands; the message says what and
 * where, `code` is a {@link DatasetErrorCode}.
 *
 * @example
 * ```ts
 * import { loadDataset, validateDataset, DatasetError } from 'vgg-native';
 *
 * try {
 *   await validateDataset(await loadDataset('data/train'));
 * } catch (e) {
 *   if (e instanceof DatasetError && e.code === 'UNREADABLE_IMAGES') for (const p of e.problems) console.warn(p.path, p.reason);
 *   else throw e;
 * }
 * ```
 */
export class DatasetError extends VggNativeError {
  declare readonly code: DatasetErrorCode;
  /** The file or folder the error is about, when there is one. */
  readonly path?: string;
  /** Every bad item found (the message lists the first few); [] when the problem is not per item. */
  readonly problems: DatasetProblem[];

  /**
   * @param code - one of {@link DatasetErrorCode}
   * @param message - what is wrong and where
   * @param details - path, problems, cause
   */
  constructor(code: DatasetErrorCode, message: string, details: DatasetErrorDetails = {}) {
    super(code, message, { cause: details.cause });
    this.name = 'DatasetError';
    this.path = details.path;
    this.problems = details.problems ?? [];
  }
}

/** "a.png: reason; b.png: reason; … and 7 more" — enough to act on without flooding a log. */
export function listProblems(problems: readonly DatasetProblem[], max = 5): string {
  const shown = problems
    .slice(0, max)
    .map((p) => `"${p.path}": ${p.reason}`)
    .join('; ');
  return problems.length > max ? `${shown}; … and ${problems.length - max} more` : shown;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
