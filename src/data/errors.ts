// Problems with the data itself (missing folders, unusable labels, unreadable
// images), as opposed to invalid options (TypeError/RangeError from validate.ts).

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

/** A dataset that cannot be trained on as it stands; the message says what and where. */
export class DatasetError extends Error {
  readonly path?: string;
  readonly problems: DatasetProblem[];

  constructor(message: string, details: DatasetErrorDetails = {}) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = 'DatasetError';
    this.path = details.path;
    this.problems = details.problems ?? [];
  }
}

/** "a.png: reason; b.png: reason; … and 7 more" — enough to act on without flooding a log. */
export function listProblems(problems: readonly DatasetProblem[], max = 5): string {
  const shown = problems.slice(0, max).map((p) => `"${p.path}": ${p.reason}`).join('; ');
  return problems.length > max ? `${shown}; … and ${problems.length - max} more` : shown;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
