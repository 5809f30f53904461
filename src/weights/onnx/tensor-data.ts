// Tensor data of an ONNX graph as float32: raw_data, the typed repeated
// fields, Constant node values and external data files, in FLOAT, DOUBLE,
// FLOAT16 or BFLOAT16. Also the transpose dense layers need.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { OnnxFormatError } from '../errors';
import { bfloat16ToFloat, halfToFloat } from '../half';
import { toNum } from './proto';
import type { Node, Param, Tensor } from './types';

const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';
const DT = onnx.TensorProto.DataType;

/** Bytes per element of the types we convert; 0 for any other type. */
function elementWidth(type: number): number {
  if (type === DT.FLOAT) return 4;
  if (type === DT.DOUBLE) return 8;
  if (type === DT.FLOAT16 || type === DT.BFLOAT16) return 2;
  return 0;
}

/**
 * A tensor's values as float32.
 * @param externalDir - folder of the .onnx file, for external data; undefined for a Buffer or an archive
 * @throws OnnxFormatError BAD_TENSOR (type or count wrong), EXTERNAL_DATA.
 */
export function tensorToFloat32(t: Tensor, source: string, name: string, externalDir: string | undefined): Float32Array {
  const dims = (t.dims ?? []).map(toNum);
  const n = dims.reduce((a, b) => a * b, 1);
  const type = t.dataType ?? DT.UNDEFINED;
  const width = elementWidth(type);
  if (width === 0) {
    throw new OnnxFormatError(
      'BAD_TENSOR',
      `${source}: tensor '${name}' has data type ${DT[type] ?? type}; expected FLOAT (FLOAT16, BFLOAT16 and DOUBLE are converted)`,
    );
  }
  const wrongCount = (found: string) =>
    new OnnxFormatError('BAD_TENSOR', `${source}: tensor '${name}' of shape [${dims}] should hold ${n} values but ${found}`);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const raw = externalBytes(t, source, name, externalDir);
    if (raw.length !== n * width) throw wrongCount(`its external data has ${raw.length} bytes (expected ${n * width})`);
    // The bytes were read into a fresh, aligned buffer of our own: float32 needs no second copy.
    if (type === DT.FLOAT && LITTLE_ENDIAN_HOST) return new Float32Array(raw.buffer, raw.byteOffset, n);
    return rawToFloat32(raw, type, n);
  }
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  if (raw) {
    if (raw.length !== n * width) throw wrongCount(`its raw_data has ${raw.length} bytes (expected ${n * width})`);
    return rawToFloat32(raw, type, n);
  }
  const values = type === DT.FLOAT ? (t.floatData ?? []) : type === DT.DOUBLE ? (t.doubleData ?? []) : undefined;
  if (values) {
    if (values.length !== n) throw wrongCount(`it has ${values.length}`);
    return Float32Array.from(values);
  }
  // FLOAT16 / BFLOAT16 outside raw_data are bit patterns in int32_data.
  const bits = t.int32Data ?? [];
  if (bits.length !== n) throw wrongCount(`it has ${bits.length}`);
  const decode = type === DT.FLOAT16 ? halfToFloat : bfloat16ToFloat;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = decode(bits[i]);
  return out;
}

/** Little-endian raw_data (any alignment) as float32. */
function rawToFloat32(raw: Uint8Array, type: number, n: number): Float32Array {
  const out = new Float32Array(n);
  if (type === DT.FLOAT && LITTLE_ENDIAN_HOST) {
    // Copy through bytes: raw_data is a view into the file at any alignment.
    new Uint8Array(out.buffer).set(raw);
    return out;
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (type === DT.FLOAT) for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  else if (type === DT.DOUBLE) for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
  else if (type === DT.FLOAT16) for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  else for (let i = 0; i < n; i++) out[i] = bfloat16ToFloat(view.getUint16(i * 2, true));
  return out;
}

/**
 * The bytes of a tensor kept in an external file (location/offset/length),
 * which must lie inside the model's folder, read into a buffer of their own.
 * @throws OnnxFormatError EXTERNAL_DATA.
 */
export function externalBytes(t: Tensor, source: string, name: string, dir: string | undefined): Uint8Array {
  const entry = (key: string) => t.externalData?.find((e) => e.key === key)?.value ?? undefined;
  const location = entry('location');
  if (!dir || !location) {
    throw new OnnxFormatError(
      'EXTERNAL_DATA',
      `${source}: tensor '${name}' keeps its data in an external file${location ? ` '${location}'` : ''}; pass the .onnx file path (not a Buffer or archive) so it can be found`,
    );
  }
  const outside = () => new OnnxFormatError('EXTERNAL_DATA', `${source}: tensor '${name}' points outside the model's folder ('${location}')`);
  if (path.isAbsolute(location) || !isInside(dir, path.resolve(dir, location))) throw outside();
  // Symlinks are followed before the check: a link inside the folder may lead out of it.
  let file: string;
  try {
    file = fs.realpathSync(path.resolve(dir, location));
  } catch (err) {
    throw new OnnxFormatError(
      'EXTERNAL_DATA',
      `${source}: tensor '${name}' keeps its data in '${location}', which cannot be opened (${(err as Error).message})`,
    );
  }
  if (!isInside(fs.realpathSync(dir), file)) throw outside();
  const offset = Number(entry('offset') ?? 0);
  let length = entry('length') !== undefined ? Number(entry('length')) : undefined;
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new OnnxFormatError(
      'EXTERNAL_DATA',
      `${source}: tensor '${name}' keeps its data in '${location}', which cannot be opened (${(err as Error).message})`,
    );
  }
  try {
    const size = fs.fstatSync(fd).size;
    length ??= size - offset;
    // Checked before allocating: the lengths come from the (untrusted) model file.
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size)
      throw new OnnxFormatError(
        'EXTERNAL_DATA',
        `${source}: tensor '${name}': '${location}' holds ${size} bytes but offset ${offset} and length ${length} were asked for`,
      );
    // Its own ArrayBuffer at offset 0: aligned for a Float32Array view, and no pooled slab kept alive.
    const buf = new Uint8Array(new ArrayBuffer(length));
    const got = fs.readSync(fd, buf, 0, length, offset);
    if (got !== length)
      throw new OnnxFormatError(
        'EXTERNAL_DATA',
        `${source}: tensor '${name}': '${location}' holds ${got} bytes from offset ${offset}, expected ${length}`,
      );
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether `file` lies inside folder `dir` (both resolved). */
function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** The value of a Constant node as a tensor (`value`, `value_float` or `value_floats`). */
export function constantValue(node: Node): Tensor | undefined {
  for (const a of node.attribute ?? []) {
    if (a.name === 'value' && a.t) return a.t;
    if (a.name === 'value_float') return { dataType: DT.FLOAT, dims: [], floatData: [a.f ?? 0] };
    if (a.name === 'value_floats') return { dataType: DT.FLOAT, dims: [(a.floats ?? []).length], floatData: a.floats ?? [] };
  }
  return undefined;
}

/** [rows, cols] -> [cols, rows], in cache-friendly blocks (the first dense layer has 100M elements). */
export function transposed(p: Param): Param {
  const [rows, cols] = p.dims;
  const src = p.data;
  const out = new Float32Array(src.length);
  const B = 64;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(r0 + B, rows);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(c0 + B, cols);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = src[base + c];
      }
    }
  }
  return { name: p.name, dims: [cols, rows], data: out };
}
