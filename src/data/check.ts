// Pre-training checks: fail in seconds with a precise message instead of
// minutes into an epoch (or with a CUDA-side assert on a bad label).
import { mapBounded } from '../concurrency';
import { openEncoded } from '../image/decode';
import { ImageInputError } from '../image/errors';
import { resolveDecodeOptions } from '../image/options';
import { checkBoolean, checkInteger, checkKnownKeys, checkObject, invalidType, keysOf, orDefault } from '../validate';
import { DatasetError, errorMessage, listProblems, type DatasetProblem } from './errors';
import { labelRangeReason } from './labels';
import type { Dataset } from './types';

/** Options of {@link validateDataset}: all optional, checked before any image is read (an unknown key is a RangeError). */
export interface ValidateOptions {
  /** Outputs of the model's head; labels must lie in [0, numClasses). A positive integer. Default: classes.length. */
  numClasses?: number;
  /** Drop unreadable images (reported in `skipped`) instead of throwing. Default: false. */
  skipInvalid?: boolean;
  /** Decode every image with sharp before training (as the loader will, to catch truncated files). Default: true. */
  checkImages?: boolean;
  /** Images decoded at once, a positive integer. Default: 8 (libvips decodes on its own threads). */
  concurrency?: number;
}

const VALIDATE_KEYS = keysOf<ValidateOptions>()(['numClasses', 'skipInvalid', 'checkImages', 'concurrency']);
/** The loader's decoding with its defaults (the strictness training will see). */
const PROBE_DECODE = resolveDecodeOptions({}, 'options');

/** What {@link validateDataset} resolves with. */
export interface ValidationResult<D extends Dataset = Dataset> {
  /** The dataset, minus skipped items. */
  dataset: D;
  /** Images dropped as unreadable (only with skipInvalid), each with its reason. */
  skipped: DatasetProblem[];
}

function where(ds: Dataset): string {
  return ds.source ?? `a dataset of ${ds.items.length} items`;
}

/** Throws unless at least two classes have items (a 1-class softmax learns nothing). */
function requireTwoClasses(ds: Dataset): void {
  const used = new Set(ds.items.map((it) => it.label));
  if (used.size < 2) {
    const only = [...used].map((l) => `'${ds.classes[l] ?? l}'`).join(', ');
    const declared = ds.classes.length > 1 ? ` (of ${ds.classes.length} classes declared, the others have no images)` : '';
    throw new DatasetError('TOO_FEW_CLASSES', `fine-tuning needs at least 2 classes; found only ${only} in ${where(ds)}${declared}`, {
      path: ds.source,
    });
  }
}

/**
 * Why the loader would fail on the file, or undefined when it will not. The
 * whole file is decoded (to a 4x4 thumbnail, so JPEGs shrink on load yet still
 * read all their entropy-coded data) with the loader's strictness: a header
 * check alone passes a JPEG cut after its headers, which then fails mid-epoch
 * after earlier steps have already changed the weights.
 */
async function probe(file: string): Promise<string | undefined> {
  try {
    // The loader's own gate first (format by content, pixel limits), then the whole file through libvips.
    const { pipeline } = await openEncoded({ kind: 'path', path: file }, PROBE_DECODE);
    await pipeline.resize(4, 4, { fit: 'fill' }).raw().toBuffer();
    return undefined;
  } catch (err) {
    if (err instanceof ImageInputError) return err.code === 'NOT_FOUND' ? 'file not found' : err.reason;
    const msg = errorMessage(err);
    if (/missing|ENOENT|no such file/i.test(msg)) return 'file not found';
    if (/unsupported image format/i.test(msg)) return 'not an image, or a format sharp cannot read';
    return msg;
  }
}

