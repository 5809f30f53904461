// The door for safetensors files (huggingface/safetensors README, Format):
// read a file's header into file regions that native code loads, and write
// named tensors, both without Python and without holding the data in one
// buffer.
import type { NamedTensor } from '../../binding';
import { checkString } from '../../validate';
import { readContents, type SafetensorsContents } from './reader';
import { writeContents } from './writer';

export { MAX_HEADER_BYTES, type SafetensorsContents } from './reader';

/**
 * Reads a .safetensors file's header (only the header: 8 bytes of length,
 * then that many bytes of JSON) and returns each tensor as a region of the
 * file, for native code to read straight into tensor memory.
 *
 * Format: huggingface/safetensors README, "Format". Checks as the reference
 * reader does: header at most 100_000_000 bytes; data_offsets sorted must
 * tile the data buffer exactly (from 0, no overlap, no hole, nothing left
 * over); each range holds shape x element size bytes. Element types F64,
 * F32, F16, BF16, I64, I32, I16, I8, U8, BOOL become `dtype` 'float64',
 * 'float32', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8',
 * 'uint8', 'bool'; loading converts them to the model's type (float16 and
 * bfloat16 to float32 exactly, as torch's `.float()`).
 *
 * @param file - path of the .safetensors file
 * @returns `tensors`: name → {@link FileTensorSource} (kind 'file', `byteOffset`
 * = 8 + header length + begin, `storageNumel` = elements, `storageOffset` 0,
 * row-major contiguous `stride`; `shape` [] for a 0-d scalar), in data order;
 * `metadata`: the header's `__metadata__`, `{}` when absent.
 * @throws TypeError (code ERR_INVALID_ARG_TYPE) when `file` is not a non-empty string; the promise rejects.
 * @throws {@link CheckpointError}, naming the file and the tensor:
 * - 'UNREADABLE': missing, not a regular file, or unreadable (`cause` holds the system's error);
 * - 'TRUNCATED': shorter than the 8-byte header length;
 * - 'LIMIT': a header length over 100_000_000 bytes;
 * - 'BAD_HEADER': a header length past the end of the file, a header that is
 *   not UTF-8 JSON or not an object, an entry without a string dtype, an
 *   integer shape or a [begin, end] data_offsets, a `__metadata__` that is not
 *   a string → string map, a name (or a key within an entry) given twice;
 * - 'UNSUPPORTED_DTYPE': F8_*, U16/U32/U64 and any dtype the format does not define;
 * - 'BAD_OFFSETS': begin after end, end past the data buffer, overlapping ranges,
 *   a hole between ranges (or before the first), bytes after the last;
 * - 'BAD_TENSOR': a range whose size is not shape x element size, or sizes
 *   multiplying past 2^53.
 * @example
 * ```ts
 * import { readSafetensors } from './weights/safetensors';
 *
 * const { tensors, metadata } = await readSafetensors('model.safetensors');
 * const w = tensors.get('features.0.conv.weight'); // { kind: 'file', dtype: 'float16', shape: [64, 3, 3, 3], ... }
 * console.log(w?.shape, metadata.format);
 * ```
 */
export async function readSafetensors(file: string): Promise<SafetensorsContents> {
  checkString('file', file);
  return readContents(file);
}

/**
 * Writes named tensors as a .safetensors file (huggingface/safetensors README,
 * "Format"): header padded with spaces to 8-byte alignment, tensors in the
 * given order with contiguous data_offsets, 'float32' as F32 and 'int64' as
 * I64, little-endian, row-major. Atomic: written to a temporary beside `file`,
 * flushed and renamed over it; a failure leaves no partial file. Each tensor's
 * bytes go from its own array to the file; nothing joins them in memory.
 *
 * @param file - where to write (replaced if it exists); its folder must exist
 * @param tensors - `{ name, dtype, shape, data }` as {@link Vgg.stateDict} returns:
 * Float32Array for 'float32', BigInt64Array for 'int64', `data.length` equal to the
 * product of `shape` ([] for a 0-d scalar, one element)
 * @param metadata - the header's `__metadata__`: string keys and string values.
 * Default: none (the key is left out).
 * @throws TypeError (code ERR_INVALID_ARG_TYPE) when `file` is not a non-empty string; the promise rejects.
 * @throws {@link CheckpointError} 'BAD_VALUE' for a metadata value that is not a
 * string, a tensor whose dtype, data type, shape or element count disagree,
 * a name given twice or named `__metadata__`; 'LIMIT' for a header over 100_000_000 bytes.
 * @throws the file system's error (e.g. code 'ENOENT' when the folder does not exist).
 * @example
 * ```ts
 * import { writeSafetensors } from './weights/safetensors';
 *
 * await writeSafetensors('head.safetensors', [
 *   { name: 'classifier.6.bias', dtype: 'float32', shape: [2], data: new Float32Array([0.5, -1]) },
 *   { name: 'features.0.bn.num_batches_tracked', dtype: 'int64', shape: [], data: new BigInt64Array([3n]) },
 * ], { format: 'pt' });
 * ```
 */
export async function writeSafetensors(file: string, tensors: NamedTensor[], metadata?: Record<string, string>): Promise<void> {
  checkString('file', file);
  await writeContents(file, tensors, metadata);
}
