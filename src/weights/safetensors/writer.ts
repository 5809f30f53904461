// Writes safetensors (huggingface/safetensors README, Format): the u64 header
// length, the JSON header padded with spaces to 8 bytes, then each tensor's
// bytes in the given order. Tensors go from their own arrays to the file one
// by one; nothing concatenates the data in memory.
import type { FileHandle } from 'node:fs/promises';
import type { NamedTensor } from '../../binding';
import { withAtomicFile } from '../../fs/atomic-file';
import { isPlainObject } from '../../validate';
import { CheckpointError } from '../errors';
import { SAFETENSORS_NAME_OF } from './dtypes';
import { METADATA_KEY } from './header';
import { LENGTH_BYTES, MAX_HEADER_BYTES } from './reader';

/** The header is padded so the data starts 8-byte aligned, as the reference writer does. */
const HEADER_ALIGN = 8;
/** Bytes per write call: fs refuses a length of 2 GiB or more in one call. */
const WRITE_CHUNK = 1 << 30;

/** Checks the tensors and metadata, then writes the file atomically; see writeSafetensors for the errors. */
export async function writeContents(file: string, tensors: readonly NamedTensor[], metadata: Record<string, string> | undefined): Promise<void> {
  checkTensors(tensors, file);
  const header = encodeHeader(tensors, checkMetadata(metadata, file), file);
  await withAtomicFile(file, async (fh) => {
    let at = await writeAll(fh, header, 0);
    for (const t of tensors) at = await writeAll(fh, bytesOf(t.data), at);
  });
}

function bad(file: string, message: string): CheckpointError {
  return new CheckpointError('BAD_VALUE', `${message} (writing ${file})`, file);
}

/** Each tensor's dtype, shape and data agree, and names are unique. */
function checkTensors(tensors: readonly NamedTensor[], file: string): void {
  if (!Array.isArray(tensors)) throw bad(file, `tensors must be an array of {name, dtype, shape, data} but is ${typeof tensors}`);
  const names = new Set<string>();
  tensors.forEach((t, i) => {
    checkTensor(t, i, file);
    if (names.has(t.name)) throw bad(file, `tensor name '${t.name}' is given twice`);
    names.add(t.name);
  });
}

function checkTensor(t: NamedTensor, i: number, file: string): void {
  if (typeof t !== 'object' || t === null) throw bad(file, `tensors[${i}] must be an object {name, dtype, shape, data}`);
  const { name, dtype, shape, data } = t;
  if (typeof name !== 'string') throw bad(file, `tensors[${i}].name must be a string but is ${typeof name}`);
  if (name === METADATA_KEY) throw bad(file, `tensors[${i}] cannot be named '${METADATA_KEY}': the format keeps that key for metadata`);
  const expected = dtype === 'float32' ? Float32Array : dtype === 'int64' ? BigInt64Array : undefined;
  if (!expected) throw bad(file, `tensor '${name}' has dtype ${String(dtype)}; expected 'float32' or 'int64'`);
  if (!(data instanceof expected)) throw bad(file, `tensor '${name}' (${dtype}) needs its data in a ${expected.name}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(file, `tensor '${name}' has shape ${String(shape)}; expected an array of non-negative integers`);
  }
  const numel = shape.reduce((a: number, b: number) => a * b, 1);
  if (numel !== data.length)
    throw bad(file, `tensor '${name}' of shape [${shape.join(', ')}] needs ${numel} elements but its data has ${data.length}`);
}

function checkMetadata(metadata: Record<string, string> | undefined, file: string): Array<[string, string]> | undefined {
  if (metadata === undefined) return undefined;
  if (!isPlainObject(metadata)) throw bad(file, `metadata must be an object of strings but is ${metadata === null ? 'null' : typeof metadata}`);
  const pairs = Object.entries(metadata);
  const wrong = pairs.find(([, v]) => typeof v !== 'string');
  if (wrong) throw bad(file, `metadata '${wrong[0]}' must be a string (the format holds only strings) but is ${typeof wrong[1]}`);
  return pairs;
}

/**
 * The length prefix and the header, padded with spaces to the alignment.
 * Built as text, not with JSON.stringify of one object: that would move
 * integer-like names ('0', '1') ahead of the others.
 */
function encodeHeader(tensors: readonly NamedTensor[], metadata: Array<[string, string]> | undefined, file: string): Buffer {
  const parts: string[] = [];
  if (metadata) parts.push(`${JSON.stringify(METADATA_KEY)}:{${metadata.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  let at = 0;
  for (const t of tensors) {
    const entry = { dtype: SAFETENSORS_NAME_OF[t.dtype], shape: t.shape, data_offsets: [at, at + t.data.byteLength] };
    parts.push(`${JSON.stringify(t.name)}:${JSON.stringify(entry)}`);
    at += t.data.byteLength;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / HEADER_ALIGN) * HEADER_ALIGN;
  if (padded > MAX_HEADER_BYTES) {
    throw new CheckpointError(
      'LIMIT',
      `The safetensors header would take ${padded} bytes; readers refuse more than ${MAX_HEADER_BYTES} (writing ${file})`,
      file,
    );
  }
  const out = Buffer.alloc(LENGTH_BYTES + padded, ' ');
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, LENGTH_BYTES);
  return out;
}

/** The array's own bytes (little-endian on every platform Node.js runs the addon on), without a copy. */
function bytesOf(data: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Positional writes until all of `b` is out; returns the next offset. */
async function writeAll(fh: FileHandle, b: Uint8Array, at: number): Promise<number> {
  let done = 0;
  while (done < b.length) {
    const { bytesWritten } = await fh.write(b, done, Math.min(b.length - done, WRITE_CHUNK), at + done);
    done += bytesWritten;
  }
  return at + b.length;
}
