// The JS values an unpickled checkpoint is made of, beyond plain ones, and
// the options and result of `unpickle`.
//
// Value mapping: None→null, bool→boolean, int→number (bigint beyond 2^53),
// float→number, str→string, bytes→Uint8Array, tuple/list→Array, dict,
// OrderedDict and Counter→Map (insertion ordered), set/frozenset→Set,
// torch.device→its string ('cpu', 'cuda:0'), argparse.Namespace→a
// null-prototype object of its attributes, a TorchScript object→ScriptObject,
// numpy's dtype/ndarray→NumpyDType/NumpyArray, a numpy scalar→number,
// bigint or boolean (NumpyScalar for types not decoded), mmengine's
// HistoryBuffer→InertObject.
// State that arrives through BUILD on a dict (an OrderedDict's `_metadata`)
// is kept out of the Map and can be read with `pyAttributes(map)`.

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

/** A `__torch__.*` class of a TorchScript archive: NEWOBJ makes an inert ScriptObject of it, nothing else. */
export class ScriptClass {
  constructor(readonly path: string) {}
}

/**
 * An object of a TorchScript archive (`__torch__.<module path>.<Class>`):
 * its class name and the state BUILD gave it, never its code. `state` is
 * that state as pickled; when it is a dict (a module's submodules, tensors,
 * flags) `attributes` holds its items.
 */
export class ScriptObject {
  readonly attributes = new Map<string, unknown>();
  /** The BUILD state; undefined until built (a custom `__getstate__` may give a tuple). */
  state: unknown = undefined;
  constructor(readonly className: string) {}
}

/**
 * A class-like global outside the allow-list, held back rather than refused
 * at once so that the BUILD after it can tell a pickled nn.Module from
 * anything else. It cannot be called or stored: the unpickler refuses the
 * file (FORBIDDEN_GLOBAL or PICKLED_MODULE) before returning any value.
 */
export class RefusedGlobal {
  constructor(readonly path: string) {}
}

/** What NEWOBJ/REDUCE of a RefusedGlobal pushes: an empty placeholder, nothing constructed. */
export class RefusedInstance {
  constructor(readonly path: string) {}
}

/**
 * A numpy.dtype as pickled (`dtype('f8', False, True)`, then BUILD with
 * `(3, '<', ...)`): its type, never a numpy object. `str` is numpy's
 * dtype.str: byte order, kind, item size ('<f8', '|b1', '<U8', '|O').
 */
export class NumpyDType {
  /** '<' or '>'; '|' where order does not apply. Until BUILD, what numpy assumes on a little-endian machine. */
  byteOrder: '<' | '>' | '|';
  str: string;
  built = false;
  constructor(
    /** numpy's kind character: b i u f c m M O S U V. */
    readonly kind: string,
    /** Bytes per element. */
    public itemSize: number,
  ) {
    this.byteOrder = itemSize <= 1 || 'OSV'.includes(kind) ? '|' : '<';
    this.str = dtypeStr(this);
  }
}

/** numpy's dtype.str for a dtype record. */
export function dtypeStr(d: NumpyDType): string {
  return `${d.byteOrder}${d.kind}${d.kind === 'O' ? '' : d.itemSize}`;
}

/**
 * A numpy.ndarray as pickled (`_reconstruct(ndarray, (0,), b'b')`, then
 * BUILD with `(1, shape, dtype, is_fortran, rawdata)`): inert data, never a
 * tensor. Its shape is `dims`, not `shape`, so that nothing that takes
 * "an object with a shape array" for a tensor can take this for one.
 */
export class NumpyArray {
  /** numpy's dtype.str ('<f8'); '|i1' (the empty array `_reconstruct` makes) until BUILD. */
  dtype = '|i1';
  dims: number[] = [0];
  fortranOrder = false;
  /** Bytes the elements take (element count × item size). */
  byteLength = 0;
  /** The elements' bytes, in the dtype's byte order, when at most 1 MiB; otherwise dropped (undefined). */
  raw?: Uint8Array;
  /** An object array's elements (dtype '|O'). */
  items?: unknown[];
  built = false;
}

/** A numpy scalar of a type not decoded to a JS value (complex, str, datetime, ...): its dtype and bytes (up to 1 MiB). */
export class NumpyScalar {
  constructor(
    readonly dtype: string,
    readonly raw?: Uint8Array,
  ) {}
}

/** An object of an allow-listed plain class (mmengine's HistoryBuffer): its class name and BUILD attributes, never its code. */
export class InertObject {
  readonly attributes = new Map<string, unknown>();
  built = false;
  constructor(readonly className: string) {}
}

/** argparse.Namespace values (null-prototype objects), so the nesting check can walk them. */
export const namespaces = new WeakSet<object>();

/** Arguments of torch._utils._rebuild_tensor(_v2, _v3), already type-checked. */
export interface TensorArgs {
  storage: unknown;
  storageOffset: number;
  size: number[];
  stride: number[];
  requiresGrad: boolean;
  /** _rebuild_tensor_v3's dtype: the storage is then bytes (UntypedStorage) viewed as this type. */
  dtype?: StorageDTypeName;
}

export interface UnpickleOptions {
  /** Named in error messages. */
  file?: string;
  /** Called for PERSID/BINPERSID; without it persistent ids are refused. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Builds the JS value for a tensor; without it tensors are refused. */
  makeTensor?: (args: TensorArgs) => unknown;
  /** A TorchScript archive's data.pkl: `__torch__.*` classes become ScriptObjects, torch.jit._pickle helpers are allowed. */
  torchScript?: boolean;
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
  if (v instanceof PyGlobal || v instanceof ScriptClass || v instanceof RefusedGlobal) return `the global ${v.path}`;
  if (v instanceof ScriptObject || v instanceof InertObject) return `a ${v.className} object`;
  if (v instanceof NumpyArray) return `a numpy array of ${v.dtype}`;
  if (v instanceof NumpyDType) return `the numpy dtype ${v.str}`;
  if (v instanceof NumpyScalar) return `a numpy scalar of ${v.dtype}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  return `${typeof v} ${String(v)}`;
}
