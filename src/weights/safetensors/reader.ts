// Reads a safetensors file's header, and only its header: 8 bytes of length,
// then that many bytes of JSON. The tensors stay in the file; native code
// reads each region straight into tensor memory.
import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { FileTensorSource } from '../../binding';
import { CheckpointError } from '../errors';
import { checkpointError, readExactly } from '../pth/io';
import { parseHeader } from './header';
import { elementCount, type HeaderEntry } from './ranges';

/** Bytes of the little-endian u64 header length that opens the file. */
export const LENGTH_BYTES = 8;
/** Largest header the reference reader accepts (huggingface/safetensors MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;

/** What a safetensors file holds: its tensors as file regions, in data order, and its metadata. */
export interface SafetensorsContents {
  /** Name → the tensor's bytes in the file (contiguous, row-major, little-endian), in the order of the data. */
  tensors: Map<string, FileTensorSource>;
  /** The header's `__metadata__` (string → string); `{}` when the file has none. */
  metadata: Record<string, string>;
}

/** Reads and checks the header of `file`; see readSafetensors for the errors. */
export async function readContents(file: string): Promise<SafetensorsContents> {
  const fh = await openFile(file);
  try {
    const size = await regularFileSize(fh, file);
    const headerBytes = await headerLength(fh, size, file);
    const header = Buffer.alloc(headerBytes); // checked against the file's size first
    await readExactly(fh, header, LENGTH_BYTES, file);
    const dataStart = LENGTH_BYTES + headerBytes;
    const { entries, metadata } = parseHeader(header, size - dataStart, file);
    return { tensors: new Map(entries.map((e) => [e.name, sourceOf(file, dataStart, e)])), metadata };
  } catch (e) {
    throw e instanceof CheckpointError ? e : unreadable(file, e);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function openFile(file: string): Promise<FileHandle> {
  try {
    return await fs.promises.open(file, 'r');
  } catch (e) {
    throw unreadable(file, e);
  }
}

/** Same wording as the weights door's (src/weights/index.ts magicOf). */
function unreadable(file: string, e: unknown): CheckpointError {
  const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
  const message = missing ? `weights file not found: ${file}` : `cannot read weights file ${file}: ${(e as Error).message}`;
  return new CheckpointError('UNREADABLE', message, file, { cause: e });
}

/** A folder opens fine on Linux and fails only at read: refuse it up front. */
async function regularFileSize(fh: FileHandle, file: string): Promise<number> {
  const st = await fh.stat();
  if (!st.isFile()) throw new CheckpointError('UNREADABLE', `cannot read weights file ${file}: not a regular file`, file);
  return st.size;
}

/**
 * The declared header length N, checked before anything is allocated by it.
 * @throws CheckpointError TRUNCATED (under 8 bytes), LIMIT (N over 100 MB), BAD_HEADER (N past the end)
 */
async function headerLength(fh: FileHandle, size: number, file: string): Promise<number> {
  if (size < LENGTH_BYTES) {
    throw checkpointError('TRUNCATED', file, `A safetensors file starts with an ${LENGTH_BYTES}-byte header length but the file has ${size} bytes`);
  }
  const prefix = Buffer.alloc(LENGTH_BYTES);
  await readExactly(fh, prefix, 0, file);
  const n = prefix.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw checkpointError('LIMIT', file, `The safetensors header declares ${n} bytes; at most ${MAX_HEADER_BYTES} are accepted`);
  }
  if (Number(n) > size - LENGTH_BYTES) {
    throw checkpointError('BAD_HEADER', file, `The safetensors header declares ${n} bytes but only ${size - LENGTH_BYTES} follow the length`);
  }
  return Number(n);
}

function sourceOf(file: string, dataStart: number, e: HeaderEntry): FileTensorSource {
  const numel = elementCount(e.shape) ?? 0; // checked exact by parseHeader
  return {
    kind: 'file',
    path: file,
    byteOffset: dataStart + e.begin,
    dtype: e.dtype,
    storageNumel: numel,
    storageOffset: 0,
    shape: e.shape,
    stride: contiguousStrides(e.shape),
  };
}

/** Row-major strides as torch computes them (a 0 size counts as 1, so strides stay positive). */
export function contiguousStrides(shape: number[]): number[] {
  const stride = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    stride[i] = step;
    step *= Math.max(shape[i], 1);
  }
  return stride;
}
