// The safetensors header (huggingface/safetensors README, Format): UTF-8 JSON
// mapping each tensor name to {dtype, shape, data_offsets}, plus an optional
// "__metadata__" string→string map. Everything here is checked before anything
// is allocated by a size the file declares.
import type { StorageDType } from '../../binding';
import { isPlainObject } from '../../validate';
import { checkpointError } from '../pth/io';
import { KNOWN_UNSUPPORTED, STORAGE_OF } from './dtypes';
import { firstDuplicateKey } from './json-keys';
import { checkRanges, type HeaderEntry } from './ranges';

/** The key holding the file's free-form metadata instead of a tensor. */
export const METADATA_KEY = '__metadata__';

/** A validated header: entries in data order (by offsets), and the metadata map ({} when absent). */
export interface ParsedHeader {
  entries: HeaderEntry[];
  metadata: Record<string, string>;
}

/**
 * Parses and validates the header's bytes against a data buffer of `bufferBytes`.
 * @throws CheckpointError BAD_HEADER (not UTF-8 JSON, not an object, a malformed
 * entry or metadata, a repeated key), UNSUPPORTED_DTYPE, BAD_OFFSETS, BAD_TENSOR.
 */
export function parseHeader(bytes: Uint8Array, bufferBytes: number, file: string): ParsedHeader {
  const text = decodeUtf8(bytes, file);
  const json = parseJson(text, file);
  const dup = firstDuplicateKey(text);
  if (dup) {
    const what = dup.depth === 1 ? `tensor name '${dup.key}'` : `key '${dup.key}' inside one entry`;
    throw checkpointError('BAD_HEADER', file, `The safetensors header names the ${what} twice; each must appear once`);
  }
  const metadata = metadataOf(json[METADATA_KEY], file);
  const entries = Object.keys(json)
    .filter((k) => k !== METADATA_KEY)
    .map((name) => entryOf(name, json[name], file));
  checkRanges(entries, bufferBytes, file);
  return { entries, metadata };
}

function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw checkpointError('BAD_HEADER', file, `The safetensors header (${bytes.length} bytes) is not valid UTF-8`);
  }
}

function parseJson(text: string, file: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw checkpointError('BAD_HEADER', file, `The safetensors header is not JSON: ${(e as Error).message.slice(0, 200)}`);
  }
  if (!isPlainObject(json)) throw checkpointError('BAD_HEADER', file, `The safetensors header must be a JSON object but is ${kindOf(json)}`);
  return json;
}

function metadataOf(value: unknown, file: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw checkpointError('BAD_HEADER', file, `"${METADATA_KEY}" must be an object of strings but is ${kindOf(value)}`);
  for (const key in value) {
    if (typeof value[key] !== 'string')
      throw checkpointError('BAD_HEADER', file, `"${METADATA_KEY}" value '${key}' must be a string but is ${kindOf(value[key])}`);
  }
  // JSON.parse defines own properties, so a '__proto__' key is a key, not the prototype.
  return value as Record<string, string>;
}

function entryOf(name: string, value: unknown, file: string): HeaderEntry {
  const bad = (what: string) => checkpointError('BAD_HEADER', file, `Tensor '${name}': ${what}`);
  if (!isPlainObject(value)) throw bad(`expected an object {dtype, shape, data_offsets} but got ${kindOf(value)}`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') throw bad(`dtype must be a string but is ${kindOf(dtype)}`);
  if (!isCountList(shape)) throw bad(`shape must be an array of non-negative integers but is ${preview(shape)}`);
  if (!isCountList(offsets) || offsets.length !== 2)
    throw bad(`data_offsets must be [begin, end], non-negative integers, but is ${preview(offsets)}`);
  return { name, dtype: storageOf(name, dtype, file), shape, begin: offsets[0], end: offsets[1] };
}

function storageOf(name: string, dtype: string, file: string): StorageDType {
  const storage = STORAGE_OF.get(dtype);
  if (storage) return storage;
  const why = KNOWN_UNSUPPORTED.has(dtype) ? 'which the package cannot load' : 'which safetensors does not define';
  throw checkpointError(
    'UNSUPPORTED_DTYPE',
    file,
    `Tensor '${name}' has dtype ${preview(dtype)}, ${why}; expected one of ${[...STORAGE_OF.keys()].join(', ')}`,
  );
}

function isCountList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${preview(v)}`;
}

/** A value for a message, cut short: headers are untrusted and may be huge. */
function preview(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
