// The allow-listed callables that rebuild tensors, as torch.save writes them
// (1.x and 2.x): _rebuild_tensor(_v2, _v3), the Parameter rebuilds and
// _rebuild_from_type_v2's wrapper. Each hands type-checked arguments to the
// container reader's makeTensor; nothing of torch's is run.
import { CheckpointError } from '../errors';
import type { Call, Machine } from './machine';
import { DTypeRef, PyGlobal, type StorageDTypeName, describe } from './values';

/** `torch.<name>` dtypes whose tensors we load, by every name torch pickles them under. */
const LOADABLE_DTYPES: Readonly<Record<string, StorageDTypeName>> = {
  float32: 'float32',
  float: 'float32',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
  float64: 'float64',
  double: 'float64',
  int64: 'int64',
  long: 'int64',
  int32: 'int32',
  int: 'int32',
  int16: 'int16',
  short: 'int16',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
};

/**
 * Every `torch.<dtype>` global torch 2.x may pickle (its weights_only
 * allow-list): names only, so a checkpoint holding e.g. a uint16 tensor is
 * refused as UNSUPPORTED_DTYPE rather than as a forbidden global.
 */
export const DTYPE_NAMES: ReadonlySet<string> = new Set([
  ...Object.keys(LOADABLE_DTYPES),
  ...['uint16', 'uint32', 'uint64', 'complex32', 'complex64', 'complex128', 'bits8', 'bits16', 'bits1x8', 'bits2x4', 'bits4x2'],
  ...['float8_e4m3fn', 'float8_e4m3fnuz', 'float8_e5m2', 'float8_e5m2fnuz', 'float8_e8m0fnu', 'float4_e2m1fn_x2'],
  ...['qint8', 'qint32', 'quint8', 'quint4x2', 'quint2x4'],
  ...[1, 2, 3, 4, 5, 6, 7].flatMap((n) => [`int${n}`, `uint${n}`]),
]);

/** The element type of _rebuild_tensor_v3's dtype argument, or UNSUPPORTED_DTYPE. */
function loadableDType(m: Machine, v: unknown): StorageDTypeName {
  if (!(v instanceof DTypeRef)) return m.fail('BAD_PICKLE', `_rebuild_tensor_v3 expects a torch dtype but received ${describe(v)}`);
  const dtype = LOADABLE_DTYPES[v.name];
  if (dtype) return dtype;
  throw new CheckpointError(
    'UNSUPPORTED_DTYPE',
    `Checkpoint${m.file ? ` ${m.file}` : ''} holds a tensor of dtype torch.${v.name}, which the package cannot load (float, integer and bool types only)`,
    m.file,
  );
}

/**
 * _rebuild_tensor(storage, offset, size, stride),
 * _rebuild_tensor_v2(..., requires_grad, hooks[, metadata]) and
 * _rebuild_tensor_v3(..., requires_grad, hooks, dtype[, metadata]): v3 is
 * what torch 2.x writes for dtypes without a legacy storage class, on an
 * UntypedStorage (bytes) viewed as `dtype`.
 */
const rebuildTensor =
  (version: 1 | 2 | 3): Call =>
  (m, args, path) => {
    const make = m.options.makeTensor;
    if (!make) return m.fail('BAD_PICKLE', 'tensors are not expected here');
    const least = version === 3 ? 7 : 4;
    if (args.length < least) m.fail('BAD_PICKLE', `${path} expects at least ${least} arguments but received ${args.length}`);
    const size = m.expectIntArray(args[2], 'size');
    const stride = m.expectIntArray(args[3], 'stride');
    if (size.length !== stride.length) m.fail('BAD_PICKLE', `size has ${size.length} dimensions but stride has ${stride.length}`);
    const t = make({
      storage: args[0],
      storageOffset: m.expectInt(args[1], 'storage_offset'),
      size,
      stride,
      requiresGrad: version > 1 ? args[4] === true : false,
      ...(version === 3 ? { dtype: loadableDType(m, args[6]) } : {}),
    });
    if (t !== null && typeof t === 'object') m.tensors.add(t);
    return t;
  };

/** A Parameter is its tensor for our purposes (its requires_grad, hooks and Python state are not weights). */
const parameter: Call = (m, args, path) => {
  if (args.length < 1 || !m.tensors.has(args[0] as object)) m.fail('BAD_PICKLE', `${path} expects a tensor`);
  return args[0];
};

/** The calls _rebuild_from_type_v2 may wrap. */
const REBUILDS: ReadonlyMap<string, Call> = new Map<string, Call>([
  ['torch._utils._rebuild_tensor_v3', rebuildTensor(3)],
  ['torch._utils._rebuild_tensor_v2', rebuildTensor(2)],
  ['torch._utils._rebuild_tensor', rebuildTensor(1)],
  ['torch._utils._rebuild_parameter', parameter],
  ['torch._utils._rebuild_parameter_with_state', parameter],
]);

/** The types _rebuild_from_type_v2 may cast to: a tensor subclass elsewhere is its class's code. */
export const TENSOR_TYPES: ReadonlySet<string> = new Set(['torch.Tensor', 'torch.nn.parameter.Parameter']);

/**
 * _rebuild_from_type_v2(func, new_type, args, state): what torch.save writes
 * for a tensor with Python attributes or of a subclass. Allowed only when
 * func is a rebuild above and new_type plain Tensor or Parameter; the state
 * (Python attributes) is not weights and is dropped.
 */
const fromTypeV2: Call = (m, args, path) => {
  const [func, newType, inner] = args;
  if (args.length !== 4) m.fail('BAD_PICKLE', `${path} expects 4 arguments but received ${args.length}`);
  const call = func instanceof PyGlobal ? REBUILDS.get(func.path) : undefined;
  if (!call) return m.fail('BAD_PICKLE', `${path} may only wrap a tensor rebuild but wraps ${describe(func)}`);
  if (!(newType instanceof PyGlobal) || !TENSOR_TYPES.has(newType.path)) {
    return m.fail('BAD_PICKLE', `${path} may only make a torch.Tensor or Parameter but names ${describe(newType)}`);
  }
  if (!Array.isArray(inner)) return m.fail('BAD_PICKLE', `${path} expects an argument tuple but received ${describe(inner)}`);
  const t = call(m, inner, (func as PyGlobal).path);
  if (t === null || typeof t !== 'object' || !m.tensors.has(t)) m.fail('BAD_PICKLE', `${path} did not rebuild a tensor`);
  return t;
};

/** The tensor callables by `module.name`. */
export const TENSOR_CALLS: ReadonlyMap<string, Call> = new Map<string, Call>([
  ...REBUILDS,
  ['torch.nn.parameter.Parameter', parameter],
  ['torch._tensor._rebuild_from_type_v2', fromTypeV2],
]);
