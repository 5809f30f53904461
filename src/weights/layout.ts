// Maps an unpickled checkpoint to canonical VGG names (mmcls keys without
// `backbone.`, see arch.ts) and infers the architecture from the keys and
// shapes, so a .pth loads without the user naming its variant.
import {
  type ArchSpec,
  depthFromStageBlocks,
  HEAD_LINEAR,
  modulesPerConv,
  type NameLayout,
  type StateEntry,
  stateShapes,
  torchvisionBnOffset,
} from '../arch';
import { CheckpointError } from './errors';

interface Shaped {
  shape: number[];
}

export interface InterpretedCheckpoint<T extends Shaped> {
  arch: ArchSpec;
  /** Rows of the head's weight ({@link HEAD_LINEAR}); 0 when the checkpoint has no classifier. */
  numClasses: number;
  /** Canonical name → tensor, in canonical order (then any unrecognised keys). */
  tensors: Map<string, T>;
  /** meta.CLASSES (mmcls) when present. */
  labels?: string[];
  layout: NameLayout;
  /** The checkpoint's `meta` converted to plain objects (tensors kept as they are). */
  meta?: Record<string, unknown>;
}

function isShaped(v: unknown): v is Shaped {
  return v !== null && typeof v === 'object' && Array.isArray((v as Shaped).shape) && !(v instanceof Map) && !Array.isArray(v);
}

function asStringMap(v: unknown): Map<string, unknown> | undefined {
  if (!(v instanceof Map)) return undefined;
  for (const k of v.keys()) if (typeof k !== 'string') return undefined;
  return v as Map<string, unknown>;
}

/**
 * Plain-object copy of pickled meta data (Maps → null-prototype objects,
 * Sets → arrays), so meta can be read with ordinary property access.
 * @param v - an unpickled value
 * @param depth - current nesting (the recursion's guard)
 * @returns the same data without Maps or Sets
 * @example toPlain(new Map([['arch', 'vgg16']])) // { arch: 'vgg16' }
 */
export function toPlain(v: unknown, depth = 0): unknown {
  if (depth > 1000) return undefined; // the unpickler already bounds nesting; belt and braces
  if (v instanceof Map) {
    const o: Record<string, unknown> = Object.create(null);
    for (const [k, x] of v) o[String(k)] = toPlain(x, depth + 1);
    return o;
  }
  if (Array.isArray(v)) return v.map((x) => toPlain(x, depth + 1));
  if (v instanceof Set) return [...v].map((x) => toPlain(x, depth + 1));
  return v;
}

/** Finds the state_dict: bare, {state_dict}, {model} or {meta, state_dict}. */
function unwrap(obj: unknown, file: string): { sd: Map<string, unknown>; meta?: Map<string, unknown> } {
  const top = asStringMap(obj);
  if (!top) {
    throw new CheckpointError(
      'UNKNOWN_LAYOUT',
      `Checkpoint ${file} holds ${Array.isArray(obj) ? 'a list' : obj === null ? 'None' : typeof obj}, not a state_dict (a dict of tensors)`,
      file,
    );
  }
  for (const k of ['state_dict', 'model']) {
    const inner = asStringMap(top.get(k));
    if (inner) return { sd: inner, meta: asStringMap(top.get('meta')) };
  }
  return { sd: top };
}

function fail(file: string, keys: string[], why: string): never {
  const sample = keys.slice(0, 6).join(', ');
  throw new CheckpointError(
    'UNKNOWN_LAYOUT',
    `Checkpoint ${file} is not a VGG state_dict we recognise (${why}); found ${keys.length} keys such as ${sample || '(none)'}. ` +
      'Expected mmcls keys (backbone.features.<i>.conv.weight, ...) or torchvision keys (features.<i>.weight, classifier.<i>.weight)',
    file,
  );
}

/**
 * Drops the `module` segment DataParallel adds around the module it wraps.
 * @param key - a state_dict key
 * @returns the key without `module` segments
 * @example withoutWrapperSegments('module.features.0.weight') // 'features.0.weight'
 */
export function withoutWrapperSegments(key: string): string {
  return key
    .split('.')
    .filter((part) => part !== 'module')
    .join('.');
}

/** Groups sorted indices into stages: a gap larger than `step` means a pool sat in between. */
function stagesByGaps(indices: number[], step: number): number[] {
  const blocks: number[] = [];
  indices.forEach((ix, i) => {
    if (i === 0 || ix - indices[i - 1] > step) blocks.push(1);
    else blocks[blocks.length - 1]++;
  });
  return blocks;
}

/**
 * A checkpoint layout: a column of the table (how it names each canonical
 * tensor) plus what finds its convolutions before the architecture is known.
 * Reading is one loop over the table through the column; a layout whose
 * tensors also differ in shape (timm's convolutional pre_logits) would add
 * its reshapes here.
 */
