// Pickles a checkpoint object as torch.save does (protocol 2): containers,
// ints and strings with only the opcodes torch 1.13's weights_only
// unpickler executes; tensors as _rebuild_tensor_v2 over a persistent id
// ('storage', FloatStorage|LongStorage, key, 'cpu', numel) whose bytes the
// zip writer stores under data/<key>. Non-integer numbers use BINFLOAT, which
// torch >= 2.0's weights_only loader accepts but 1.13's does not (plain
// pickle.load and torch.load without weights_only read it everywhere).
import { CheckpointError } from '../errors';
import { OP } from '../pickle/opcodes';

/** A tensor to write: row-major data of `shape`. */
export class TensorValue {
  constructor(
    readonly dtype: 'float32' | 'int64',
    readonly shape: number[],
    readonly data: Float32Array | BigInt64Array,
  ) {}
}

/** Anything with dtype/shape/data like native NamedTensor counts as a tensor. */
export interface TensorLike {
  dtype: 'float32' | 'int64';
  shape: number[];
  data: Float32Array | BigInt64Array;
}

/** Deepest nesting of containers written: a checkpoint is shallow, a cycle is not. */
const MAX_DEPTH = 100;
const PROTOCOL = 2;

function isTensorLike(v: unknown): v is TensorLike {
  return (
    v instanceof TensorValue ||
    (v !== null &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      !(v instanceof Map) &&
      ((v as TensorLike).data instanceof Float32Array || (v as TensorLike).data instanceof BigInt64Array) &&
      Array.isArray((v as TensorLike).shape))
  );
}

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Row-major strides of a contiguous tensor. */
function contiguousStrides(shape: number[]): number[] {
  const stride: number[] = new Array(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    stride[d] = s;
    s *= shape[d];
  }
  return stride;
}

class PickleWriter {
  private readonly chunks: Buffer[] = [];
  readonly tensors: TensorLike[] = [];
  private depth = 0;

  constructor(private readonly file: string) {}

  /** Pickles `v`; `where` names it in errors (`the checkpoint.meta.x`). */
  value(v: unknown, where: string): void {
    if (++this.depth > MAX_DEPTH) this.badValue(`${where} is nested deeper than ${MAX_DEPTH} levels`);
    try {
      this.dispatch(v, where);
    } finally {
      this.depth--;
    }
  }

  finish(): Buffer {
    return Buffer.concat([Buffer.from([OP.PROTO, PROTOCOL]), ...this.chunks, Buffer.from([OP.STOP])]);
  }

