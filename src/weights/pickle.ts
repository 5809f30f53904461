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
// handed to the container reader, typed errors, and hard bounds; that is ~500
// lines, so we own it.
//
// Value mapping: None→null, bool→boolean, int→number (bigint beyond 2^53),
// float→number, str→string, bytes→Uint8Array, tuple/list→Array, dict and
// OrderedDict→Map (insertion ordered), set/frozenset→Set. State that arrives
// through BUILD on a dict (an OrderedDict's `_metadata`) is kept out of the
// Map and can be read with `pyAttributes(map)`.
import { CheckpointError, inFile } from './errors';

/** A `torch.*Storage` class named in a pickle; `dtype` is its element type. */
export class StorageType {
  constructor(readonly name: string, readonly dtype: StorageDTypeName) {}
}
/** A `torch.<dtype>` global (torch >= 2 may pickle dtypes in tensor metadata). */
export class DTypeRef {
  constructor(readonly name: string) {}
}

export type StorageDTypeName =
  | 'float32' | 'float16' | 'bfloat16' | 'float64'
  | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const STORAGE_TYPES: Readonly<Record<string, StorageDTypeName>> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64', LongStorage: 'int64', IntStorage: 'int32',
  ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool',
};

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

/**
 * The input ended inside the pickle. `needed` is the offset the pickle wanted
 * to read up to, so a caller holding only part of a file can read more.
 */
export class PickleTruncatedError extends CheckpointError {
  /** The reason without the file name, for callers that wrap it. */
  readonly detail: string;
  constructor(readonly needed: number, available: number, what: string, file?: string) {
    const detail = `the pickle ${what} needs ${needed} bytes of input but only ${available} are there`;
    super('TRUNCATED', `Checkpoint${file ? ` ${file}` : ''} is truncated: ${detail}`, file);
    this.name = 'CheckpointError';
    this.detail = detail;
  }
}

// Globals we resolve. Everything else is refused at the GLOBAL opcode itself.
const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch.nn.parameter.Parameter',
  'torch.Size',
  'builtins.set', 'builtins.frozenset', '__builtin__.set', '__builtin__.frozenset',
  'builtins.bytes', '__builtin__.bytes', 'builtins.bytearray', '__builtin__.bytearray',
  '_codecs.encode',
]);
const DTYPES = new Set([
  'float32', 'float', 'float16', 'half', 'bfloat16', 'float64', 'double',
  'int64', 'long', 'int32', 'int', 'int16', 'short', 'int8', 'uint8', 'bool',
]);

class PyGlobal {
  constructor(readonly path: string) {}
}

const attributes = new WeakMap<object, Map<unknown, unknown>>();
/** State set by BUILD on a dict/OrderedDict (e.g. `_metadata`), if any. */
export function pyAttributes(obj: object): Map<unknown, unknown> | undefined {
  return attributes.get(obj);
}

const OPNAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT',
  0x49: 'INT', 0x4a: 'BININT', 0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE',
  0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE', 0x53: 'STRING', 0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND', 0x62: 'BUILD',
  0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET',
  0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT',
  0x71: 'BINPUT', 0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE',
  0x75: 'SETITEMS', 0x47: 'BINFLOAT', 0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2',
  0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2', 0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE',
  0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE',
  0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET',
  0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME', 0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

