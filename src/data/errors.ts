// Problems with the data itself (missing folders, unusable labels, unreadable
// images), as opposed to invalid options (TypeError/RangeError from validate.ts).
import { VggNativeError } from '../errors';

/** One item that could not be used, and why. */
export interface DatasetProblem {
  path: string;
  reason: string;
}

export interface DatasetErrorDetails {
  /** The file or folder the error is about, when there is one. */
  path?: string;
  /** Every bad item found (the message lists the first few). */
  problems?: DatasetProblem[];
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

/** A dataset that cannot be trained on as it stands; the message says what and where. */
export class DatasetError extends VggNativeError {
  declare readonly code: DatasetErrorCode;
  readonly path?: string;
  readonly problems: DatasetProblem[];

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