  private dispatch(v: unknown, where: string): void {
    if (v === null || v === undefined) return this.op(OP.NONE);
    if (v === true) return this.op(OP.NEWTRUE);
    if (v === false) return this.op(OP.NEWFALSE);
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'number') return Number.isSafeInteger(v) ? this.int(v) : this.float(v);
    if (typeof v === 'string') return this.str(v);
    if (isTensorLike(v)) return this.tensor(v, where);
    if (v instanceof Map) return this.orderedDict([...v.entries()], where);
    if (Array.isArray(v)) return this.list(v, where);
    if (isPlainRecord(v)) {
      this.op(OP.EMPTY_DICT);
      return this.items(Object.entries(v), where);
    }
    this.badValue(
      `expected tensors, Maps, arrays, plain objects, strings, numbers, booleans or null at ${where} but received ${Object.prototype.toString.call(v)}`,
    );
  }

  private badValue(msg: string): never {
    throw new CheckpointError('BAD_VALUE', `Cannot write ${this.file}: ${msg}`, this.file);
  }

  // ------------------------------------------------------------ opcodes

  private op(...bytes: number[]): void {
    this.chunks.push(Buffer.from(bytes));
  }
  private raw(b: Buffer): void {
    this.chunks.push(b);
  }

  private str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5);
    h[0] = OP.BINUNICODE;
    h.writeUInt32LE(b.length, 1);
    this.raw(h);
    this.raw(b);
  }

  private float(v: number): void {
    const b = Buffer.alloc(9);
    b[0] = OP.BINFLOAT;
    b.writeDoubleBE(v, 1);
    this.raw(b);
  }

  private global(module: string, name: string): void {
    this.op(OP.GLOBAL);
    this.raw(Buffer.from(`${module}\n${name}\n`, 'utf8'));
  }

  /** The shortest encoding torch 1.13's weights_only unpickler reads. */
  private int(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0 && v < 256) return this.op(OP.BININT1, v);
    if (typeof v === 'number' && v >= 0 && v < 65536) return this.op(OP.BININT2, v & 0xff, v >> 8);
    if (typeof v === 'number' && v >= -(2 ** 31) && v < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = OP.BININT;
      b.writeInt32LE(v, 1);
      return this.raw(b);
    }
    const bytes = twosComplement(BigInt(v));
    this.op(OP.LONG1, bytes.length, ...bytes);
  }

  private tuple(items: Array<() => void>): void {
    if (items.length === 0) return this.op(OP.EMPTY_TUPLE);
    this.op(OP.MARK);
    items.forEach((f) => f());
    this.op(OP.TUPLE);
  }

  // ------------------------------------------------------------ containers

  /** OrderedDict, as torch pickles state_dicts: GLOBAL, (), REDUCE, then the items. */
  private orderedDict(entries: Array<[unknown, unknown]>, where: string): void {
    this.emptyOrderedDict();
    this.items(entries, where);
  }

  private emptyOrderedDict(): void {
    this.global('collections', 'OrderedDict');
    this.op(OP.EMPTY_TUPLE, OP.REDUCE);
  }

  private list(v: unknown[], where: string): void {
    this.op(OP.EMPTY_LIST);
    if (v.length === 0) return;
    this.op(OP.MARK);
    v.forEach((x, i) => this.value(x, `${where}[${i}]`));
    this.op(OP.APPENDS);
  }

  private items(entries: Array<[unknown, unknown]>, where: string): void {
    if (!entries.length) return;
    this.op(OP.MARK);
    for (const [k, x] of entries) {
      if (typeof k !== 'string' && typeof k !== 'number') this.badValue(`dict keys must be strings or numbers at ${where}`);
      this.value(k, where);
      this.value(x, `${where}.${String(k)}`);
    }
    this.op(OP.SETITEMS);
  }

  // ------------------------------------------------------------ tensors

  /** _rebuild_tensor_v2(persistent storage, 0, shape, stride, False, OrderedDict()). */
  private tensor(t: TensorLike, where: string): void {
    const numel = checkTensor(t, where, (msg) => this.badValue(msg));
    const key = String(this.tensors.length);
    this.tensors.push(t);
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.tuple([
      () => this.storageId(t, key, numel),
      () => this.int(0),
      () => this.tuple(t.shape.map((d) => () => this.int(d))),
      () => this.tuple(contiguousStrides(t.shape).map((d) => () => this.int(d))),
      () => this.op(OP.NEWFALSE),
      () => this.emptyOrderedDict(),
    ]);
    this.op(OP.REDUCE);
  }

  /** ('storage', FloatStorage|LongStorage, key, 'cpu', numel) as a persistent id. */
  private storageId(t: TensorLike, key: string, numel: number): void {
    this.tuple([
      () => this.str('storage'),
      () => this.global('torch', t.dtype === 'float32' ? 'FloatStorage' : 'LongStorage'),
      () => this.str(key),
      () => this.str('cpu'),
      () => this.int(numel),
    ]);
    this.op(OP.BINPERSID);
  }
}

/** The tensor's element count, after checking its shape and data agree. */
function checkTensor(t: TensorLike, where: string, bad: (msg: string) => never): number {
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || numel !== t.data.length) {
    bad(`tensor at ${where} has shape [${t.shape.join(', ')}] (${numel} elements) but ${t.data.length} values`);
  }
  const expectedArray = t.dtype === 'float32' ? Float32Array : BigInt64Array;
  if (!(t.data instanceof expectedArray)) bad(`tensor at ${where} is ${t.dtype} but its data is a ${t.data.constructor.name}`);
  return numel;
}

/** LONG1's payload: little-endian two's complement, minimal length. */
function twosComplement(v: bigint): number[] {
  const bytes: number[] = [];
  for (let x = v; ; ) {
    const byte = Number(x & 0xffn);
    bytes.push(byte);
    x >>= 8n;
    if ((x === 0n && !(byte & 0x80)) || (x === -1n && byte & 0x80)) return bytes;
  }
}

/**
 * Pickles `obj` (protocol 2) and collects its tensors in storage-key order.
 * @throws CheckpointError BAD_VALUE for a value torch cannot hold (functions,
 * class instances, mismatched tensor data, nesting beyond 100 levels).
 */
export function pickleCheckpoint(obj: unknown, file = 'checkpoint'): { pickle: Buffer; tensors: TensorLike[] } {
  const w = new PickleWriter(file);
  w.value(obj, 'the checkpoint');
  return { pickle: w.finish(), tensors: w.tensors };
}
