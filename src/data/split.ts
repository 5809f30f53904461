// Deterministic train/validation split, stratified by class by default.
import { checkBoolean, checkFraction, checkInteger, checkKnownKeys, checkObject, invalidType, keysOf, orDefault } from '../validate';
import { DatasetError } from './errors';
import { PURPOSE, rngFor, shuffleInPlace } from './seed';
import type { Dataset } from './types';

/** Options of {@link splitDataset}: all optional (an unknown key is a RangeError). */
export interface SplitOptions {
  /** Share of items for validation, in [0, 1). Default: 0.2. */
  valFraction?: number;
  /** Same seed, same split; a non-negative integer. Default: 0. */
  seed?: number;
  /** Keep each class's share in both parts. Default: true. */
  stratified?: boolean;
}

const SPLIT_KEYS = keysOf<SplitOptions>()(['valFraction', 'seed', 'stratified']);

/**
 * Splits a dataset into training and validation parts, deterministically.
 * Validation size = round(N * valFraction) in total. Stratified: each class
 * gets floor(n_c * f) or one more, the extra ones going to the classes with
 * the largest remainders (ties: lower class index), so the total is exact —
 * e.g. 1797 digits at 0.2 → 359 val / 1438 train. Which items go is a seeded
 * shuffle per class; both parts keep the dataset's original order. Synchronous.
 *
 * @param ds - the dataset (any object with `items` and `classes`; other fields are kept in both parts)
 * @param options - valFraction, seed, stratified
 * @returns the two parts, each with the full class list
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a bad dataset or option
 * @throws {@link DatasetError} 'EMPTY' when nothing would be left to train on
 * @example
 * ```ts
 * import { loadDataset, splitDataset } from 'vgg-native';
 *
 * const { train, val } = splitDataset(await loadDataset('digits/'), { valFraction: 0.2, seed: 0 });
 * console.log(train.items.length, val.items.length); // 1438 359 for 1797 images
 * ```
 */
export function splitDataset<D extends Dataset>(
  ds: D,
  options?: SplitOptions,
): {
  /** The items left for training. */
  train: D;
  /** The items held out for validation. */
  val: D;
} {
  const o = checkKnownKeys('options', checkObject('options', options), SPLIT_KEYS);
  if (!ds || !Array.isArray(ds.items) || !Array.isArray(ds.classes)) throw invalidType('ds', 'a Dataset { items, classes }', ds);
  const f = orDefault(o.valFraction, 0.2, (v) => checkFraction('options.valFraction', v));
  const seed = orDefault(o.seed, 0, (v) => checkInteger('options.seed', v, 0));
  const stratified = orDefault(o.stratified, true, (v) => checkBoolean('options.stratified', v));
  const n = ds.items.length;
  const nVal = Math.round(n * f);
  if (nVal >= n) throw new DatasetError('EMPTY', `Cannot split ${n} item(s) with valFraction ${f}: nothing would be left to train on`);

  const rng = rngFor(PURPOSE.split, seed);
  const isVal = new Uint8Array(n);
  if (!stratified) {
    for (const i of shuffleInPlace(
      Array.from({ length: n }, (_, i) => i),
      rng,
    ).slice(0, nVal))
      isVal[i] = 1;
  } else {
    const groups = new Map<number, number[]>();
    ds.items.forEach((it, i) => {
      const g = groups.get(it.label);
      if (g) g.push(i);
      else groups.set(it.label, [i]);
    });
    const labels = [...groups.keys()].sort((a, b) => a - b);
    const exact = labels.map((l) => groups.get(l)!.length * f);
    const take = exact.map(Math.floor);
    let extra = nVal - take.reduce((a, b) => a + b, 0);
    const order = labels.map((_, k) => k).sort((a, b) => exact[b] - take[b] - (exact[a] - take[a]) || a - b);
    for (const k of order) {
      if (extra <= 0) break;
      take[k]++;
      extra--;
    }
    labels.forEach((l, k) => {
      for (const i of shuffleInPlace(groups.get(l)!.slice(), rng).slice(0, take[k])) isVal[i] = 1;
    });
  }
  const part = (want: number): D => ({ ...ds, items: ds.items.filter((_, i) => isVal[i] === want), classes: [...ds.classes] });
  return { train: part(0), val: part(1) };
}
