// numpy values that trainers save beside the weights (mmengine's
// message_hub and meta, timm's metrics): ndarrays, dtypes and scalars,
// rebuilt as inert records from their pickled state. torch's own
// weights_only docs tell users to allow-list exactly these globals for such
// files. Nothing of numpy's is run: the arguments are type-checked, sizes
// are checked against the data that is really there, and big data dropped.
import { halfToFloat } from '../half';
import type { Call, Machine } from './machine';
import { NumpyArray, NumpyDType, NumpyScalar, PyGlobal, describe, dtypeStr } from './values';

/** Most data bytes an ndarray or scalar record keeps: more is dropped (its dtype and shape stay). */
export const MAX_INERT_BYTES = 1 << 20;
/** numpy's NPY_MAXDIMS. */
const MAX_DIMS = 64;
/** Largest item size accepted in a dtype (numpy's is a C int). */
const MAX_ITEM_SIZE = 0x7fffffff;
/** How numpy pickles a dtype's type: kind and item size ('f8', 'i8', 'b1', 'U5' in characters, 'O8'); 'a' is an old name of 'S'. */
const TYPE_CODE = /^([biufcmMOSUVa])(\d{1,10})?$/;
/** Kinds whose item size the BUILD state gives (flexible types); for the others it is the type code's. */
const FLEXIBLE = new Set(['S', 'U', 'V']);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * numpy.dtype(code, align, copy): a NumpyDType; BUILD then sets its byte order.
 * @throws CheckpointError BAD_PICKLE for anything but a type code ('f8', 'i8', 'U5', ...); LIMIT for an item size over 2^31.
 */
export const dtype: Call = (m, args, path) => {
  const code = args[0];
  const match = typeof code === 'string' ? TYPE_CODE.exec(code) : null;
  if (args.length > 3 || !match) return m.fail('BAD_PICKLE', `${path} expects a type code such as 'f8' but received ${describe(code)}`);
  const kind = match[1] === 'a' ? 'S' : match[1];
  const n = match[2] === undefined ? 0 : Number(match[2]);
  const size = kind === 'U' ? n * 4 : kind === 'O' ? 8 : n;
  if (size > MAX_ITEM_SIZE) m.fail('LIMIT', `${path} item size ${size} is larger than ${MAX_ITEM_SIZE}`);
  return new NumpyDType(kind, size);
};

/**
 * BUILD on a dtype: `(version, byteorder, subarray, names, fields, elsize,
 * alignment, flags[, metadata])`. Only the byte order and a flexible type's
 * item size are kept; '=' (native) is read as little-endian, torch's default.
 * @throws CheckpointError BAD_PICKLE for another state or a second BUILD; LIMIT for an item size over 2^31.
 */
export function setDTypeState(m: Machine, d: NumpyDType, state: unknown): void {
  if (d.built) m.fail('BAD_PICKLE', 'a numpy dtype is built twice');
  if (!Array.isArray(state) || state.length < 2 || state.length > 9)
    return m.fail('BAD_PICKLE', `numpy dtype state must be a tuple but is ${describe(state)}`);
  const order = state[1];
  if (order !== '<' && order !== '>' && order !== '|' && order !== '=')
    m.fail('BAD_PICKLE', `numpy dtype byte order must be <, >, | or = but is ${describe(order)}`);
  d.byteOrder = order === '=' ? '<' : order;
  const elsize = state[5];
  if (FLEXIBLE.has(d.kind) && typeof elsize === 'number' && Number.isSafeInteger(elsize) && elsize >= 0) {
    if (elsize > MAX_ITEM_SIZE) m.fail('LIMIT', `numpy dtype item size ${elsize} is larger than ${MAX_ITEM_SIZE}`);
    d.itemSize = elsize;
  }
  d.str = dtypeStr(d);
  d.built = true;
}

/**
 * numpy.core.multiarray.scalar(dtype, bytes): the value as a JS number
 * (bigint beyond 2^53, boolean for bool) for float, int, uint and bool
 * types, in the dtype's byte order; a NumpyScalar record for other types;
 * an object scalar is its object.
 * @throws CheckpointError BAD_PICKLE when the first argument is no dtype or the bytes are not one element of it.
 * @example
 * ```ts
 * scalar(m, [f8, Buffer.from('b81e85eb51b8e63f', 'hex')], 'numpy.core.multiarray.scalar'); // 0.71
 * ```
 */
export const scalar: Call = (m, args, path) => {
  const [d, data] = args;
  if (args.length !== 2 || !(d instanceof NumpyDType)) return m.fail('BAD_PICKLE', `${path} expects a numpy dtype and its bytes`);
  if (d.kind === 'O') return data;
  const raw = dataBytes(m, data, `${path} data`);
  if (raw.length !== d.itemSize) m.fail('BAD_PICKLE', `${path} of ${d.str} needs ${d.itemSize} bytes but received ${raw.length}`);
  return decodeScalar(d, raw) ?? new NumpyScalar(d.str, raw.length <= MAX_INERT_BYTES ? raw : undefined);
};

