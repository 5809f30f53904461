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
import { reshapeSource } from './reshape';

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
  /** Exponential-moving-average weights saved beside the live ones: where they were, and whether they were loaded. */
  ema?: EmaInfo;
}

/** EMA weights found in a checkpoint ({@link InterpretOptions.ema} picks them). */
export interface EmaInfo {
  /** Where they were: a top-level key ('state_dict_ema', timm), a key prefix ('ema.') or mmcv's 'ema_' buffers. */
  source: string;
  /** true: the EMA weights were loaded; false: the live ones (the default). */
  used: boolean;
}

/** How to read a checkpoint that holds more than one set of weights. */
export interface InterpretOptions {
  /** Load the exponential-moving-average weights saved beside the live ones (timm's `state_dict_ema`, `ema_state_dict`, `ema.` keys, mmcv's `ema_` buffers). Default: false (the live weights). */
  ema?: boolean;
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

/** Keys under which trainers nest the state_dict (mmcls/mmengine/Lightning 'state_dict', DeiT-style 'model', tutorials' 'model_state_dict'/'net'). */
const STATE_KEYS = ['state_dict', 'model_state_dict', 'model', 'net'];
/** Top-level keys holding EMA weights beside them: timm's train.py, mmengine's EMAHook, others. */
const EMA_KEYS = ['state_dict_ema', 'ema_state_dict', 'model_ema', 'ema_model', 'ema'];

interface Unwrapped {
  sd: Map<string, unknown>;
  top: Map<string, unknown>;
  meta?: Map<string, unknown>;
  ema?: { key: string; sd: Map<string, unknown> };
}

const isTensorMap = (m: Map<string, unknown> | undefined): m is Map<string, unknown> => !!m && m.size > 0 && [...m.values()].every(isShaped);

/** Finds the state_dict (bare or nested under a trainer's key), its meta and any EMA copy beside it. */
function unwrap(obj: unknown, file: string): Unwrapped {
  const top = asStringMap(obj);
  if (!top) {
    throw new CheckpointError(
      'UNKNOWN_LAYOUT',
      `Checkpoint ${file} holds ${Array.isArray(obj) ? 'a list' : obj === null ? 'None' : typeof obj}, not a state_dict (a dict of tensors)`,
      file,
    );
  }
  const emaKey = EMA_KEYS.find((k) => isTensorMap(asStringMap(top.get(k))));
  const ema = emaKey ? { key: emaKey, sd: asStringMap(top.get(emaKey))! } : undefined;
  for (const k of STATE_KEYS) {
    const inner = asStringMap(top.get(k));
    if (inner && (k === 'state_dict' || isTensorMap(inner))) return { sd: inner, top, meta: asStringMap(top.get('meta')), ema };
  }
  return { sd: top, top };
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

/** Segments wrappers insert around the module they wrap: (Distributed)DataParallel's `module`, torch.compile's `_orig_mod`. */
const WRAPPER_SEGMENTS = new Set(['module', '_orig_mod']);

/**
 * Drops the segments (Distributed)DataParallel (`module`) and torch.compile
 * (`_orig_mod`) add around the module they wrap, wherever they are.
 * @param key - a state_dict key
 * @returns the key without wrapper segments
 * @example withoutWrapperSegments('_orig_mod.module.features.0.weight') // 'features.0.weight'
 */
export function withoutWrapperSegments(key: string): string {
  return key
    .split('.')
    .filter((part) => !WRAPPER_SEGMENTS.has(part))
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
 * A checkpoint layout: a column of the table (how it names and shapes each
 * canonical tensor) plus what finds its convolutions before the architecture
 * is known. Reading is one loop over the table through the column.
 */
interface Layout {
  id: NameLayout;
  /** The `features` index of a convolution's weight, or undefined when `key` (prefix removed) is not one. */
  convIndex(key: string, tensor: Shaped): number | undefined;
  /** Keys only this layout has, telling it from one that names its convolutions alike (timm's head vs torchvision's classifier). */
  marker?: RegExp;
  /** The module holding the batch norm of the convolution at `features` index `ix`. */
  bnModule(ix: number): string;
  /** This layout's key and stored shape of a table entry. */
  column(e: StateEntry): { name: string; shape: number[] };
}

const indexIn = (re: RegExp, key: string): number | undefined => {
  const m = re.exec(key);
  return m ? Number(m[1]) : undefined;
};

// features.N.weight is a BatchNorm2d's too: a convolution's is 4-D.
const flatConvIndex = (key: string, t: Shaped): number | undefined => (t.shape.length === 4 ? indexIn(/^features\.(\d+)\.weight$/, key) : undefined);
const flatBnModule = (ix: number): string => `features.${ix + torchvisionBnOffset()}`;

/** In the order tried: the first whose marker (if any) and convolution names occur wins. */
const LAYOUTS: readonly Layout[] = [
  {
    id: 'mmcls',
    convIndex: (key) => indexIn(/^features\.(\d+)\.conv\.weight$/, key),
    bnModule: (ix) => `features.${ix}.bn`,
    column: (e) => e,
  },
  { id: 'timm', convIndex: flatConvIndex, marker: /^(pre_logits|head)\./, bnModule: flatBnModule, column: (e) => e.timm },
  { id: 'torchvision', convIndex: flatConvIndex, bnModule: flatBnModule, column: (e) => ({ name: e.torchvisionName, shape: e.shape }) },
];

/** Prefixes that mark an EMA copy of the model inside the same state_dict. */
const EMA_PREFIX = /(^|\.)(ema|model_ema|ema_model)\./;

/** Where the VGG sits in the keys: a layout and the prefix before its names ('backbone.' for mmcls's classifiers, 'model.' for a LightningModule's attribute, ...). */
interface Placement {
  layout: Layout;
  prefix: string;
  convKeys: number;
}

/** Every `.`-bounded prefix of `key`, '' first. */
function prefixesOf(key: string): string[] {
  const out = [''];
  for (let i = key.indexOf('.'); i >= 0; i = key.indexOf('.', i + 1)) out.push(key.slice(0, i + 1));
  return out;
}

/** The layouts and prefixes under which convolution weights occur, most convolutions first (ties: layout order). */
function placements(keys: string[], get: (k: string) => Shaped): Placement[] {
  const found = new Map<string, Placement>();
  for (const k of keys) {
    for (const prefix of prefixesOf(k)) {
      const rest = k.slice(prefix.length);
      const layout = LAYOUTS.find((l) => l.convIndex(rest, get(k)) !== undefined);
      if (!layout) continue;
      for (const l of LAYOUTS.filter((x) => x.convIndex === layout.convIndex)) {
        const id = `${l.id}\0${prefix}`;
        const p = found.get(id) ?? { layout: l, prefix, convKeys: 0 };
        p.convKeys++;
        found.set(id, p);
      }
    }
  }
  const fits = (p: Placement): boolean =>
    !p.layout.marker || keys.some((k) => k.startsWith(p.prefix) && p.layout.marker!.test(k.slice(p.prefix.length)));
  const order = (p: Placement): number => LAYOUTS.indexOf(p.layout);
  return [...found.values()].filter(fits).sort((a, b) => b.convKeys - a.convKeys || order(a) - order(b));
}

/** The architecture the convolutions under a placement imply. */
function archOf(pl: Placement, keys: string[], has: (k: string) => boolean, get: (k: string) => Shaped, file: string): ArchSpec {
  const { layout, prefix } = pl;
  const convIdx = keys
    .map((k) => (k.startsWith(prefix) ? layout.convIndex(k.slice(prefix.length), get(k)) : undefined))
    .filter((ix): ix is number => ix !== undefined)
    .sort((a, b) => a - b);
  const bnAt = (ix: number): string => `${prefix}${layout.bnModule(ix)}`;
  const batchNorm = convIdx.some(
    (ix) => has(`${bnAt(ix)}.running_mean`) || (has(`${bnAt(ix)}.weight`) && get(`${bnAt(ix)}.weight`).shape.length === 1),
  );
  const blocks = stagesByGaps(convIdx, modulesPerConv(layout.id, batchNorm));
  const depth = depthFromStageBlocks(blocks);
  if (!depth) fail(file, keys, `${convIdx.length} convolutions in stages of (${blocks.join(', ')}), which is not VGG-11/13/16/19`);
  return { depth, batchNorm };
}

/** mmcv's EMAHook keeps `ema_` + the parameter's name with dots as underscores, as buffers of the same model. */
const mmcvEmaKey = (key: string): string => `ema_${key.replace(/\./g, '_')}`;

/** Where a canonical tensor's EMA copy is, if the checkpoint has one of that kind. */
interface EmaSet {
  source: string;
  key(liveKey: string, layoutKey: string): string | undefined;
}

/** The EMA copy a checkpoint holds, of the three kinds found in the wild, or undefined. */
function emaSetOf(
  u: Unwrapped,
  pl: Placement,
  all: Placement[],
  has: (k: string) => boolean,
): { set: EmaSet; sd?: Map<string, unknown> } | undefined {
  const inner = all.find((p) => p !== pl && p.layout === pl.layout && EMA_PREFIX.test(p.prefix));
  if (inner) return { set: { source: `'${inner.prefix}' keys`, key: (_live, k) => `${inner.prefix}${k}` } };
  if (u.ema) {
    const emaKeys = [...u.ema.sd.keys()].map(withoutWrapperSegments);
    const emaPl = placements(emaKeys, (k) => u.ema!.sd.get([...u.ema!.sd.keys()][emaKeys.indexOf(k)]) as Shaped).find((p) => p.layout === pl.layout);
    if (emaPl) return { set: { source: `'${u.ema.key}'`, key: (_live, k) => `${emaPl.prefix}${k}` }, sd: u.ema.sd };
  }
  const firstConv = [...u.sd.keys()].find(
    (k) => k.startsWith(pl.prefix) && pl.layout.convIndex(k.slice(pl.prefix.length), u.sd.get(k) as Shaped) !== undefined,
  );
  if (firstConv && has(mmcvEmaKey(firstConv))) return { set: { source: "mmcv's 'ema_' buffers", key: (live) => mmcvEmaKey(live) } };
  return undefined;
}

/** A dict's keys with wrapper segments dropped, refusing two keys that become one. */
function strippedKeys(sd: Map<string, unknown>, file: string): { keys: string[]; original: Map<string, string> } {
  const keys = [...sd.keys()].map(withoutWrapperSegments);
  const original = new Map<string, string>(); // stripped → key in sd
  [...sd.keys()].forEach((k, i) => {
    if (original.has(keys[i]))
      fail(
        file,
        [...sd.keys()],
        `'${k}' and '${original.get(keys[i])}' are the same key once the wrapper segments ('module.', '_orig_mod.') are dropped`,
      );
    original.set(keys[i], k);
  });
  return { keys, original };
}

/** Class names a checkpoint carries: mmcls's meta.CLASSES, mmengine's meta.dataset_meta.classes, a Lightning module's hyper_parameters, a top-level list. */
function labelsOf(u: Unwrapped): string[] | undefined {
  const hp = asStringMap(u.top.get('hyper_parameters'));
  const candidates = [
    u.meta?.get('CLASSES'),
    asStringMap(u.meta?.get('dataset_meta'))?.get('classes'),
    hp?.get('classes'),
    hp?.get('class_names'),
    u.top.get('classes'),
    u.top.get('class_names'),
  ];
  const hit = candidates.find((c) => Array.isArray(c) && c.length > 0 && c.every((x) => typeof x === 'string'));
  return hit ? (hit as string[]).slice() : undefined;
}

/**
 * Interprets an unpickled checkpoint: finds the state_dict (bare or inside a
 * trainer's checkpoint), recognises the mmcls, timm or torchvision layout under
 * any prefix, renames to canonical keys (reshaping what the layout stores in
 * another form) and infers the architecture. Keys it cannot map are kept
 * under their original names so `checkAgainst` reports them as unexpected.
 * @param obj - the unpickled checkpoint (or a safetensors file's tensors)
 * @param file - its name, for messages
 * @param options - `ema`: load the EMA weights saved beside the live ones
 * @returns canonical tensors, architecture, class count, labels, meta and what EMA copy there was
 * @throws CheckpointError('UNKNOWN_LAYOUT') when it is not a VGG state_dict, or `ema` is asked of one without EMA weights
 * @example interpretCheckpoint(unpickled, 'vgg16.pth').arch // { depth: 16, batchNorm: false }
 */
export function interpretCheckpoint<T extends Shaped>(obj: unknown, file = 'checkpoint', options: InterpretOptions = {}): InterpretedCheckpoint<T> {
  const u = unwrap(obj, file);
  const { sd, meta } = u;
  const raw = [...sd.keys()];
  for (const k of raw) if (!isShaped(sd.get(k))) fail(file, raw, `value of '${k}' is not a tensor`);
  const { keys, original } = strippedKeys(sd, file);
  const has = (k: string): boolean => original.has(k);
  const get = (k: string): T => sd.get(original.get(k)!) as T;

  const all = placements(keys, get);
  const live = all.find((p) => !EMA_PREFIX.test(p.prefix)) ?? all[0];
  if (!live) fail(file, keys, 'no convolution weights under features.*');
  const arch = archOf(live, keys, has, get, file);
  const ema = emaSetOf(u, live, all, has);
  if (options.ema && !ema) fail(file, keys, 'EMA weights were asked for (ema: true) but the checkpoint holds none');
  const useEma = options.ema === true && ema !== undefined;
  const emaGet = (k: string): T | undefined => {
    if (!ema?.sd) return has(k) ? get(k) : undefined;
    const hit = [...ema.sd.keys()].find((x) => withoutWrapperSegments(x) === k);
    return hit === undefined ? undefined : (ema.sd.get(hit) as T);
  };

  // One loop over the table (1 class stands for "has a classifier": names do not depend on the
  // count): each canonical tensor under this layout's name, reshaped to ours when the layout
  // stores it in another form, in canonical order; then what was not recognised.
  const tensors = new Map<string, T>();
  const used = new Set<string>();
  for (const e of stateShapes(arch, 1)) {
    const col = live.layout.column(e);
    const from = `${live.prefix}${col.name}`;
    if (!has(from)) continue;
    const emaFrom = ema?.set.key(original.get(from)!, col.name);
    if (emaFrom !== undefined) used.add(emaFrom);
    const t = useEma && emaFrom !== undefined ? (emaGet(emaFrom) ?? get(from)) : get(from);
    const stored = e.name.endsWith('.weight') && t.shape.length !== e.shape.length && sameShape(t.shape, col.shape);
    tensors.set(e.name, stored ? reshapeSource(t, headShape(e, t), file, from) : t);
    used.add(from);
  }
  // The EMA copy's own extras (mmengine's `steps`, ...) are not the live model's unexpected keys.
  const inner = ema !== undefined && ema.sd === undefined;
  const isEmaKey = (k: string): boolean => inner && (EMA_PREFIX.test(k) || (ema.set.source.startsWith('mmcv') && k.startsWith('ema_')));
  for (const k of keys) if (!used.has(k) && !isEmaKey(k)) tensors.set(k, get(k));

  const head = tensors.get(`${HEAD_LINEAR}.weight`);
  const numClasses = head && head.shape.length === 2 ? head.shape[0] : 0;
  const result: InterpretedCheckpoint<T> = { arch, numClasses, tensors, layout: live.layout.id };
  if (ema) result.ema = { source: ema.set.source, used: useEma };
  if (meta) result.meta = toPlain(meta) as Record<string, unknown>;
  const labels = labelsOf(u);
  if (labels) result.labels = labels;
  return result;
}

const sameShape = (a: number[], b: number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** Our shape for a tensor the layout stores reshaped; the head's rows follow the file (its class count is not the table's 1). */
function headShape(e: StateEntry, t: Shaped): number[] {
  return [t.shape[0], ...e.shape.slice(1)];
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
