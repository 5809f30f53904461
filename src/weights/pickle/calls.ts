// The globals a checkpoint may name, and what REDUCE does with each: the
// allow-list of torch.load(weights_only=True), enforced at the GLOBAL opcode
// itself. Any other global is refused there, or (a class) held back as an
// inert placeholder only to word the refusal (refusal.ts). Each callable is
// our own small implementation; nothing is imported or evaluated.
import type { Call, Machine } from './machine';
import { dtype, reconstruct, scalar } from './numpy';
import { INERT_CLASSES, SCRIPT_CALLS, counter, device, inertObject, isScriptModule, namespace } from './records';
import { refuseGlobal } from './refusal';
import { DTYPE_NAMES, TENSOR_CALLS, TENSOR_TYPES } from './tensor-calls';
import { DTypeRef, PyGlobal, STORAGE_TYPES, ScriptClass, StorageType, describe } from './values';

const orderedDict: Call = (m, args) => {
  const d = new Map<unknown, unknown>();
  if (args.length === 0) return d;
  for (const pair of m.expectItems(args[0], 'OrderedDict items')) {
    if (!Array.isArray(pair) || pair.length !== 2) return m.fail('BAD_PICKLE', 'OrderedDict items must be pairs');
    d.set(pair[0], pair[1]);
  }
  return d;
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
  ...TENSOR_CALLS,
  ['collections.OrderedDict', orderedDict],
  // torch 2.x's own weights_only allow-list has Counter (mmengine keeps one in message_hub).
  ['collections.Counter', counter],
  // Inert: an attribute record (timm's train.py saves its `args` beside the weights).
  ['argparse.Namespace', namespace],
  ['torch.device', device],
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
  // Inert numpy values (numpy.ts): mmengine/mmpretrain and timm keep metrics and
  // log histories beside the weights, and torch's weights_only docs have users
  // allow-list exactly these for such files. numpy 2 renamed numpy.core to numpy._core.
  ['numpy.core.multiarray._reconstruct', reconstruct],
  ['numpy._core.multiarray._reconstruct', reconstruct],
  ['numpy.core.multiarray.scalar', scalar],
  ['numpy._core.multiarray.scalar', scalar],
  ['numpy.dtype', dtype],
  ...[...INERT_CLASSES].map((c): [string, Call] => [c, inertObject]),
]);

/** The classes NEWOBJ may instantiate: Parameter as weights_only allows, the inert Namespace and HistoryBuffer. */
export const NEWOBJ_CLASSES: ReadonlySet<string> = new Set(['torch.nn.parameter.Parameter', 'argparse.Namespace', ...INERT_CLASSES]);

/** Globals that are only ever an argument (_reconstruct's class): named, never called. */
const ARGUMENT_TYPES: ReadonlySet<string> = new Set(['numpy.ndarray']);

/** The storage class torch 2.x pickles for untyped storages (v3 tensors): bytes. */
const UNTYPED_STORAGE = new Set(['torch.storage.UntypedStorage', 'torch.UntypedStorage']);

/**
 * What GLOBAL/STACK_GLOBAL push: an allow-listed callable, a tensor type,
 * numpy.ndarray, a storage type, a dtype or (TorchScript only) a
 * `__torch__` class.
 * @throws CheckpointError FORBIDDEN_GLOBAL naming any other global, or
 * PICKLED_MODULE where it is a model's class (see refusal.ts).
 */
export function resolveGlobal(m: Machine, module: string, name: string): unknown {
  const path = `${module}.${name}`;
  if (callable(m, path) || TENSOR_TYPES.has(path) || ARGUMENT_TYPES.has(path)) return new PyGlobal(path);
  if (module === 'torch' && Object.hasOwn(STORAGE_TYPES, name)) return new StorageType(name, STORAGE_TYPES[name]);
  if (UNTYPED_STORAGE.has(path)) return new StorageType('UntypedStorage', 'uint8');
  if (module === 'torch' && DTYPE_NAMES.has(name)) return new DTypeRef(name);
  if (m.options.torchScript && isScriptModule(module)) return new ScriptClass(path);
  return refuseGlobal(m, module, name);
}

/** Our implementation of `path`, if this run may call it. */
function callable(m: Machine, path: string): Call | undefined {
  return CALLS.get(path) ?? (m.options.torchScript ? SCRIPT_CALLS.get(path) : undefined);
}

/** REDUCE: runs our implementation of an allow-listed callable on an argument tuple. */
export function callGlobal(m: Machine, fn: unknown, args: unknown): unknown {
  if (!(fn instanceof PyGlobal)) return m.fail('BAD_PICKLE', `cannot call ${describe(fn)}`);
  if (!Array.isArray(args)) return m.fail('BAD_PICKLE', `arguments must be a tuple but received ${describe(args)}`);
  const call = callable(m, fn.path);
  if (!call) return m.fail('BAD_PICKLE', `cannot call ${fn.path}`);
  return call(m, args, fn.path);
}
