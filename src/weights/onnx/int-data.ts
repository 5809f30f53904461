// Small integer tensors as numbers: Reshape targets, Gather indices, Slice
// bounds and Unsqueeze axes are INT64 (sometimes INT32) tensors of a few
// elements. Larger ones are not shape data, and are not read.
import { onnx } from 'onnx-proto';
import { MAX_SHAPE_VALUES } from './limits';
import { toNum } from './proto';
import { externalBytes } from './tensor-data';
import type { Tensor } from './types';

const DT = onnx.TensorProto.DataType;

/** Where an integer tensor comes from, for external data and messages. */
export interface IntSource {
  source: string;
  name: string;
  externalDir: string | undefined;
}

/** Little-endian INT64/INT32 bytes as numbers; undefined past 2^53. */
function rawInts(raw: Uint8Array, type: number): number[] | undefined {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: number[] = [];
  if (type === DT.INT32) for (let i = 0; i + 4 <= raw.length; i += 4) out.push(view.getInt32(i, true));
  else {
    for (let i = 0; i + 8 <= raw.length; i += 8) {
      const v = view.getBigInt64(i, true);
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) return undefined;
      out.push(Number(v));
    }
  }
  return out;
}

/**
 * An INT64 or INT32 tensor of at most MAX_SHAPE_VALUES elements, with its
 * shape; undefined for any other type, a larger tensor, or a value count that
 * disagrees with the shape.
 * @throws OnnxFormatError EXTERNAL_DATA when its external data cannot be read.
 * @example
 * ```ts
 * const target = tensorInts(shapeInitializer, { source: 'vgg.onnx', name: 'shape', externalDir: undefined }); // { dims: [2], values: [1, -1] }
 * ```
 */
export function tensorInts(t: Tensor, from: IntSource): { dims: number[]; values: number[] } | undefined {
  const dims = (t.dims ?? []).map(toNum);
  const n = dims.reduce((a, b) => a * b, 1);
  const type = t.dataType ?? DT.UNDEFINED;
  if ((type !== DT.INT64 && type !== DT.INT32) || dims.length > 1 || n > MAX_SHAPE_VALUES) return undefined;
  let values: number[] | undefined;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) values = rawInts(externalBytes(t, from.source, from.name, from.externalDir), type);
  else if (t.rawData && t.rawData.length > 0) values = rawInts(t.rawData, type);
  else values = (type === DT.INT64 ? (t.int64Data ?? []) : (t.int32Data ?? [])).map(toNum);
  return values && values.length === n ? { dims, values } : undefined;
}
