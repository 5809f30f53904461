// Turning fineTune's `train` / `val` options into checked Datasets before any
// training starts: load, validate (labels, ≥ 2 classes, readable images),
// split off validation, and count what skipInvalid dropped.
import { loadDataset, splitDataset, validateDataset, DatasetError, type DatasetProblem, type DatasetSource } from '../data/dataset';
import type { Dataset } from '../data/types';
import { isPlainObject } from '../validate';

export interface PreparedData {
  train: Dataset;
  val: Dataset | undefined;
  classes: string[];
  /** Entries or images dropped by skipInvalid (labels unknown, files unreadable), train and val. */
  skipped: DatasetProblem[];
}

export function isDataset(v: unknown): v is Dataset {
  return isPlainObject(v) && Array.isArray(v.items) && Array.isArray(v.classes);
}

async function load(
  param: string,
  source: DatasetSource | Dataset,
  classes: readonly string[] | undefined,
  skipInvalid: boolean,
): Promise<{ ds: Dataset; skipped: DatasetProblem[] }> {
  if (isDataset(source)) {
    if (classes && (source.classes.length !== classes.length || source.classes.some((c, i) => c !== classes[i]))) {
      throw new DatasetError(
        'BAD_LABELS',
        `${param} has classes [${source.classes.slice(0, 10).join(', ')}${source.classes.length > 10 ? ', …' : ''}] but training has [${classes.slice(0, 10).join(', ')}${classes.length > 10 ? ', …' : ''}]: the same names in the same order are needed`,
      );
    }
    return { ds: source, skipped: [] };
  }
  const ds = await loadDataset(source, { classes, skipInvalid });
  return { ds, skipped: ds.skipped };
}

export async function prepareData(o: {
  train: DatasetSource | Dataset;
  val: DatasetSource | Dataset | undefined;
  valFraction: number;
  seed: number;
  skipInvalid: boolean;
}): Promise<PreparedData> {
  const t = await load('options.train', o.train, undefined, o.skipInvalid);
  const checkedTrain = await validateDataset(t.ds, { skipInvalid: o.skipInvalid });
  const skipped = [...t.skipped, ...checkedTrain.skipped];
  let train = checkedTrain.dataset;
  const classes = [...train.classes];
  let val: Dataset | undefined;
  if (o.val !== undefined) {
    const v = await load('options.val', o.val, classes, o.skipInvalid);
    // validateDataset also asks for two classes; a validation set may hold fewer, so only the labels and files matter here.
    const checkedVal = await validateDataset({ ...v.ds, items: v.ds.items, classes }, { skipInvalid: o.skipInvalid }).catch((err: unknown) => {
      if (err instanceof DatasetError && err.code === 'TOO_FEW_CLASSES') return { dataset: v.ds, skipped: [] as DatasetProblem[] };
      throw err;
    });
    skipped.push(...v.skipped, ...checkedVal.skipped);
    val = checkedVal.dataset;
  } else if (o.valFraction > 0) {
    const split = splitDataset(train, { valFraction: o.valFraction, seed: o.seed });
    train = split.train;
    val = split.val.items.length > 0 ? split.val : undefined;
  }
  return { train, val, classes, skipped };
}
