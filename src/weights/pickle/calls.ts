// The globals a checkpoint may name, and what REDUCE does with each: the
// allow-list of torch.load(weights_only=True), enforced at the GLOBAL opcode
// itself so nothing else is ever even represented. Each callable is our own
// small implementation; nothing is imported or evaluated.
import { CheckpointError } from '../errors';
import type { Machine } from './machine';
import { DTypeRef, PyGlobal, STORAGE_TYPES, StorageType, describe } from './values';

type Call = (m: Machine, args: unknown[], path: string) => unknown;

/** `torch.<name>` dtype globals (torch >= 2 may pickle them in tensor metadata). */
const DTYPES = new Set([
  'float32',
  'float',
  'float16',
  'half',
  'bfloat16',
  'float64',
  'double',
  'int64',
  'long',
  'int32',
  'int',
  'int16',
  'short',
  'int8',
  'uint8',
  'bool',
]);

const orderedDict: Call = (m, args) => {
  const d = new Map<unknown, unknown>();
  if (args.length === 0) return d;
  for (const pair of m.expectItems(args[0], 'OrderedDict items')) {
    if (!Array.isArray(pair) || pair.length !== 2) return m.fail('BAD_PICKLE', 'OrderedDict items must be pairs');
    d.set(pair[0], pair[1]);
  }
  return d;
};

/** _rebuild_tensor(_v2)(storage, storage_offset, size, stride[, requires_grad, hooks, metadata]). */
const rebuildTensor =
  (v2: boolean): Call =>
  (m, args) => {
    const make = m.options.makeTensor;
    if (!make) return m.fail('BAD_PICKLE', 'tensors are not expected here');
    if (args.length < 4) m.fail('BAD_PICKLE', `_rebuild_tensor expects at least 4 arguments but received ${args.length}`);
    const size = m.expectIntArray(args[2], 'size');
    const stride = m.expectIntArray(args[3], 'stride');
    if (size.length !== stride.length) m.fail('BAD_PICKLE', `size has ${size.length} dimensions but stride has ${stride.length}`);
    const t = make({
      storage: args[0],
      storageOffset: m.expectInt(args[1], 'storage_offset'),
      size,
      stride,
      requiresGrad: v2 ? args[4] === true : false,
    });
    if (t !== null && typeof t === 'object') m.tensors.add(t);
    return t;
  };

/** A Parameter is its tensor for our purposes. */
const parameter: Call = (m, args, path) => {
  if (args.length < 1 || !m.tensors.has(args[0] as object)) m.fail('BAD_PICKLE', `${path} expects a tensor`);
  return args[0];
};

const set: Call = (m, args) => new Set(args.length ? m.expectItems(args[0], 'set') : []);

const frozenset: Call = (m, args) => {
  const s = new Set(args.length ? m.expectItems(args[0], 'frozenset') : []);
  m.frozen.add(s);
  return s;
};

const bytes: Call = (m, args) => {
  if (args.length === 0) return new Uint8Array(0);
  if (args[0] instanceof Uint8Array) return args[0];
  return Uint8Array.from(m.expectIntArray(args[0], 'bytes'));
};

/** How protocol 2 pickles Python 3 bytes: encode(latin-1 text, 'latin1'). */
const codecsEncode: Call = (m, args) => {
  const [text, enc] = args;
  if (typeof text !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) {
    return m.fail('BAD_PICKLE', `_codecs.encode is only accepted as encode(str, 'latin1')`);
  }
  const out = new Uint8Array(text.length);
  for (let i = 0; i < out.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 255) m.fail('BAD_PICKLE', '_codecs.encode text is not latin-1');
    out[i] = c;
  }
  return out;
};

/** Every callable a checkpoint may name, by `module.name`. */
const CALLS: ReadonlyMap<string, Call> = new Map<string, Call>([
  ['collections.OrderedDict', orderedDict],
  ['torch._utils._rebuild_tensor_v2', rebuildTensor(true)],
  ['torch._utils._rebuild_tensor', rebuildTensor(false)],
  ['torch._utils._rebuild_parameter', parameter],
  ['torch._utils._rebuild_parameter_with_state', parameter],
  ['torch.nn.parameter.Parameter', parameter],
  ['torch.Size', (m, args) => (args.length === 0 ? [] : m.expectIntArray(args[0], 'torch.Size'))],
  ['builtins.set', set],
  ['__builtin__.set', set],
  ['builtins.frozenset', frozenset],
  ['__builtin__.frozenset', frozenset],
  ['builtins.bytes', bytes],
  ['__builtin__.bytes', bytes],
  ['builtins.bytearray', bytes],
  ['__builtin__.bytearray', bytes],
  ['_codecs.encode', codecsEncode],
]);

/** The only class NEWOBJ may instantiate, as weights_only allows. */
export const PARAMETER_CLASS = 'torch.nn.parameter.Parameter';

/**
 * What GLOBAL/STACK_GLOBAL push: an allow-listed callable, a storage type or
 * a dtype.
 * @throws CheckpointError FORBIDDEN_GLOBAL naming any other global.
 */
export function resolveGlobal(m: Machine, module: string, name: string): unknown {
  const path = `${module}.${name}`;
  if (CALLS.has(path)) return new PyGlobal(path);
  if (module === 'torch' && Object.hasOwn(STORAGE_TYPES, name)) return new StorageType(name, STORAGE_TYPES[name]);
  if (module === 'torch' && DTYPES.has(name)) return new DTypeRef(name);
  throw new CheckpointError(
    'FORBIDDEN_GLOBAL',
    `Refusing to load global '${path}' from checkpoint${m.file ? ` ${m.file}` : ''}: only tensors, containers and plain values are allowed`,
    m.file,
  );
}

/** REDUCE: runs our implementation of an allow-listed callable on an argument tuple. */
export function callGlobal(m: Machine, fn: unknown, args: unknown): unknown {
  if (!(fn instanceof PyGlobal)) return m.fail('BAD_PICKLE', `cannot call ${describe(fn)}`);
  if (!Array.isArray(args)) return m.fail('BAD_PICKLE', `arguments must be a tuple but received ${describe(args)}`);
  const call = CALLS.get(fn.path);
  if (!call) return m.fail('BAD_PICKLE', `cannot call ${fn.path}`);
  return call(m, args, fn.path);
}