interface Layout {
  id: NameLayout;
  /** What some writers put before every key (mmcls's classifiers hold the VGG as `backbone`). */
  prefix: string;
  /** The `features` index of a convolution's weight, or undefined when `key` (prefix removed) is not one. */
  convIndex(key: string, tensor: Shaped): number | undefined;
  /** The module holding the batch norm of the convolution at `features` index `ix`. */
  bnModule(ix: number): string;
  /** This layout's name of a table entry. */
  column(e: StateEntry): string;
}

const indexIn = (re: RegExp, key: string): number | undefined => {
  const m = re.exec(key);
  return m ? Number(m[1]) : undefined;
};

const LAYOUTS: readonly Layout[] = [
  {
    id: 'mmcls',
    prefix: 'backbone.',
    convIndex: (key) => indexIn(/^features\.(\d+)\.conv\.weight$/, key),
    bnModule: (ix) => `features.${ix}.bn`,
    column: (e) => e.name,
  },
  {
    id: 'torchvision',
    prefix: '',
    // features.N.weight is a BatchNorm2d's too: a convolution's is 4-D.
    convIndex: (key, t) => (t.shape.length === 4 ? indexIn(/^features\.(\d+)\.weight$/, key) : undefined),
    bnModule: (ix) => `features.${ix + torchvisionBnOffset()}`,
    column: (e) => e.torchvisionName,
  },
];

/**
 * Interprets an unpickled checkpoint: finds the state_dict, recognises the
 * mmcls or torchvision layout, renames to canonical keys and infers the
 * architecture. Keys it cannot map are kept under their original names so
 * `checkAgainst` reports them as unexpected.
 * @param obj - the unpickled checkpoint
 * @param file - its name, for messages
 * @returns canonical tensors, architecture, class count, labels and meta
 * @throws CheckpointError('UNKNOWN_LAYOUT') when it is not a VGG state_dict
 * @example interpretCheckpoint(unpickled, 'vgg16.pth').arch // { depth: 16, batchNorm: false }
 */
export function interpretCheckpoint<T extends Shaped>(obj: unknown, file = 'checkpoint'): InterpretedCheckpoint<T> {
  const { sd, meta } = unwrap(obj, file);
  let keys = [...sd.keys()];
  for (const k of keys) {
    if (!isShaped(sd.get(k))) fail(file, keys, `value of '${k}' is not a tensor`);
  }
  // DataParallel/DistributedDataParallel insert a `module` segment where they
  // wrapped: before every key (`module.features.0.weight`) or inside it when
  // only a submodule was wrapped (`features.module.0.weight`). Drop it wherever it is.
  keys = keys.map(withoutWrapperSegments);
  const original = new Map<string, string>(); // stripped → key in sd
  [...sd.keys()].forEach((k, i) => {
    if (original.has(keys[i]))
      fail(file, [...sd.keys()], `'${k}' and '${original.get(keys[i])}' are the same key once the DataParallel 'module.' segment is dropped`);
    original.set(keys[i], k);
  });
  const get = (k: string): T => sd.get(original.get(k)!) as T;

  // The layout: the first whose convolution names occur (with or without its prefix).
  const convIndexOf = (l: Layout, k: string, p: string): number | undefined => (k.startsWith(p) ? l.convIndex(k.slice(p.length), get(k)) : undefined);
  const layout = LAYOUTS.find((l) => keys.some((k) => convIndexOf(l, k, l.prefix) !== undefined || convIndexOf(l, k, '') !== undefined));
  if (!layout) fail(file, keys, 'no convolution weights under features.*');
  const p = keys.some((k) => k.startsWith(layout.prefix)) ? layout.prefix : '';

  // The architecture: batch norm, then convolutions per stage (a pool between stages leaves a gap).
  const convIdx = keys
    .map((k) => convIndexOf(layout, k, p))
    .filter((ix): ix is number => ix !== undefined)
    .sort((a, b) => a - b);
  const bnAt = (ix: number): string => `${p}${layout.bnModule(ix)}`;
  const batchNorm = convIdx.some(
    (ix) => original.has(`${bnAt(ix)}.running_mean`) || (original.has(`${bnAt(ix)}.weight`) && get(`${bnAt(ix)}.weight`).shape.length === 1),
  );
  const blocks = stagesByGaps(convIdx, modulesPerConv(layout.id, batchNorm));
  const depth = depthFromStageBlocks(blocks);
  if (!depth) fail(file, keys, `${convIdx.length} convolutions in stages of (${blocks.join(', ')}), which is not VGG-11/13/16/19`);

  // One loop over the table (1 class stands for "has a classifier": names do not depend on the
  // count): each canonical tensor under this layout's name, in canonical order; then whatever
  // was not recognised (reported by checkAgainst).
  const tensors = new Map<string, T>();
  const used = new Set<string>();
  for (const e of stateShapes({ depth, batchNorm }, 1)) {
    const from = `${p}${layout.column(e)}`;
    if (!original.has(from)) continue;
    tensors.set(e.name, get(from));
    used.add(from);
  }
  for (const k of keys) if (!used.has(k)) tensors.set(k, get(k));

  const head = tensors.get(`${HEAD_LINEAR}.weight`);
  const numClasses = head && head.shape.length === 2 ? head.shape[0] : 0;
  const result: InterpretedCheckpoint<T> = { arch: { depth, batchNorm }, numClasses, tensors, layout: layout.id };
  if (meta) {
    result.meta = toPlain(meta) as Record<string, unknown>;
    const classes = meta.get('CLASSES') ?? asStringMap(meta.get('dataset_meta'))?.get('classes');
    if (Array.isArray(classes) && classes.every((c) => typeof c === 'string')) result.labels = classes.slice() as string[];
  }
  return result;
}

