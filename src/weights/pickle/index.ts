// A safe unpickler for the pickles inside torch.save files.
//
// Why our own instead of npm `pickleparser` (0.2.1, checked with `npm view` and
// its README/source): pickleparser parses every opcode of protocols 0-5, but
// its default `nameResolver` turns ANY global (os.system, builtins.eval, ...)
// into a placeholder object and happily "calls" it on REDUCE, so a hostile
// file is accepted silently rather than refused at the opcode that names the
// global; BUILD copies attacker-chosen state onto objects with Object.assign
// (`__proto__` keys) and calls a `__setstate__` it finds on them; APPENDS uses
// `list.push(...items)` (stack overflow on big MARK groups); it has no bounds
// on MARK nesting, memo size or object count; LONG1 is read as unsigned; and
// its persistentResolver only receives the pid, with nothing to build tensors
// from `_rebuild_tensor_v2` against file offsets. We need the allow-list of
// `torch.load(weights_only=True)` enforced *during* execution, persistent ids
// handed to the container reader, typed errors, and hard bounds, so we own it.
//
// Layout: pickle/opcodes (names), pickle/machine (state and bounded
// primitives), pickle/ops-* (one small handler per opcode, by concern),
// pickle/dispatch (the opcode table), pickle/calls (the allow-list),
// pickle/tensor-calls (tensor rebuilds), pickle/records (Counter, Namespace,
// HistoryBuffer, torch.device, TorchScript objects), pickle/numpy (inert
// ndarrays, dtypes and scalars), pickle/refusal (FORBIDDEN_GLOBAL or
// PICKLED_MODULE), pickle/nesting (the check on the result). This file runs
// the loop.
import { HANDLERS } from './dispatch';
import { Machine, PickleTruncatedError } from './machine';
import { forbiddenGlobal, isRefusal } from './refusal';
import type { UnpickleOptions, UnpickleResult } from './values';

export { OP, opName, type OpName } from './opcodes';
export { PickleTruncatedError } from './machine';
export { pickledModule } from './refusal';
export { MAX_INERT_BYTES } from './numpy';
export {
  DTypeRef,
  InertObject,
  NumpyArray,
  NumpyDType,
  NumpyScalar,
  RefusedGlobal,
  STORAGE_TYPES,
  ScriptObject,
  StorageType,
  describe,
  pyAttributes,
  type StorageDTypeName,
  type TensorArgs,
  type UnpickleOptions,
  type UnpickleResult,
} from './values';

/**
 * Executes one pickle starting at `start`; stops at its STOP opcode. Never
 * evaluates or imports anything: globals outside the allow-list are refused
 * where they are named, or (classes) held back as inert placeholders until
 * the BUILD that tells a pickled nn.Module from anything else; either way
 * the pickle is refused.
 * @param buf - the input; only `buf[start..]` up to STOP is read
 * @param start - offset of the pickle's first opcode
 * @param options - file name for messages, persistent id and tensor hooks, bounds
 * @returns the value and the offset just past STOP
 * @throws CheckpointError FORBIDDEN_GLOBAL, PICKLED_MODULE (a whole
 * nn.Module: torch.save(model)), FORBIDDEN_OPCODE, BAD_PICKLE, LIMIT or
 * UNSUPPORTED_DTYPE; PickleTruncatedError (a CheckpointError TRUNCATED) when
 * the input ends first.
 * @example
 * ```ts
 * const { value } = unpickle(bytes, 0, { file: 'x.pkl' }); // a plain pickle: no tensors, no persistent ids
 * ```
 */
export function unpickle(buf: Uint8Array, start: number, options: UnpickleOptions = {}): UnpickleResult {
  const m = new Machine(buf, start, options);
  try {
    return run(m);
  } catch (x) {
    // Whatever went wrong after a global was held back, the file is refused for that global
    // (a truncated input is retried by the legacy reader on more of the file, so it stays).
    if (m.refused === undefined || x instanceof PickleTruncatedError || isRefusal(x)) throw x;
    throw forbiddenGlobal(m, m.refused);
  }
}

/** The dispatch loop, up to STOP. */
function run(m: Machine): UnpickleResult {
  const { buf, len } = m;
  for (;;) {
    const at = m.pos;
    if (at >= len) throw new PickleTruncatedError(at + 1, len, '(no STOP opcode)', m.file);
    const op = buf[at];
    m.opAt = at;
    m.op = op;
    m.pos = at + 1;
    const handler = HANDLERS[op];
    if (handler === undefined) return m.fail('BAD_PICKLE', `unknown opcode 0x${op.toString(16).padStart(2, '0')} (not a pickle, or corrupt)`);
    if (handler(m) === true) return { value: m.result, end: m.pos };
  }
}