/**
 * Checks a dataset before training: items present, ≥ 2 classes used, every
 * label an integer in [0, numClasses), every image readable (decoded in full
 * to a 4x4 thumbnail with sharp, `concurrency` at a time, so a JPEG cut after
 * its headers is caught). Throws DatasetError naming the paths; with skipInvalid,
 * unreadable images are dropped and returned in `skipped` instead (bad labels
 * always throw: they are a configuration error, not a bad file).
 *
 * @param ds - the dataset to check
 * @param options - numClasses, skipInvalid, checkImages, concurrency
 * @returns the dataset without the skipped images, and what was skipped
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad dataset or option; the promise rejects
 * @throws {@link DatasetError} 'EMPTY' (no items), 'BAD_LABELS' (every bad label in `problems`),
 *   'TOO_FEW_CLASSES' (fewer than 2 classes with images), 'UNREADABLE_IMAGES' (without skipInvalid,
 *   or when none can be read; every one in `problems`)
 * @example
 * ```ts
 * import { loadDataset, validateDataset } from 'vgg-native';
 *
 * const { dataset, skipped } = await validateDataset(await loadDataset('data/train'), { skipInvalid: true });
 * console.log(`${dataset.items.length} usable, ${skipped.length} skipped`);
 * ```
 */
export async function validateDataset<D extends Dataset>(ds: D, options?: ValidateOptions): Promise<ValidationResult<D>> {
  const o = checkKnownKeys('options', checkObject('options', options), VALIDATE_KEYS);
  if (!ds || typeof ds !== 'object' || !Array.isArray(ds.items) || !Array.isArray(ds.classes)) {
    throw invalidType('ds', 'a Dataset { items, classes }', ds);
  }
  const numClasses = orDefault(o.numClasses, ds.classes.length, (v) => checkInteger('options.numClasses', v, 1));
  const skipInvalid = orDefault(o.skipInvalid, false, (v) => checkBoolean('options.skipInvalid', v));
  const checkImages = orDefault(o.checkImages, true, (v) => checkBoolean('options.checkImages', v));
  const concurrency = orDefault(o.concurrency, 8, (v) => checkInteger('options.concurrency', v, 1));

  if (ds.items.length === 0) throw new DatasetError('EMPTY', `No images in ${where(ds)}`, { path: ds.source });
  const badLabels: DatasetProblem[] = [];
  ds.items.forEach((it, i) => {
    if (!Number.isInteger(it.label) || it.label < 0 || it.label >= numClasses) {
      badLabels.push({ path: it.path, reason: labelRangeReason(it.label, `item #${i}`, it.path, numClasses) });
    }
  });
  if (badLabels.length > 0) {
    const head = badLabels[0].reason;
    const more = badLabels.length > 1 ? ` (and ${badLabels.length - 1} more item(s) with bad labels)` : '';
    throw new DatasetError('BAD_LABELS', `${head.charAt(0).toUpperCase()}${head.slice(1)}${more}`, { path: badLabels[0].path, problems: badLabels });
  }
  requireTwoClasses(ds);
  if (!checkImages) return { dataset: ds, skipped: [] };

  const reasons = await mapBounded(ds.items, concurrency, (it) => probe(it.path));
  const skipped: DatasetProblem[] = [];
  reasons.forEach((reason, i) => {
    if (reason !== undefined) skipped.push({ path: ds.items[i].path, reason });
  });
  if (skipped.length === 0) return { dataset: ds, skipped };
  if (!skipInvalid) {
    throw new DatasetError(
      'UNREADABLE_IMAGES',
      `${skipped.length} of ${ds.items.length} image(s) in ${where(ds)} cannot be read: ${listProblems(skipped)}. Fix or remove them, or pass skipInvalid: true to skip them`,
      { path: skipped[0].path, problems: skipped },
    );
  }
  const dataset: D = { ...ds, items: ds.items.filter((_, i) => reasons[i] === undefined) };
  if (dataset.items.length === 0) {
    throw new DatasetError('UNREADABLE_IMAGES', `None of the ${ds.items.length} image(s) in ${where(ds)} can be read: ${listProblems(skipped)}`, {
      path: ds.source,
      problems: skipped,
    });
  }
  requireTwoClasses(dataset);
  return { dataset, skipped };
}
