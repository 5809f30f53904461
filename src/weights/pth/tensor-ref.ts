// What a tensor read from a .pth is: a TensorRef, file offsets plus
// shape/stride, never data. Native code preads the bytes straight into
// tensor memory; materialize() reads them for tests and the writer.
import type { FileTensorSource, StorageDType } from '../../binding';
import { checkpointError } from './io';

/** Bytes per element of each storage type. */
export const ELEMENT_SIZE: Readonly<Record<StorageDType, number>> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** Most elements one tensor may have (2^32): beyond that a shape is hostile, not a VGG. */
const MAX_TENSOR_NUMEL = 2 ** 32;
/** Most dimensions accepted. */
const MAX_DIMS = 64;

/** A tensor stored in a checkpoint file; implements the native FileTensorSource contract. */
export class TensorRef implements FileTensorSource {
  readonly kind = 'file' as const;
  constructor(
    readonly path: string,
    /** Absolute offset of the storage's first element (filled in once the container is walked). */
    public byteOffset: number,
    readonly dtype: StorageDType,
    readonly storageNumel: number,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly bigEndian: boolean,
    /** The storage's key in the checkpoint (zip `data/<key>` or legacy key). */
    readonly storageKey: string,
  ) {}

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/**
 * Shape/stride/offset must stay inside the storage; sizes non-negative and sane.
 * @throws CheckpointError BAD_TENSOR naming `what` and the file.
 */
export function checkTensorBounds(shape: number[], stride: number[], offset: number, storageNumel: number, what: string, file: string): void {
  if (shape.length > MAX_DIMS) throw checkpointError('BAD_TENSOR', file, `${what} has ${shape.length} dimensions (at most ${MAX_DIMS} accepted)`);
  if (offset < 0) throw checkpointError('BAD_TENSOR', file, `${what} has negative storage offset ${offset}`);
  let numel = 1;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] < 0)
      throw checkpointError('BAD_TENSOR', file, `${what} has negative size ${shape[i]} in dimension ${i} (shape [${shape.join(', ')}])`);
    if (stride[i] < 0) throw checkpointError('BAD_TENSOR', file, `${what} has negative stride ${stride[i]} in dimension ${i}`);
    numel *= shape[i];
  }
  if (numel > MAX_TENSOR_NUMEL)
    throw checkpointError('BAD_TENSOR', file, `${what} has shape [${shape.join(', ')}] = ${numel} elements (at most 2^32 accepted)`);
  if (numel === 0) return;
  const last = lastElement(shape, stride, offset);
  if (!Number.isSafeInteger(last) || last >= storageNumel) {
    throw checkpointError(
      'BAD_TENSOR',
      file,
      `${what} with shape [${shape.join(', ')}], stride [${stride.join(', ')}] and offset ${offset} reaches element ${last} but the storage has ${storageNumel} elements`,
    );
  }
}

/** Storage index of the view's last element (all sizes > 0, strides >= 0). */
export function lastElement(shape: number[], stride: number[], offset: number): number {
  let last = offset;
  for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
  return last;
}
