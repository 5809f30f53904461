// A tensor source under another shape with the same elements, without
// touching its bytes: what a layout needs when it stores a tensor in another
// form (timm's fc6 as a [4096, 512, 7, 7] convolution for our [4096, 25088]
// Linear). Only contiguous views can be reshaped this way, as in torch's view().
import { TensorRef } from './pth/tensor-ref';
import { CheckpointError } from './errors';

interface Shaped {
  shape: number[];
  stride?: number[];
}

/** Row-major strides of `shape`, in elements. */
export function contiguousStrides(shape: number[]): number[] {
  const stride = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i];
  }
  return stride;
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * The same tensor seen with `shape` (same element count, row-major order).
 * @param t - a .pth TensorRef, a file region or an in-memory source
 * @param shape - the new shape
 * @param file - the checkpoint, for the message
 * @param name - the tensor's key, for the message
 * @returns a new source; `t` is not changed
 * @throws CheckpointError BAD_TENSOR when the counts differ or `t` is a strided (non-contiguous) view
 * @example reshapeSource(fc1Weight, [4096, 25088], 'model.safetensors', 'pre_logits.fc1.weight')
 */
export function reshapeSource<T extends Shaped>(t: T, shape: number[], file: string, name: string): T {
  const where = `'${name}' in ${file}`;
  if (numel(t.shape) !== numel(shape)) {
    throw new CheckpointError('BAD_TENSOR', `cannot view ${where} of shape [${t.shape.join(', ')}] as [${shape.join(', ')}]`, file);
  }
  const dense = contiguousStrides(t.shape);
  if (t.stride?.some((s, i) => t.shape[i] > 1 && s !== dense[i])) {
    throw new CheckpointError(
      'BAD_TENSOR',
      `${where} is a strided view (stride [${t.stride.join(', ')}]); it cannot be read as [${shape.join(', ')}]`,
      file,
    );
  }
  const stride = contiguousStrides(shape);
  if (t instanceof TensorRef) {
    return new TensorRef(t.path, t.byteOffset, t.dtype, t.storageNumel, t.storageOffset, shape, stride, t.bigEndian, t.storageKey) as unknown as T;
  }
  return { ...t, shape, ...(t.stride ? { stride } : {}) };
}