function describe(v: unknown): string {
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

/**
 * Executes one pickle starting at `start`; stops at its STOP opcode. Throws
 * CheckpointError for anything not allowed or malformed; never evaluates or
 * imports anything.
 */
export function unpickle(buf: Uint8Array, start: number, options: UnpickleOptions = {}): UnpickleResult {
  const file = options.file;
  const maxDepth = options.maxDepth ?? 1000;
  const maxMemo = options.maxMemo ?? 1_000_000;
  const maxObjects = options.maxObjects ?? 20_000_000;
  const where = inFile(file);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const len = buf.length;

  let pos = start;
  let opName = '';
  let opAt = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const tuples = new WeakSet<object>();   // arrays that are tuples (immutable in Python)
  const frozen = new WeakSet<object>();   // frozensets
  const tensors = new WeakSet<object>();  // values returned by makeTensor
  let objects = 0;

  const fail = (code: 'BAD_PICKLE' | 'LIMIT' | 'FORBIDDEN_OPCODE', msg: string): never => {
    throw new CheckpointError(code, `Cannot unpickle${where}: ${opName} at byte ${opAt}: ${msg}`, file);
  };
  const need = (n: number): void => {
    if (n > len - pos) throw new PickleTruncatedError(pos + n, len, `(${opName} at byte ${opAt})`, file);
  };
  const push = (v: unknown): void => {
    if (++objects > maxObjects) fail('LIMIT', `more than ${maxObjects} values`);
    stack.push(v);
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail('BAD_PICKLE', 'stack underflow (malformed pickle)');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail('BAD_PICKLE', 'stack underflow (malformed pickle)');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) fail('BAD_PICKLE', 'no MARK to close (malformed pickle)');
    stack = prev as unknown[];
    return items;
  };
  const u8 = (): number => { need(1); return buf[pos++]; };
  const u16 = (): number => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const u32 = (): number => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const i32 = (): number => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u64 = (): number => {
    need(8);
    const lo = view.getUint32(pos, true);
    const hi = view.getUint32(pos + 4, true);
    pos += 8;
    return hi * 2 ** 32 + lo; // may exceed 2^53: only used as a length, checked by need()
  };
  const bytes = (n: number): Uint8Array => {
    need(n);
    const out = buf.slice(pos, pos + n); // a copy: values must not alias the file buffer
    pos += n;
    return out;
  };
  const line = (): string => {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) throw new PickleTruncatedError(len + 1, len, `(${opName} at byte ${opAt}: no end of line)`, file);
    const s = latin1.decode(buf.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const intValue = (s: string): number | bigint => {
    const t = s.endsWith('L') ? s.slice(0, -1) : s;
    if (!/^[-+]?\d+$/.test(t) || t.length > 400) fail('BAD_PICKLE', `not an integer: ${JSON.stringify(s.slice(0, 40))}`);
    const b = BigInt(t);
    return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
  };
  const longValue = (n: number): number | bigint => {
    if (n > 1024) fail('LIMIT', `integer of ${n} bytes (at most 1024 accepted)`);
    need(n);
    if (n === 0) return 0;
    let b = 0n;
    for (let i = n - 1; i >= 0; i--) b = (b << 8n) | BigInt(buf[pos + i]);
    if (buf[pos + n - 1] & 0x80) b -= 1n << BigInt(8 * n);
    pos += n;
    return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
  };
  const memoPut = (index: number): void => {
    if (!memo.has(index) && memo.size >= maxMemo) fail('LIMIT', `more than ${maxMemo} memo entries`);
    memo.set(index, top());
  };
  const memoGet = (index: number): void => {
    if (!memo.has(index)) fail('BAD_PICKLE', `memo entry ${index} was never stored`);
    push(memo.get(index));
  };
  const resolveGlobal = (module: string, name: string): unknown => {
    const path = `${module}.${name}`;
    if (CALLABLES.has(path)) return new PyGlobal(path);
    if (module === 'torch' && Object.prototype.hasOwnProperty.call(STORAGE_TYPES, name)) {
      return new StorageType(name, STORAGE_TYPES[name]);
    }
    if (module === 'torch' && DTYPES.has(name)) return new DTypeRef(name);
    throw new CheckpointError('FORBIDDEN_GLOBAL',
      `Refusing to load global '${path}' from checkpoint${file ? ` ${file}` : ''}: only tensors, containers and plain values are allowed`,
      file);
  };
  const int = (v: unknown, what: string): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail('BAD_PICKLE', `expected an integer for ${what} but received ${describe(v)}`);
    return v as number;
  };
  const intArray = (v: unknown, what: string): number[] => {
    if (!Array.isArray(v)) fail('BAD_PICKLE', `expected a tuple of integers for ${what} but received ${describe(v)}`);
    return (v as unknown[]).map((x, i) => int(x, `${what}[${i}]`));
  };
  const iterableItems = (v: unknown, what: string): unknown[] => {
    if (Array.isArray(v)) return v;
    if (v instanceof Set) return [...v];
    return fail('BAD_PICKLE', `expected a sequence for ${what} but received ${describe(v)}`);
  };
  const tensor = (args: unknown[], v2: boolean): unknown => {
    if (!options.makeTensor) fail('BAD_PICKLE', 'tensors are not expected here');
    if (args.length < 4) fail('BAD_PICKLE', `_rebuild_tensor expects at least 4 arguments but received ${args.length}`);
    const size = intArray(args[2], 'size');
    const stride = intArray(args[3], 'stride');
    if (size.length !== stride.length) fail('BAD_PICKLE', `size has ${size.length} dimensions but stride has ${stride.length}`);
    const t = options.makeTensor!({
      storage: args[0],
      storageOffset: int(args[1], 'storage_offset'),
      size, stride,
      requiresGrad: v2 ? args[4] === true : false,
    });
    if (t !== null && typeof t === 'object') tensors.add(t);
    return t;
  };
  const call = (fn: unknown, argsValue: unknown): unknown => {
    if (!(fn instanceof PyGlobal)) fail('BAD_PICKLE', `cannot call ${describe(fn)}`);
    if (!Array.isArray(argsValue)) fail('BAD_PICKLE', `arguments must be a tuple but received ${describe(argsValue)}`);
    const args = argsValue as unknown[];
    switch ((fn as PyGlobal).path) {
      case 'collections.OrderedDict': {
        const m = new Map<unknown, unknown>();
        if (args.length > 0) {
          for (const pair of iterableItems(args[0], 'OrderedDict items')) {
            if (!Array.isArray(pair) || pair.length !== 2) fail('BAD_PICKLE', 'OrderedDict items must be pairs');
            m.set((pair as unknown[])[0], (pair as unknown[])[1]);
          }
        }
        return m;
      }
      case 'torch._utils._rebuild_tensor_v2': return tensor(args, true);
      case 'torch._utils._rebuild_tensor': return tensor(args, false);
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
      case 'torch.nn.parameter.Parameter':
        if (args.length < 1 || !tensors.has(args[0] as object)) fail('BAD_PICKLE', `${(fn as PyGlobal).path} expects a tensor`);
        return args[0];
      case 'torch.Size': return args.length === 0 ? [] : intArray(args[0], 'torch.Size');
      case 'builtins.set': case '__builtin__.set':
        return new Set(args.length ? iterableItems(args[0], 'set') : []);
      case 'builtins.frozenset': case '__builtin__.frozenset': {
        const s = new Set(args.length ? iterableItems(args[0], 'frozenset') : []);
        frozen.add(s);
        return s;
      }
      case 'builtins.bytes': case '__builtin__.bytes': case 'builtins.bytearray': case '__builtin__.bytearray':
        if (args.length === 0) return new Uint8Array(0);
        if (args[0] instanceof Uint8Array) return args[0];
        return Uint8Array.from(intArray(args[0], 'bytes'));
      case '_codecs.encode': {
        // How protocol 2 pickles Python 3 bytes: encode(latin-1 text, 'latin1').
        const [text, enc] = args;
        if (typeof text !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) {
          fail('BAD_PICKLE', `_codecs.encode is only accepted as encode(str, 'latin1')`);
        }
        const out = new Uint8Array((text as string).length);
        for (let i = 0; i < out.length; i++) {
          const c = (text as string).charCodeAt(i);
          if (c > 255) fail('BAD_PICKLE', '_codecs.encode text is not latin-1');
          out[i] = c;
        }
        return out;
      }
      default: return fail('BAD_PICKLE', `cannot call ${(fn as PyGlobal).path}`);
    }
  };
  const setItem = (target: unknown, k: unknown, v: unknown): void => {
    if (!(target instanceof Map)) fail('BAD_PICKLE', `can only set items on a dict but the target is ${describe(target)}`);
    (target as Map<unknown, unknown>).set(k, v);
  };
  const appendTo = (target: unknown): unknown[] => {
    if (!Array.isArray(target) || tuples.has(target)) fail('BAD_PICKLE', `can only append to a list but the target is ${describe(target)}`);
    return target as unknown[];
  };
  const tuple = (items: unknown[]): unknown[] => { tuples.add(items); return items; };
  const text = (b: Uint8Array): string => utf8.decode(b);

  for (;;) {
    opAt = pos;
    if (pos >= len) throw new PickleTruncatedError(pos + 1, len, '(no STOP opcode)', file);
    const op = buf[pos++];
    opName = OPNAMES[op] ?? `opcode 0x${op.toString(16).padStart(2, '0')}`;
    switch (op) {
      case 0x80: { const proto = u8(); if (proto > 5) fail('BAD_PICKLE', `unsupported pickle protocol ${proto}`); break; }
      case 0x95: u64(); break; // FRAME: framing is only a read-ahead hint
      case 0x2e: { // STOP
        const value = pop();
        if (metastack.length) fail('BAD_PICKLE', 'STOP inside an unclosed MARK');
        checkNesting(value, maxDepth, file);
        return { value, end: pos };
      }
      case 0x28: // MARK
        if (metastack.length >= maxDepth) fail('LIMIT', `MARKs nested deeper than ${maxDepth}`);
        metastack.push(stack);
        stack = [];
        break;
      case 0x30: pop(); break;
      case 0x31: popMark(); break;
      case 0x32: push(top()); break;
      case 0x4e: push(null); break;
      case 0x88: push(true); break;
      case 0x89: push(false); break;
      case 0x4a: push(i32()); break;
      case 0x4b: push(u8()); break;
      case 0x4d: push(u16()); break;
      case 0x8a: { const n = u8(); push(longValue(n)); break; }
      case 0x8b: { const n = i32(); if (n < 0) fail('BAD_PICKLE', 'negative LONG4 length'); push(longValue(n)); break; }
      case 0x49: { const s = line(); push(s === '01' ? true : s === '00' ? false : intValue(s)); break; }
      case 0x4c: push(intValue(line())); break;
      case 0x46: { const s = line(); const v = Number(s); if (Number.isNaN(v) && !/nan/i.test(s)) fail('BAD_PICKLE', 'not a float'); push(v); break; }
      case 0x47: need(8); push(view.getFloat64(pos, false)); pos += 8; break;
      case 0x58: push(text(bytes(u32()))); break;
      case 0x8c: push(text(bytes(u8()))); break;
      case 0x8d: push(text(bytes(u64()))); break;
      case 0x54: { const n = i32(); if (n < 0) fail('BAD_PICKLE', 'negative BINSTRING length'); push(text(bytes(n))); break; }
      case 0x55: push(text(bytes(u8()))); break;
      case 0x42: push(bytes(u32())); break;
      case 0x43: push(bytes(u8())); break;
      case 0x8e: push(bytes(u64())); break;
      case 0x96: push(bytes(u64())); break;
      case 0x53: push(pyStringLiteral(line(), fail)); break;
      case 0x56: push(rawUnicodeEscape(line())); break;
      case 0x29: push(tuple([])); break;
      case 0x5d: push([]); break;
      case 0x7d: push(new Map()); break;
      case 0x8f: push(new Set()); break;
      case 0x74: { const items = popMark(); push(tuple(items)); break; }
      case 0x85: { const a = pop(); push(tuple([a])); break; }
      case 0x86: { const b = pop(); const a = pop(); push(tuple([a, b])); break; }
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(tuple([a, b, c])); break; }
      case 0x6c: push(popMark()); break;
      case 0x64: { // DICT
        const items = popMark();
        if (items.length % 2) fail('BAD_PICKLE', 'odd number of dict items');
        const m = new Map<unknown, unknown>();
        for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]);
        push(m);
        break;
      }
      case 0x91: { const items = popMark(); const s = new Set(items); frozen.add(s); push(s); break; }
      case 0x61: { const v = pop(); appendTo(top()).push(v); break; }
      case 0x65: { // APPENDS: a loop, not push(...items), so big groups cannot overflow the call stack
        const items = popMark();
        const list = appendTo(top());
        for (let i = 0; i < items.length; i++) list.push(items[i]);
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); setItem(top(), k, v); break; }
      case 0x75: {
        const items = popMark();
        if (items.length % 2) fail('BAD_PICKLE', 'odd number of SETITEMS values');
        const target = top();
        for (let i = 0; i < items.length; i += 2) setItem(target, items[i], items[i + 1]);
        break;
      }
      case 0x90: { // ADDITEMS
        const items = popMark();
        const target = top();
        if (!(target instanceof Set) || frozen.has(target)) fail('BAD_PICKLE', `can only add items to a set but the target is ${describe(target)}`);
        for (const v of items) (target as Set<unknown>).add(v);
        break;
      }
      case 0x68: memoGet(u8()); break;
      case 0x6a: memoGet(u32()); break;
      case 0x67: memoGet(int(intValue(line()), 'GET index')); break;
      case 0x71: memoPut(u8()); break;
      case 0x72: memoPut(u32()); break;
      case 0x70: memoPut(int(intValue(line()), 'PUT index')); break;
      case 0x94: memoPut(memo.size); break;
      case 0x63: { const module = line(); const name = line(); push(resolveGlobal(module, name)); break; }
      case 0x93: {
        const name = pop(); const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('BAD_PICKLE', 'STACK_GLOBAL expects two strings');
        push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); push(call(fn, args)); break; }
      case 0x81: { // NEWOBJ: only Parameter(tensor, requires_grad), as weights_only does
        const args = pop(); const cls = pop();
        if (!(cls instanceof PyGlobal) || cls.path !== 'torch.nn.parameter.Parameter') fail('BAD_PICKLE', `cannot instantiate ${describe(cls)}`);
        push(call(cls, args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const inst = top();
        if (inst instanceof Map) {
          // OrderedDict.__reduce__ state is vars(self), e.g. {'_metadata': ...}; (state, slotstate) also allowed.
          const parts = Array.isArray(state) ? state : [state];
          const attrs = attributes.get(inst) ?? new Map<unknown, unknown>();
          for (const part of parts) {
            if (part === null) continue;
            if (!(part instanceof Map)) fail('BAD_PICKLE', `dict state must be a dict but received ${describe(part)}`);
            for (const [k, v] of part as Map<unknown, unknown>) attrs.set(k, v);
          }
          attributes.set(inst, attrs);
        } else if (inst !== null && typeof inst === 'object' && tensors.has(inst)) {
          // Parameter/tensor Python attributes (hooks etc.): not needed for weights.
        } else {
          fail('BAD_PICKLE', `can only BUILD dicts and tensors but the target is ${describe(inst)}`);
        }
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail('BAD_PICKLE', 'persistent ids are not expected here');
        push(options.persistentLoad!(pid));
        break;
      }
      case 0x50: {
        const pid = line();
        if (!options.persistentLoad) fail('BAD_PICKLE', 'persistent ids are not expected here');
        push(options.persistentLoad!(pid));
        break;
      }
      case 0x69: case 0x6f: case 0x92: // INST, OBJ, NEWOBJ_EX construct arbitrary classes
        fail('FORBIDDEN_OPCODE', 'constructing class instances is not allowed in a checkpoint');
        break;
      case 0x82: case 0x83: case 0x84:
        fail('FORBIDDEN_OPCODE', 'copyreg extension codes are not allowed in a checkpoint');
        break;
      case 0x97: case 0x98:
        fail('FORBIDDEN_OPCODE', 'out-of-band buffers are not allowed in a checkpoint');
        break;
      default:
        fail('BAD_PICKLE', `unknown opcode 0x${op.toString(16).padStart(2, '0')} (not a pickle, or corrupt)`);
    }
  }
}

