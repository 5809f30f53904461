// Inert records that checkpoints carry beside their weights, built from
// their pickled state without running any class's code: collections.Counter
// (mmengine's message_hub), argparse.Namespace (timm's train.py `args`),
// mmengine's HistoryBuffer, torch.device, and the objects of a TorchScript
// archive's data.pkl. (numpy's values are in numpy.ts.)
import type { Call, Machine } from './machine';
import { InertObject, type ScriptClass, ScriptObject, describe, namespaces } from './values';

/** Counter(dict): torch 2.x's weights_only allows it; a Map of the counts, as OrderedDict. */
export const counter: Call = (m, args) => {
  if (args.length === 0) return new Map();
  if (!(args[0] instanceof Map)) return m.fail('BAD_PICKLE', `Counter expects a dict but received ${describe(args[0])}`);
  return new Map(args[0]);
};

/** torch.device('cuda', 0) or ('cuda:0') → 'cuda:0', as str(device) prints it. */
export const device: Call = (m, args) => {
  const [type, index] = args;
  if (typeof type !== 'string' || !/^[a-z_][a-z0-9_]{0,31}(:\d{1,4})?$/.test(type) || args.length > 2) {
    return m.fail('BAD_PICKLE', 'torch.device expects a device type such as cpu or cuda:0');
  }
  if (index === undefined || index === null) return type;
  return `${type}:${m.expectInt(index, 'device index')}`;
};

/** argparse.Namespace() by NEWOBJ/REDUCE with no arguments: an empty null-prototype object that BUILD fills. */
export const namespace: Call = (m, args, path) => {
  if (args.length !== 0) m.fail('BAD_PICKLE', `${path} takes no positional arguments but received ${args.length}`);
  const ns: Record<string, unknown> = Object.create(null);
  namespaces.add(ns);
  return ns;
};

/** BUILD on a Namespace: its attributes, as own data properties (no setter, no prototype to reach). */
export function setNamespaceState(m: Machine, ns: Record<string, unknown>, state: unknown): void {
  if (!(state instanceof Map)) return m.fail('BAD_PICKLE', `Namespace state must be a dict but received ${describe(state)}`);
  for (const [k, v] of state) {
    if (typeof k !== 'string') m.fail('BAD_PICKLE', `Namespace attribute names must be strings but one is ${describe(k)}`);
    Object.defineProperty(ns, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
}

/**
 * Plain classes kept as InertObjects: mmengine's HistoryBuffer (the values
 * of message_hub.log_scalars in every mmengine/mmpretrain checkpoint) holds
 * only `max_length` and two numpy arrays, so its record is all of it.
 */
export const INERT_CLASSES: ReadonlySet<string> = new Set(['mmengine.logging.history_buffer.HistoryBuffer']);

/**
 * NEWOBJ/REDUCE of an inert class with no arguments (copyreg.__newobj__, as
 * protocol 2 pickles a plain object): an empty record BUILD fills.
 * @throws CheckpointError BAD_PICKLE when given arguments.
 */
export const inertObject: Call = (m, args, path) => {
  if (args.length !== 0) m.fail('BAD_PICKLE', `${path} takes no positional arguments but received ${args.length}`);
  return new InertObject(path);
};

/**
 * BUILD on an InertObject: its __dict__, or (__dict__, slots) with either None, becomes its attributes.
 * @throws CheckpointError BAD_PICKLE for another state, a name that is not a string, or a second BUILD.
 */
export function setInertState(m: Machine, obj: InertObject, state: unknown): void {
  if (obj.built) m.fail('BAD_PICKLE', `${obj.className} object is built twice`);
  obj.built = true;
  const parts = Array.isArray(state) && state.length === 2 ? state : [state];
  for (const part of parts) {
    if (part === null) continue;
    if (!(part instanceof Map)) return m.fail('BAD_PICKLE', `${obj.className} state must be a dict but received ${describe(part)}`);
    for (const [k, v] of part) {
      if (typeof k !== 'string') m.fail('BAD_PICKLE', `${obj.className} attribute names must be strings but one is ${describe(k)}`);
      obj.attributes.set(k, v);
    }
  }
}

/** NEWOBJ of a `__torch__.*` class: a record of its name; TorchScript passes no arguments. */
export function scriptObject(m: Machine, cls: ScriptClass, args: unknown): ScriptObject {
  if (!Array.isArray(args) || args.length !== 0) m.fail('BAD_PICKLE', `${cls.path} is constructed with arguments`);
  return new ScriptObject(cls.path);
}

/** BUILD on a ScriptObject: a dict state becomes its attributes (submodules, tensors, flags); any other is kept as is. */
export function setScriptState(m: Machine, obj: ScriptObject, state: unknown): void {
  if (obj.state !== undefined) m.fail('BAD_PICKLE', `${obj.className} object is built twice`);
  obj.state = state;
  if (!(state instanceof Map)) return;
  for (const [k, v] of state) {
    if (typeof k !== 'string') m.fail('BAD_PICKLE', `${obj.className} attribute names must be strings but one is ${describe(k)}`);
    obj.attributes.set(k, v);
  }
}

/** torch.jit._pickle's helpers: each returns its first argument (the list, or the value whose type tag it restores). */
const identity: Call = (m, args, path) => {
  if (args.length < 1 || args.length > 2) m.fail('BAD_PICKLE', `${path} expects 1 or 2 arguments but received ${args.length}`);
  return args[0];
};

/** What a TorchScript data.pkl may call beyond a checkpoint's allow-list. */
export const SCRIPT_CALLS: ReadonlyMap<string, Call> = new Map<string, Call>(
  ['build_intlist', 'build_tensorlist', 'build_doublelist', 'build_boollist', 'restore_type_tag'].map((n) => [`torch.jit._pickle.${n}`, identity]),
);

/** Whether `module` names a TorchScript class (`__torch__` or under it). */
export function isScriptModule(module: string): boolean {
  return module === '__torch__' || module.startsWith('__torch__.');
}
