// Building a Dataset from an ImageFolder tree, a list of {path, label}, or a
// CSV index; splitting and validation live in split.ts and check.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkBoolean, checkClassNames, checkKnownKeys, checkObject, invalidType, isPlainObject, keysOf, orDefault } from '../validate';
import { parseCsv } from './csv';
import { DatasetError, type DatasetProblem } from './errors';
import { scanImageFolder } from './folder';
import { resolveLabels, type RawEntry } from './labels';
import type { Dataset } from './types';

export type { Dataset, DatasetItem } from './types';
export { DatasetError, type DatasetProblem } from './errors';
export { IMAGE_EXTENSIONS } from './folder';
export { splitDataset, type SplitOptions } from './split';
export { validateDataset, type ValidateOptions, type ValidationResult } from './check';

/** A user-written entry: label is a class index or a class name. */
export interface LabelledPath {
  /** Image file; a relative path resolves against the working directory. */
  path: string;
  /** Class index (an integer from 0) or class name. */
  label: number | string;
}

/**
 * Where labelled images come from:
 * - a folder path: ImageFolder layout root/<class>/<image>, classes = sorted folder names
 *   (as torchvision's ImageFolder; names starting with '.' are ignored);
 * - an array of {path, label}: relative paths resolve against the working directory;
 * - {csv, root?}: a CSV file with a header naming `path` and `label` columns
 *   (others ignored); relative paths resolve against `root`, else the CSV's folder.
 *
 * For lists and CSVs, numeric labels give classes '0'..'max', names give their
 * sorted unique list, unless `classes` fixes the list.
 */
export type DatasetSource =
  | string
  | readonly LabelledPath[]
  | {
      /** Path of the CSV index (a header row naming `path` and `label`). */
      csv: string;
      /** Folder relative image paths resolve against. Default: the CSV's folder. */
      root?: string;
    };

/** Options of {@link loadDataset}: both optional, checked before anything is read (an unknown key is a RangeError). */
export interface LoadDatasetOptions {
  /** Fix the class list and its order (e.g. a validation set that must match training's): distinct non-empty names. Default: derived from the source. */
  classes?: readonly string[];
  /** Drop list or CSV entries whose label is no known class (listed in `dataset.skipped`) instead of throwing. Default: false. */
  skipInvalid?: boolean;
}

/** What loadDataset returns: a Dataset plus what `skipInvalid` dropped. */
export interface LoadedDataset extends Dataset {
  /** The absolute folder or CSV path, or "the list of N items". */
  source: string;
  /** Entries `skipInvalid` dropped, each with its reason ([] otherwise). */
  skipped: DatasetProblem[];
}

const LOAD_KEYS = keysOf<LoadDatasetOptions>()(['classes', 'skipInvalid']);

function fromList(list: readonly unknown[], classes: string[] | undefined, skipInvalid: boolean): LoadedDataset {
  const source = `the list of ${list.length} items`;
  const entries: RawEntry[] = list.map((e, i) => {
    if (!isPlainObject(e)) throw invalidType(`source[${i}]`, 'an object { path, label }', e);
    if (typeof e.path !== 'string' || e.path.length === 0) throw invalidType(`source[${i}].path`, 'a non-empty string', e.path);
    if (!(typeof e.label === 'number' || (typeof e.label === 'string' && e.label.length > 0))) {
      throw invalidType(`source[${i}].label`, 'a class index (number) or class name (string)', e.label);
    }
    return { path: path.resolve(e.path), label: e.label, where: `item #${i}` };
  });
  return { ...resolveLabels(entries, classes, skipInvalid, false, source), source };
}

