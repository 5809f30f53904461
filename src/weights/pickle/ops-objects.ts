// Opcode handlers that name globals, call them, set object state and load
// persistent ids: the opcodes an attack goes through. Globals are checked
// against the allow-list where they are named; the opcodes that construct
// arbitrary instances, use copyreg codes or out-of-band buffers are refused.
import { NEWOBJ_CLASSES, callGlobal, resolveGlobal } from './calls';
import type { Handler, Machine } from './machine';
import { OP } from './opcodes';
import { setArrayState, setDTypeState } from './numpy';
import { scriptObject, setInertState, setNamespaceState, setScriptState } from './records';
import { buildRefused, instantiateRefused } from './refusal';
import {
  InertObject,
  NumpyArray,
  NumpyDType,
  PyGlobal,
  RefusedGlobal,
  RefusedInstance,
  ScriptClass,
  ScriptObject,
  attributes,
  describe,
  namespaces,
} from './values';

const global: Handler = (m) => {
  const module = m.line();
  const name = m.line();
  m.push(resolveGlobal(m, module, name));
};

const stackGlobal: Handler = (m) => {
  const name = m.pop();
  const module = m.pop();
  if (typeof module !== 'string' || typeof name !== 'string') return m.fail('BAD_PICKLE', 'STACK_GLOBAL expects two strings');
  m.push(resolveGlobal(m, module, name));
};

/** REDUCE: an allow-listed callable, or a held-back class (a placeholder, nothing is called). */
const reduce: Handler = (m) => {
  const args = m.pop();
  const fn = m.pop();
  m.push(fn instanceof RefusedGlobal ? instantiateRefused(m, fn, args) : callGlobal(m, fn, args));
};

/**
 * NEWOBJ: Parameter(tensor, requires_grad) as weights_only allows, an inert
 * argparse.Namespace or HistoryBuffer, a TorchScript object (its archive only) or a
 * held-back class's placeholder.
 */
const newobj: Handler = (m) => {
  const args = m.pop();
  const cls = m.pop();
  if (cls instanceof PyGlobal && NEWOBJ_CLASSES.has(cls.path)) return m.push(callGlobal(m, cls, args));
  if (cls instanceof ScriptClass) return m.push(scriptObject(m, cls, args));
  if (cls instanceof RefusedGlobal) return m.push(instantiateRefused(m, cls, args));
  m.fail('BAD_PICKLE', `cannot instantiate ${describe(cls)}`);
};

/**
 * BUILD on a dict keeps the state beside it (OrderedDict.__reduce__ state is
 * vars(self), e.g. {'_metadata': ...}; (state, slotstate) also allowed).
 * On a tensor the state is Python attributes (hooks): not needed for weights.
 * A Namespace, TorchScript object or inert object takes its attributes, a
 * numpy dtype or array its type and data; a held-back class's placeholder
 * ends the run with its refusal.
 */
const build: Handler = (m) => {
  const state = m.pop();
  const inst = m.top();
  if (inst instanceof Map) return setDictState(m, inst, state);
  if (inst instanceof ScriptObject) return setScriptState(m, inst, state);
  if (inst instanceof InertObject) return setInertState(m, inst, state);
  if (inst instanceof NumpyDType) return setDTypeState(m, inst, state);
  if (inst instanceof NumpyArray) return setArrayState(m, inst, state);
  if (inst instanceof RefusedInstance) return buildRefused(m, inst, state);
  if (inst !== null && typeof inst === 'object' && namespaces.has(inst)) return setNamespaceState(m, inst as Record<string, unknown>, state);
  if (inst !== null && typeof inst === 'object' && m.tensors.has(inst)) return;
  m.fail('BAD_PICKLE', `can only BUILD dicts, tensors and records but the target is ${describe(inst)}`);
};

function setDictState(m: Machine, dict: Map<unknown, unknown>, state: unknown): void {
  const parts = Array.isArray(state) ? state : [state];
  const attrs = attributes.get(dict) ?? new Map<unknown, unknown>();
  for (const part of parts) {
    if (part === null) continue;
    if (!(part instanceof Map)) m.fail('BAD_PICKLE', `dict state must be a dict but received ${describe(part)}`);
    for (const [k, v] of part) attrs.set(k, v);
  }
  attributes.set(dict, attrs);
}

/** Hands a persistent id (torch's storages) to the container reader. */
function persistent(m: Machine, pid: unknown): void {
  const load = m.options.persistentLoad;
  if (!load) m.fail('BAD_PICKLE', 'persistent ids are not expected here');
  m.push(load(pid));
}

const forbidden =
  (why: string): Handler =>
  (m) =>
    m.fail('FORBIDDEN_OPCODE', why);
const NO_INSTANCES = forbidden('constructing class instances is not allowed in a checkpoint');
const NO_EXTENSIONS = forbidden('copyreg extension codes are not allowed in a checkpoint');
const NO_BUFFERS = forbidden('out-of-band buffers are not allowed in a checkpoint');

export const OBJECT_OPS: ReadonlyArray<readonly [number, Handler]> = [
  [OP.GLOBAL, global],
  [OP.STACK_GLOBAL, stackGlobal],
  [OP.REDUCE, reduce],
  [OP.NEWOBJ, newobj],
  [OP.BUILD, build],
  [OP.BINPERSID, (m) => persistent(m, m.pop())],
  [OP.PERSID, (m) => persistent(m, m.line())],
  [OP.INST, NO_INSTANCES],
  [OP.OBJ, NO_INSTANCES],
  [OP.NEWOBJ_EX, NO_INSTANCES],
  [OP.EXT1, NO_EXTENSIONS],
  [OP.EXT2, NO_EXTENSIONS],
  [OP.EXT4, NO_EXTENSIONS],
  [OP.NEXT_BUFFER, NO_BUFFERS],
  [OP.READONLY_BUFFER, NO_BUFFERS],
];
