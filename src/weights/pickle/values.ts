// The JS values an unpickled checkpoint is made of, beyond plain ones, and
// the options and result of `unpickle`.
//
// Value mapping: None→null, bool→boolean, int→number (bigint beyond 2^53),
// float→number, str→string, bytes→Uint8Array, tuple/list→Array, dict and
// OrderedDict→Map (insertion ordered), set/frozenset→Set. State that arrives
// through BUILD on a dict (an OrderedDict's `_metadata`) is kept out of the
// Map and can be read with `pyAttributes(map)`.

/** Element types of the torch storages we read. */
export type StorageDTypeName = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** `torch.<Name>Storage` classes and their element types. */
export const STORAGE_TYPES: Readonly<Record<string, StorageDTypeName>> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** A `torch.*Storage` class named in a pickle; `dtype` is its element type. */
export class StorageType {
  constructor(
    readonly name: string,
    readonly dtype: StorageDTypeName,
  ) {}
}

/** A `torch.<dtype>` global (torch >= 2 may pickle dtypes in tensor metadata). */
export class DTypeRef {
  constructor(readonly name: string) {}
}

/** An allow-listed callable named by GLOBAL/STACK_GLOBAL; REDUCE runs our own version of it. */
export class PyGlobal {
  constructor(readonly path: string) {}
}

/** Arguments of torch._utils._rebuild_tensor(_v2), already type-checked. */
export interface TensorArgs {
  storage: unknown;
  storageOffset: number;
  size: number[];
  stride: number[];
  requiresGrad: boolean;
}

export interface UnpickleOptions {
  /** Named in error messages. */
  file?: string;
  /** Called for PERSID/BINPERSID; without it persistent ids are refused. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Builds the JS value for a tensor; without it tensors are refused. */
  makeTensor?: (args: TensorArgs) => unknown;
  /** Deepest MARK nesting and container nesting accepted (default 1000). */
  maxDepth?: number;
  /** Most memo entries accepted (default 1,000,000). */
  maxMemo?: number;
  /** Most values created (default 20,000,000). */
  maxObjects?: number;
}

export interface UnpickleResult {
  value: unknown;
  /** Offset just past the STOP opcode (legacy files hold several pickles in a row). */
  end: number;
}

/** BUILD state set on dicts, kept beside them so it never mixes with their items. */
export const attributes = new WeakMap<object, Map<unknown, unknown>>();

/** State set by BUILD on a dict/OrderedDict (e.g. `_metadata`), if any. */
export function pyAttributes(obj: object): Map<unknown, unknown> | undefined {
  return attributes.get(obj);
}

/** A value as an error message names it (`a dict`, `the global os.system`, ...). */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return `a sequence of ${v.length}`;
  if (v instanceof Map) return 'a dict';
  if (v instanceof Set) return 'a set';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyGlobal) return `the global ${v.path}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  return `${typeof v} ${String(v)}`;
}
