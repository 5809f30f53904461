// Where the tensors sit in the data buffer. As the reference reader does
// (huggingface/safetensors Metadata::validate), the ranges sorted by offsets
// must tile the buffer exactly: start at 0, no overlap, no hole, end at the
// buffer's end; and each range's size must be shape x dtype.
import { checkpointError } from '../pth/io';
import { ELEMENT_SIZE } from '../pth/tensor-ref';
import type { StorageDType } from '../../binding';

/** One tensor as the header declares it; offsets are relative to the data buffer's start. */
export interface HeaderEntry {
  name: string;
  dtype: StorageDType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Sorts `entries` in place by data_offsets and checks they tile `bufferBytes`.
 * @throws CheckpointError BAD_OFFSETS (begin > end, past the buffer, overlap,
 * hole, bytes left over), BAD_TENSOR (size disagrees with shape x dtype).
 */
export function checkRanges(entries: HeaderEntry[], bufferBytes: number, file: string): void {
  for (const e of entries) checkWithinBuffer(e, bufferBytes, file);
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of entries) {
    checkStartsAt(e, expected, file);
    checkSize(e, file);
    expected = e.end;
  }
  if (expected !== bufferBytes) {
    throw checkpointError(
      'BAD_OFFSETS',
      file,
      `The data buffer holds ${bufferBytes} bytes but the tensors cover ${expected}; the format leaves no bytes unclaimed`,
    );
  }
}

function checkWithinBuffer(e: HeaderEntry, bufferBytes: number, file: string): void {
  if (e.begin > e.end) throw checkpointError('BAD_OFFSETS', file, `Tensor '${e.name}' has data_offsets [${e.begin}, ${e.end}]: begin is after end`);
  if (e.end > bufferBytes) {
    throw checkpointError(
      'BAD_OFFSETS',
      file,
      `Tensor '${e.name}' has data_offsets [${e.begin}, ${e.end}] but the data buffer holds ${bufferBytes} bytes`,
    );
  }
}

function checkStartsAt(e: HeaderEntry, expected: number, file: string): void {
  if (e.begin === expected) return;
  const what =
    e.begin < expected ? `overlaps the tensor before it, which ends at ${expected}` : `leaves a hole: the previous data ends at ${expected}`;
  throw checkpointError('BAD_OFFSETS', file, `Tensor '${e.name}' has data_offsets [${e.begin}, ${e.end}] and ${what}`);
}

function checkSize(e: HeaderEntry, file: string): void {
  const esize = ELEMENT_SIZE[e.dtype];
  const held = e.end - e.begin;
  const numel = elementCount(e.shape);
  if (numel !== undefined && numel * esize === held) return;
  const needs = numel === undefined ? 'has sizes multiplying past 2^53' : `needs ${numel * esize} bytes`;
  throw checkpointError(
    'BAD_TENSOR',
    file,
    `Tensor '${e.name}' of shape ${shapeText(e.shape)} with ${esize}-byte elements ${needs} but data_offsets [${e.begin}, ${e.end}] hold ${held}`,
  );
}

/**
 * Elements of `shape`, or undefined when its sizes (zeros counted as 1, as
 * torch's strides count them) multiply past 2^53: a hostile shape may, and
 * element counts and strides must stay exact.
 */
export function elementCount(shape: number[]): number | undefined {
  let span = 1;
  for (const d of shape) {
    span *= Math.max(d, 1);
    if (span > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return shape.includes(0) ? 0 : span;
}

/** A shape for a message; a hostile one may have millions of dimensions. */
function shapeText(shape: number[]): string {
  return shape.length <= 8 ? `[${shape.join(', ')}]` : `[${shape.slice(0, 8).join(', ')}, ...] (${shape.length} dimensions)`;
}
