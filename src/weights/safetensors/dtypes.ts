// The element types a safetensors header names, and the storage types native
// code reads them as (huggingface/safetensors README, Format).
import type { StorageDType } from '../../binding';

/**
 * safetensors dtype → storage type. A Map, not an object literal: a header's
 * dtype is untrusted text, and `'toString'` must not find Object.prototype.
 */
export const STORAGE_OF: ReadonlyMap<string, StorageDType> = new Map([
  ['F64', 'float64'],
  ['F32', 'float32'],
  ['F16', 'float16'],
  ['BF16', 'bfloat16'],
  ['I64', 'int64'],
  ['I32', 'int32'],
  ['I16', 'int16'],
  ['I8', 'int8'],
  ['U8', 'uint8'],
  ['BOOL', 'bool'],
]);

/** The dtype the writer names for each tensor type it writes. */
export const SAFETENSORS_NAME_OF = { float32: 'F32', int64: 'I64' } as const;

/** Types the format defines that the package cannot load, listed so messages can say "not supported" rather than "unknown". */
export const KNOWN_UNSUPPORTED: ReadonlySet<string> = new Set([
  'U16',
  'U32',
  'U64',
  'F8_E4M3',
  'F8_E5M2',
  'F8_E8M0',
  'F6_E2M3',
  'F6_E3M2',
  'F4',
  'C64',
]);