/** Python 2 `repr` string literal of the STRING opcode: 'abc' or "abc" with escapes. */
function pyStringLiteral(s: string, fail: (code: 'BAD_PICKLE', msg: string) => never): string {
  const q = s[0];
  if (s.length < 2 || (q !== '"' && q !== "'") || s[s.length - 1] !== q) fail('BAD_PICKLE', 'STRING is not quoted');
  const body = s.slice(1, -1);
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8) & 0xff);
    const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' };
    return simple[e] ?? `\\${e}`;
  });
}

/** The raw-unicode-escape codec of the UNICODE opcode. */
function rawUnicodeEscape(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, a?: string, b?: string) => {
    const cp = parseInt((a ?? b)!, 16);
    return cp <= 0x10ffff ? String.fromCodePoint(cp) : '\ufffd';
  });
}

function isContainer(v: unknown): v is unknown[] | Map<unknown, unknown> | Set<unknown> {
  return Array.isArray(v) || v instanceof Map || v instanceof Set;
}

function* childrenOf(v: unknown[] | Map<unknown, unknown> | Set<unknown>): Generator<unknown> {
  if (Array.isArray(v) || v instanceof Set) {
    yield* v;
  } else {
    for (const [k, x] of v) { yield k; yield x; }
    const attrs = attributes.get(v);
    if (attrs) for (const [k, x] of attrs) { yield k; yield x; }
  }
}

