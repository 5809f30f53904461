// Turning the labels a user wrote (class indices or names) into class indices.
import { DatasetError, type DatasetProblem } from './errors';

export interface RawEntry {
  path: string;
  label: number | string;
  /** "item #3" or "line 4 of x.csv", for messages. */
  where: string;
}

/** "Label 12 of item #5 ("/a/b.png") is out of range: expected an integer in [0, 10) (10 classes)". */
export function labelRangeReason(label: unknown, where: string, path: string, numClasses: number): string {
  return `label ${typeof label === 'string' ? JSON.stringify(label) : String(label)} of ${where} ("${path}") is out of range: expected an integer in [0, ${numClasses}) (${numClasses} classes)`;
}

const INDEX = /^(0|[1-9][0-9]*)$/;

/**
 * Resolves labels to indices. With `fixed` classes, names are looked up
 * (and an index-looking string that is no class name is taken as an index);
 * without, all-numeric labels give classes '0'..'max' and names give their
 * sorted unique list. Unusable entries throw, or are returned as problems
 * when `skipInvalid`.
 */
export function resolveLabels(
  entries: readonly RawEntry[],
  fixed: readonly string[] | undefined,
  skipInvalid: boolean,
  numericStrings: boolean,
  source: string,
): { items: Array<{ path: string; label: number }>; classes: string[]; skipped: DatasetProblem[] } {
  let classes: string[];
  if (fixed) classes = [...fixed];
  else {
    const isIndex = (l: number | string) => typeof l === 'number' || (numericStrings && INDEX.test(l));
    const allIndices = entries.every((e) => isIndex(e.label));
    const allNames = entries.every((e) => typeof e.label === 'string');
    if (allIndices) {
      // Invalid numbers (negative, fractional) are reported below, so ignore them when sizing the list.
      const max = entries.reduce((m, e) => {
        const n = Number(e.label);
        return Number.isInteger(n) && n >= 0 ? Math.max(m, n) : m;
      }, -1);
      classes = Array.from({ length: max + 1 }, (_, i) => String(i));
    } else if (allNames) {
      classes = [...new Set(entries.map((e) => e.label as string))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    } else {
      throw new DatasetError(
        'BAD_LABELS',
        `${source} mixes numeric class indices and class names; pass options.classes to say which index each name has`,
      );
    }
  }
  const byName = new Map(classes.map((c, i) => [c, i]));
  const items: Array<{ path: string; label: number }> = [];
  const skipped: DatasetProblem[] = [];
  for (const e of entries) {
    let label: number | undefined;
    let reason = '';
    if (typeof e.label === 'string' && byName.has(e.label)) label = byName.get(e.label);
    else if (typeof e.label === 'number' || (numericStrings && INDEX.test(e.label))) {
      const n = Number(e.label);
      if (Number.isInteger(n) && n >= 0 && n < classes.length) label = n;
      else reason = labelRangeReason(e.label, e.where, e.path, classes.length);
    } else {
      reason = `label '${e.label}' of ${e.where} ("${e.path}") is not a known class; expected one of ${classes
        .slice(0, 20)
        .map((c) => `'${c}'`)
        .join(', ')}${classes.length > 20 ? ', …' : ''}`;
    }
    if (label !== undefined) items.push({ path: e.path, label });
    else if (skipInvalid) skipped.push({ path: e.path, reason });
    else throw new DatasetError('BAD_LABELS', `${source}: ${reason}`, { path: e.path });
  }
  return { items, classes, skipped };
}
