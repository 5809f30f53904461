// Checks named tensor sources handed to loadStateDict at the boundary, so
// nothing malformed reaches native code.
import type { NamedTensorSource } from '../binding';
import { numel } from '../tensor';
import { invalidRange, invalidType, isPlainObject } from '../validate';

const DTYPES = ['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'];

function checkSizes(param: string, v: unknown): number[] {
  if (!Array.isArray(v) || !v.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
    throw invalidType(param, 'an array of non-negative integers', v);
  }
  return v as number[];
}

/**
 * Checks the `{ name, tensor }` entries handed to loadStateDict: array
 * tensors' data against their shape, file tensors' dtype, strides and offsets.
 * @returns the entries, typed
 * @throws TypeError (ERR_INVALID_ARG_TYPE) or RangeError (ERR_OUT_OF_RANGE) naming the entry and field.
 */
export function checkTensorSources(param: string, entries: unknown): NamedTensorSource[] {
  if (!Array.isArray(entries)) throw invalidType(param, 'an array of { name, tensor }', entries);
  entries.forEach((e, i) => {
    const p = `${param}[${i}]`;
    if (!isPlainObject(e) || typeof e.name !== 'string' || !isPlainObject(e.tensor)) throw invalidType(p, '{ name: string, tensor }', e);
    const t = e.tensor as Record<string, unknown>;
    const shape = checkSizes(`${p}.tensor.shape`, t.shape);
    if (t.kind === 'array') {
      if (!(t.data instanceof Float32Array) && !(t.data instanceof BigInt64Array))
        throw invalidType(`${p}.tensor.data`, 'a Float32Array or BigInt64Array', t.data);
      if (t.data.length !== numel(shape)) throw invalidRange(`${p}.tensor.data`, `${numel(shape)} elements for shape [${shape.join(', ')}]`, t.data);
    } else if (t.kind === 'file') {
      if (typeof t.path !== 'string') throw invalidType(`${p}.tensor.path`, 'a file path', t.path);
      if (!DTYPES.includes(t.dtype as string)) throw invalidRange(`${p}.tensor.dtype`, `one of ${DTYPES.join(', ')}`, t.dtype);
      const stride = checkSizes(`${p}.tensor.stride`, t.stride);
      if (stride.length !== shape.length) throw invalidRange(`${p}.tensor.stride`, `${shape.length} strides`, stride);
      for (const k of ['byteOffset', 'storageNumel', 'storageOffset']) {
        const n = t[k];
        if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw invalidRange(`${p}.tensor.${k}`, 'a non-negative integer', n);
      }
    } else {
      throw invalidRange(`${p}.tensor.kind`, "'array' or 'file'", t.kind);
    }
  });
  return entries as NamedTensorSource[];
}
