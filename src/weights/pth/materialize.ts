// Reads one file tensor's elements into JS memory, for tests and the writer
// round-trip; the load path hands TensorRefs to native code instead. The
// file is re-checked here: it may have changed since it was parsed.
import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { FileTensorSource, StorageDType } from '../../binding';
import { CheckpointError } from '../errors';
import { bfloat16ToFloat, halfToFloat } from '../half';
import { readExactly } from './io';
import { ELEMENT_SIZE, checkTensorBounds, lastElement } from './tensor-ref';

const FLOAT_TYPES: ReadonlySet<StorageDType> = new Set(['float32', 'float16', 'bfloat16', 'float64']);

/**
 * One tensor's elements, contiguous in row-major order: float types become
 * Float32Array, integer and bool types BigInt64Array.
 * @throws CheckpointError BAD_TENSOR (unknown dtype, out-of-bounds view),
 * BAD_STORAGE (the file no longer holds the storage), LIMIT (does not fit in
 * memory), TRUNCATED.
 */
export async function materialize(ref: FileTensorSource): Promise<Float32Array | BigInt64Array> {
  const { shape, stride, storageOffset, dtype } = ref;
  const esize = ELEMENT_SIZE[dtype];
  if (!esize) throw new CheckpointError('BAD_TENSOR', `Unknown dtype ${String(dtype)} for ${ref.path}`, ref.path);
  checkTensorBounds(shape, stride, storageOffset, ref.storageNumel, 'Tensor', ref.path);
  const numel = shape.reduce((a, b) => a * b, 1);
  const out = allocate(numel, FLOAT_TYPES.has(dtype), ref.path);
  if (numel === 0) return out;
  const start = ref.byteOffset + storageOffset * esize;
  const spanBytes = (lastElement(shape, stride, storageOffset) - storageOffset + 1) * esize;
  const fh = await fs.promises.open(ref.path, 'r');
  try {
    await checkStillFits(fh, ref, start + spanBytes, esize);
    const contiguous = isContiguous(shape, stride);
    if (contiguous && dtype === 'float32' && !ref.bigEndian) {
      // Fast path: read straight into the result.
      await readExactly(fh, new Uint8Array(out.buffer), start, ref.path);
      return out;
    }
    const raw = Buffer.alloc(spanBytes);
    await readExactly(fh, raw, start, ref.path);
    if (ref.bigEndian && esize > 1) swapInPlace(raw, esize);
    gather(out, elementReader(raw, dtype), shape, stride, contiguous);
    return out;
  } finally {
    await fh.close();
  }
}

/** The file may have shrunk since it was parsed: the view and its whole storage must still be in it. */
async function checkStillFits(fh: FileHandle, ref: FileTensorSource, viewEnd: number, esize: number): Promise<void> {
  const size = (await fh.stat()).size;
  if (viewEnd > size || ref.byteOffset + ref.storageNumel * esize > size) {
    throw new CheckpointError(
      'BAD_STORAGE',
      `Storage at byte ${ref.byteOffset} claims ${ref.storageNumel * esize} bytes but the file has ${size} (${ref.path})`,
      ref.path,
    );
  }
}

function allocate(numel: number, isFloat: boolean, file: string): Float32Array | BigInt64Array {
  try {
    return isFloat ? new Float32Array(numel) : new BigInt64Array(numel);
  } catch {
    throw new CheckpointError('LIMIT', `Tensor of ${numel} elements does not fit in memory (${file})`, file);
  }
}

/** Copies the view's elements in row-major order; element indices are relative to storageOffset. */
function gather(
  out: Float32Array | BigInt64Array,
  get: (i: number) => number | bigint,
  shape: number[],
  stride: number[],
  contiguous: boolean,
): void {
  const target = out as unknown as { [i: number]: number | bigint };
  const numel = out.length;
  if (contiguous) {
    for (let i = 0; i < numel; i++) target[i] = get(i);
    return;
  }
  // Odometer over the shape.
  const idx = new Array(shape.length).fill(0);
  let at = 0;
  for (let n = 0; n < numel; n++) {
    target[n] = get(at);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) {
        at += stride[d];
        break;
      }
      at -= (shape[d] - 1) * stride[d];
      idx[d] = 0;
    }
  }
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

function swapInPlace(b: Buffer, esize: number): void {
  if (esize === 2) b.swap16();
  else if (esize === 4) b.swap32();
  else if (esize === 8) b.swap64();
}

/** Element i of a little-endian buffer as number (floats) or bigint (integers). */
function elementReader(b: Buffer, dtype: StorageDType): (i: number) => number | bigint {
  switch (dtype) {
    case 'float32':
      return (i) => b.readFloatLE(i * 4);
    case 'float64':
      return (i) => b.readDoubleLE(i * 8); // rounded by Float32Array assignment
    case 'float16':
      return (i) => halfToFloat(b.readUInt16LE(i * 2));
    case 'bfloat16':
      return (i) => bfloat16ToFloat(b.readUInt16LE(i * 2));
    case 'int64':
      return (i) => b.readBigInt64LE(i * 8);
    case 'int32':
      return (i) => BigInt(b.readInt32LE(i * 4));
    case 'int16':
      return (i) => BigInt(b.readInt16LE(i * 2));
    case 'int8':
      return (i) => BigInt(b.readInt8(i));
    case 'uint8':
      return (i) => BigInt(b[i]);
    case 'bool':
      return (i) => (b[i] ? 1n : 0n);
  }
}