/** One element of the numeric types we decode; undefined for the others. */
function decodeScalar(d: NumpyDType, raw: Uint8Array): number | bigint | boolean | undefined {
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const le = d.byteOrder !== '>';
  const key = `${d.kind}${d.itemSize}`;
  if (key === 'f2') return halfToFloat(v.getUint16(0, le));
  if (key === 'f4') return v.getFloat32(0, le);
  if (key === 'f8') return v.getFloat64(0, le);
  if (key === 'b1') return raw[0] !== 0;
  if (d.kind !== 'i' && d.kind !== 'u') return undefined;
  const signed = d.kind === 'i';
  if (d.itemSize === 1) return signed ? v.getInt8(0) : v.getUint8(0);
  if (d.itemSize === 2) return signed ? v.getInt16(0, le) : v.getUint16(0, le);
  if (d.itemSize === 4) return signed ? v.getInt32(0, le) : v.getUint32(0, le);
  if (d.itemSize === 8) return narrow(signed ? v.getBigInt64(0, le) : v.getBigUint64(0, le));
  return undefined;
}

/** A number where it is exact, a bigint beyond 2^53 (as the unpickler maps Python ints). */
function narrow(b: bigint): number | bigint {
  return b >= MIN_SAFE && b <= MAX_SAFE ? Number(b) : b;
}

/** Pickled bytes: bytes, or text whose characters are bytes (latin-1, as Python 2 str). */
function dataBytes(m: Machine, v: unknown, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v !== 'string') return m.fail('BAD_PICKLE', `${what} must be bytes but is ${describe(v)}`);
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c > 255) m.fail('BAD_PICKLE', `${what} is text, not bytes`);
    out[i] = c;
  }
  return out;
}

/**
 * numpy.core.multiarray._reconstruct(ndarray, (0,), b'b'): the empty array
 * numpy starts from, as a NumpyArray record; BUILD gives it its data. Only
 * plain ndarray (subclasses are their class's code) and an empty shape.
 * @throws CheckpointError BAD_PICKLE for another class or a non-empty shape.
 */
export const reconstruct: Call = (m, args, path) => {
  const [cls, shape, typecode] = args;
  if (args.length !== 3 || !(cls instanceof PyGlobal) || cls.path !== 'numpy.ndarray') {
    return m.fail('BAD_PICKLE', `${path} may only make a numpy.ndarray but makes ${describe(cls)}`);
  }
  if (elementCount(m, m.expectIntArray(shape, `${path} shape`)) !== 0) m.fail('BAD_PICKLE', `${path} must start from an empty array`);
  dataBytes(m, typecode, `${path} type code`);
  return new NumpyArray();
};

/**
 * BUILD on an ndarray: `([version,] shape, dtype, is_fortran, rawdata)`.
 * The data must be exactly what the shape and dtype declare (a list of
 * shape's size for an object array); it is kept when at most 1 MiB.
 * @throws CheckpointError BAD_PICKLE (a malformed state, data that does not match, a second BUILD) or LIMIT.
 */
export function setArrayState(m: Machine, a: NumpyArray, state: unknown): void {
  if (a.built) m.fail('BAD_PICKLE', 'a numpy array is built twice');
  if (!Array.isArray(state) || (state.length !== 4 && state.length !== 5)) {
    return m.fail('BAD_PICKLE', `numpy array state must be a tuple of 4 or 5 but is ${describe(state)}`);
  }
  const [shape, d, fortran, data] = state.length === 5 ? state.slice(1) : state;
  if (!(d instanceof NumpyDType)) return m.fail('BAD_PICKLE', `numpy array dtype must be a numpy dtype but is ${describe(d)}`);
  const dims = m.expectIntArray(shape, 'numpy array shape');
  const count = elementCount(m, dims);
  if (d.kind === 'O') setItems(m, a, data, count);
  else setRaw(m, a, dataBytes(m, data, 'numpy array data'), count * d.itemSize, d.str);
  a.dtype = d.str;
  a.dims = dims;
  a.fortranOrder = fortran === true;
  a.built = true;
}

function setItems(m: Machine, a: NumpyArray, data: unknown, count: number): void {
  if (!Array.isArray(data) || data.length !== count) m.fail('BAD_PICKLE', `numpy object array of ${count} elements holds ${describe(data)}`);
  a.items = data;
  a.byteLength = count * 8;
}

function setRaw(m: Machine, a: NumpyArray, raw: Uint8Array, bytes: number, dtypeName: string): void {
  if (raw.length !== bytes) m.fail('BAD_PICKLE', `numpy array of ${dtypeName} declares ${bytes} bytes of data but holds ${raw.length}`);
  a.byteLength = bytes;
  a.raw = bytes <= MAX_INERT_BYTES ? raw : undefined;
}

/** The product of a shape's dimensions, each non-negative, at most 64 of them and the product below 2^53. */
function elementCount(m: Machine, dims: number[]): number {
  if (dims.length > MAX_DIMS) m.fail('LIMIT', `numpy array of ${dims.length} dimensions (at most ${MAX_DIMS})`);
  let n = 1;
  for (const d of dims) {
    if (d < 0) m.fail('BAD_PICKLE', `numpy array dimension ${d} is negative`);
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) m.fail('LIMIT', `numpy array shape [${dims.join(', ')}] has more than 2^53 elements`);
  }
  return n;
}