/**
 * Rejects cycles and nesting deeper than maxDepth in the result, with an
 * explicit stack (no recursion), so code walking the value later is safe.
 * Heights are memoised, so shared sub-objects are visited once.
 */
function checkNesting(root: unknown, maxDepth: number, file?: string): void {
  if (!isContainer(root)) return;
  const height = new Map<object, number>();
  const onPath = new Set<object>();
  const path: Array<{ node: object; it: Iterator<unknown>; h: number }> = [];
  const enter = (node: unknown[] | Map<unknown, unknown> | Set<unknown>): void => {
    if (path.length >= maxDepth) {
      throw new CheckpointError('LIMIT', `Cannot unpickle${inFile(file)}: containers nested deeper than ${maxDepth}`, file);
    }
    onPath.add(node);
    path.push({ node, it: childrenOf(node), h: 0 });
  };
  enter(root);
  while (path.length) {
    const frame = path[path.length - 1];
    const next = frame.it.next();
    if (!next.done) {
      const c = next.value;
      if (!isContainer(c)) continue;
      if (onPath.has(c)) throw new CheckpointError('BAD_PICKLE', `Cannot unpickle${inFile(file)}: a container contains itself (cyclic data is not a checkpoint)`, file);
      const h = height.get(c);
      if (h === undefined) { enter(c); continue; }
      frame.h = Math.max(frame.h, h + 1);
    } else {
      path.pop();
      onPath.delete(frame.node);
      height.set(frame.node, frame.h);
      if (frame.h >= maxDepth) {
        throw new CheckpointError('LIMIT', `Cannot unpickle${inFile(file)}: containers nested deeper than ${maxDepth}`, file);
      }
      if (path.length) path[path.length - 1].h = Math.max(path[path.length - 1].h, frame.h + 1);
    }
  }
}