async function fromCsv(csvPath: string, root: string | undefined, classes: string[] | undefined, skipInvalid: boolean): Promise<LoadedDataset> {
  const file = path.resolve(csvPath);
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    throw new DatasetError('NOT_FOUND', `Dataset CSV not found or unreadable: "${file}"`, { path: file, cause: err });
  }
  const name = path.basename(file);
  const rows = parseCsv(text, `"${file}"`);
  if (rows.length === 0)
    throw new DatasetError('BAD_CSV', `Dataset CSV "${file}" is empty; expected a header "path,label" and one row per image`, { path: file });
  const header = rows[0].fields.map((h) => h.trim().toLowerCase());
  const pi = header.indexOf('path');
  const li = header.indexOf('label');
  if (pi < 0 || li < 0) {
    throw new DatasetError(
      'BAD_CSV',
      `Dataset CSV "${file}" needs a header with 'path' and 'label' columns but its first line is "${rows[0].fields.join(',')}"`,
      { path: file },
    );
  }
  const base = root !== undefined ? path.resolve(root) : path.dirname(file);
  const entries: RawEntry[] = rows.slice(1).map((r) => {
    const where = `line ${r.line} of ${name}`;
    const p = r.fields[pi];
    const l = r.fields[li];
    if (p === undefined || l === undefined) {
      throw new DatasetError('BAD_CSV', `Dataset CSV "${file}", line ${r.line}: expected ${header.length} fields but found ${r.fields.length}`, {
        path: file,
      });
    }
    if (p.trim() === '' || l.trim() === '')
      throw new DatasetError('BAD_CSV', `Dataset CSV "${file}", line ${r.line}: empty ${p.trim() === '' ? 'path' : 'label'}`, { path: file });
    return { path: path.resolve(base, p), label: l.trim(), where };
  });
  if (entries.length === 0) throw new DatasetError('EMPTY', `Dataset CSV "${file}" has a header but no rows`, { path: file });
  return { ...resolveLabels(entries, classes, skipInvalid, true, `"${file}"`), source: file };
}

/**
 * Builds a Dataset (absolute paths, integer labels, class names). Throws
 * DatasetError for a missing folder/CSV, no images, unknown or out-of-range
 * labels; it does not open the images (validateDataset does).
 * A folder is scanned like torchvision's ImageFolder: classes are the sorted
 * subfolder names, images every .jpg/.jpeg/.jpe/.jfif/.png/.webp/.gif/.tif/.tiff/.avif
 * file below each, in sorted order.
 *
 * @param source - a folder, a `{ path, label }` list, or `{ csv, root? }`
 * @param options - classes, skipInvalid
 * @returns the dataset, its source and what was skipped
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad source or option (an unknown key
 *   included), before anything is read; the promise rejects
 * @throws {@link DatasetError} 'NOT_FOUND' (folder or CSV missing), 'NOT_A_FOLDER', 'BAD_CSV', 'EMPTY' (no class
 *   folders, no images, an empty class folder, an empty list or CSV), 'BAD_LABELS' (unknown or out-of-range labels,
 *   mixed indices and names, folders outside `classes`)
 * @example
 * ```ts
 * import { loadDataset, splitDataset } from 'vgg-native';
 *
 * const ds = await loadDataset('data/train'); // data/train/<class>/<image>
 * console.log(ds.classes, ds.items.length);
 * const { train, val } = splitDataset(ds, { valFraction: 0.2, seed: 1 });
 * ```
 */
export async function loadDataset(source: DatasetSource, options?: LoadDatasetOptions): Promise<LoadedDataset> {
  const o = checkKnownKeys('options', checkObject('options', options), LOAD_KEYS);
  const classes = orDefault(o.classes, undefined, (v) => checkClassNames('options.classes', v));
  const skipInvalid = orDefault(o.skipInvalid, false, (v) => checkBoolean('options.skipInvalid', v));
  if (typeof source === 'string') {
    if (source.length === 0) throw invalidType('source', 'a folder path, an array of { path, label } or { csv, root? }', source);
    const root = path.resolve(source);
    return { ...(await scanImageFolder(root, classes)), source: root, skipped: [] };
  }
  if (Array.isArray(source)) {
    if (source.length === 0) throw new DatasetError('EMPTY', 'The dataset list is empty: expected at least one { path, label }');
    return fromList(source, classes, skipInvalid);
  }
  if (isPlainObject(source) && 'csv' in source) {
    if (typeof source.csv !== 'string' || source.csv.length === 0) throw invalidType('source.csv', 'a CSV file path', source.csv);
    if (source.root !== undefined && (typeof source.root !== 'string' || source.root.length === 0))
      throw invalidType('source.root', 'a folder path', source.root);
    return fromCsv(source.csv, source.root as string | undefined, classes, skipInvalid);
  }
  throw invalidType('source', 'a folder path, an array of { path, label } or { csv, root? }', source);
}