/**
 * Names and shapes of the canonical VGG state, in state_dict order: the
 * table's stateShapes without the torchvision aliases.
 * @param arch - depth and batch norm
 * @param numClasses - rows of the last Linear; 0 = no classifier
 * @returns what a checkpoint for this model must hold
 * @example expectedShapes({ depth: 11, batchNorm: false }, 0)[0] // { name: 'features.0.conv.weight', shape: [64, 3, 3, 3] }
 */
export function expectedShapes(arch: ArchSpec, numClasses: number): Array<{ name: string; shape: number[] }> {
  return stateShapes(arch, numClasses).map(({ name, shape }) => ({ name, shape }));
}

export interface StateCheck {
  ok: boolean;
  missing: string[];
  unexpected: string[];
  mismatched: Array<{ name: string; expected: number[]; got: number[] }>;
}

export interface CheckOptions {
  /** Report unexpected keys as errors (missing and mismatched always count). */
  strict: boolean;
  /**
   * Accept BN `num_batches_tracked` being absent (default true): checkpoints
   * from before PyTorch 0.4.1, like torchvision's published VGG-BN weights,
   * lack it and torch fills in 0.
   */
  allowMissingNumBatchesTracked?: boolean;
}

/**
 * Compares tensors against the model's expected names and shapes; lists
 * every problem at once so one error can name them all.
 * @param expected - from expectedShapes (or the native model's stateShapes)
 * @param got - canonical name → tensor
 * @param options - strictness and num_batches_tracked tolerance
 * @returns missing, unexpected and mismatched names, and whether it fits
 * @example checkAgainst(expectedShapes(spec, 1000), ck.tensors, { strict: true }).ok
 */
export function checkAgainst(expected: Array<{ name: string; shape: number[] }>, got: Map<string, Shaped>, options: CheckOptions): StateCheck {
  const allowNbt = options.allowMissingNumBatchesTracked ?? true;
  const missing: string[] = [];
  const mismatched: StateCheck['mismatched'] = [];
  const names = new Set<string>();
  for (const { name, shape } of expected) {
    names.add(name);
    const t = got.get(name);
    if (!t) {
      if (!(allowNbt && name.endsWith('.num_batches_tracked'))) missing.push(name);
      continue;
    }
    // A 0-d scalar and a 1-element vector are interchangeable for num_batches_tracked.
    const same = t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
    const scalarOk = name.endsWith('.num_batches_tracked') && t.shape.reduce((a, b) => a * b, 1) === 1;
    if (!same && !scalarOk) mismatched.push({ name, expected: shape.slice(), got: t.shape.slice() });
  }
  const unexpected = [...got.keys()].filter((k) => !names.has(k));
  const ok = missing.length === 0 && mismatched.length === 0 && (!options.strict || unexpected.length === 0);
  return { ok, missing, unexpected, mismatched };
}

/**
 * One readable message for a failed check (what the facade throws).
 * @param check - from checkAgainst
 * @param file - the checkpoint's name
 * @param options - whether unexpected keys count
 * @returns e.g. "Checkpoint a.pth does not fit the model: missing 2: ..."
 */
export function describeCheck(check: StateCheck, file: string, options: { strict: boolean }): string {
  const parts: string[] = [];
  const list = (xs: string[]): string => xs.slice(0, 10).join(', ') + (xs.length > 10 ? `, … (${xs.length} in all)` : '');
  if (check.missing.length) parts.push(`missing ${check.missing.length}: ${list(check.missing)}`);
  if (check.mismatched.length) {
    parts.push(
      `shape mismatch ${check.mismatched.length}: ${list(check.mismatched.map((m) => `${m.name} expected [${m.expected.join(', ')}] but got [${m.got.join(', ')}]`))}`,
    );
  }
  if (options.strict && check.unexpected.length) parts.push(`unexpected ${check.unexpected.length}: ${list(check.unexpected)}`);
  return `Checkpoint ${file} does not fit the model: ${parts.join('; ')}`;
}

/**
 * checkAgainst, throwing on failure.
 * @param expected - expected names and shapes
 * @param got - canonical name → tensor
 * @param file - the checkpoint's name, for the message
 * @param options - as for checkAgainst
 * @returns the (passing) check
 * @throws CheckpointError('STATE_MISMATCH') listing every problem
 */
export function assertFits(
  expected: Array<{ name: string; shape: number[] }>,
  got: Map<string, Shaped>,
  file: string,
  options: CheckOptions,
): StateCheck {
  const check = checkAgainst(expected, got, options);
  if (!check.ok) throw new CheckpointError('STATE_MISMATCH', describeCheck(check, file, options), file);
  return check;
}
