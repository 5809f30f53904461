// The ModelProto written in pieces, so a 500+ MB model is never copied into
// one buffer: onnx-proto (protobufjs) encodes every message except the
// initializers' raw_data, and each tensor's bytes go to the file straight from
// the arrays they are given. The bytes are those of a one-shot encode: protobuf's
// length-delimited fields (https://protobuf.dev/programming-guides/encoding/)
// are a tag, a varint length and the payload, and the pieces follow the field
// numbers in order (ModelProto 1-6, graph 7, 8, 14; GraphProto node 1, name 2,
// initializer 5, doc_string 10, input 11, output 12; TensorProto dims 1,
// data_type 2, name 8, raw_data 9).
import type * as fs from 'node:fs';
import * as os from 'node:os';
import { onnx } from 'onnx-proto';
import { CheckpointError } from '../../errors';

/** Field numbers of the length-delimited fields written by hand (onnx.proto). */
const FIELD = { modelGraph: 7, graphInitializer: 5, tensorRawData: 9 } as const;
/** Wire type of length-delimited fields. */
const LEN = 2;
/** protobuf messages (and the C++ parsers of onnx and onnxruntime) stop at 2 GiB - 1. */
export const MAX_PROTO_BYTES = 2 ** 31 - 1;

const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/** A varint (lengths here stay far below 2^53). */
function varint(n: number): Uint8Array {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

/** Tag and length of a length-delimited field. */
function fieldPrefix(field: number, length: number): Uint8Array {
  return Buffer.concat([varint((field << 3) | LEN), varint(length)]);
}

/**
 * One initializer of the graph: a name, its dims and its elements, row-major.
 * The element type follows the array (the four the export writes):
 * Float32Array FLOAT, Int8Array INT8, Uint8Array UINT8, Int32Array INT32
 * (onnx.proto TensorProto.DataType).
 */
export interface OnnxInitializer {
  name: string;
  /** [] for a scalar. */
  shape: readonly number[];
  data: Float32Array | Int8Array | Uint8Array | Int32Array;
}

const D = onnx.TensorProto.DataType;

/** TensorProto.data_type of an initializer's array; anything else is a bug of the caller (not a user's input). */
function dataTypeOf(data: OnnxInitializer['data']): onnx.TensorProto.DataType {
  if (data instanceof Float32Array) return D.FLOAT;
  if (data instanceof Int8Array) return D.INT8;
  if (data instanceof Int32Array) return D.INT32;
  if (data instanceof Uint8Array) return D.UINT8;
  throw new TypeError(`an ONNX initializer must be a Float32Array, Int8Array, Uint8Array or Int32Array, not ${(data as object).constructor.name}`);
}

/**
 * An initializer's bytes, little-endian (ONNX raw_data): a view on the array
 * (never a copy: the float tensors are the model's 500 MB), except for the
 * 4-byte types on a big-endian host, which get a swapped copy. 1-byte types
 * have no byte order.
 */
function rawBytes(t: OnnxInitializer): Uint8Array {
  const view = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return LITTLE_ENDIAN_HOST || t.data.BYTES_PER_ELEMENT === 1 ? view : Buffer.from(view).swap32();
}

/** One initializer: everything before its raw_data, and the length of the whole TensorProto. */
interface InitializerPiece {
  tensor: OnnxInitializer;
  /** GraphProto.initializer tag and length, TensorProto dims/data_type/name, raw_data tag and length. */
  head: Uint8Array;
  /** Bytes of the initializer field, head included. */
  size: number;
}

function initializerPiece(t: OnnxInitializer): InitializerPiece {
  const fields = onnx.TensorProto.encode({ dims: [...t.shape], dataType: dataTypeOf(t.data), name: t.name }).finish();
  const raw = fieldPrefix(FIELD.tensorRawData, t.data.byteLength);
  const tensorLength = fields.length + raw.length + t.data.byteLength;
  const head = Buffer.concat([fieldPrefix(FIELD.graphInitializer, tensorLength), fields, raw]);
  return { tensor: t, head, size: head.length + t.data.byteLength };
}

/** The model, split where the initializers' raw data goes. */
export interface EncodedModel {
  /** Bytes of the whole file. */
  size: number;
  write(fh: fs.promises.FileHandle): Promise<void>;
}

/**
 * Lays out a ModelProto whose graph's initializers are `initializers`
 * (FLOAT, INT8, UINT8 or INT32, written as raw_data) without copying their data.
 * @param model - every ModelProto field but the graph
 * @param graph - every GraphProto field but the initializers
 * @throws CheckpointError BAD_VALUE when the model would reach protobuf's 2 GiB limit
 */
export function encodeModel(
  model: Omit<onnx.IModelProto, 'graph'>,
  graph: Omit<onnx.IGraphProto, 'initializer'>,
  initializers: readonly OnnxInitializer[],
  file: string,
): EncodedModel {
  const { opsetImport, metadataProps, ...modelHead } = model;
  const { node, name, ...graphTail } = graph;
  const pieces = {
    modelHead: onnx.ModelProto.encode(modelHead).finish(),
    graphHead: onnx.GraphProto.encode({ node, name }).finish(),
    inits: initializers.map(initializerPiece),
    graphTail: onnx.GraphProto.encode(graphTail).finish(),
    modelTail: onnx.ModelProto.encode({ opsetImport, metadataProps }).finish(),
  };
  const graphLength = pieces.graphHead.length + pieces.inits.reduce((a, p) => a + p.size, 0) + pieces.graphTail.length;
  const graphPrefix = fieldPrefix(FIELD.modelGraph, graphLength);
  const size = pieces.modelHead.length + graphPrefix.length + graphLength + pieces.modelTail.length;
  if (size > MAX_PROTO_BYTES) {
    throw new CheckpointError(
      'BAD_VALUE',
      `cannot export to ${file}: the model takes ${size} bytes, past protobuf's limit of ${MAX_PROTO_BYTES} for one ModelProto (a classifier this wide needs ONNX external data, which the writer does not produce)`,
      file,
    );
  }
  return {
    size,
    async write(fh) {
      await writeAll(fh, Buffer.concat([pieces.modelHead, graphPrefix, pieces.graphHead]));
      for (const p of pieces.inits) {
        await writeAll(fh, p.head);
        await writeAll(fh, rawBytes(p.tensor));
      }
      await writeAll(fh, Buffer.concat([pieces.graphTail, pieces.modelTail]));
    },
  };
}

/** Writes every byte (a write may take fewer than asked). */
async function writeAll(fh: fs.promises.FileHandle, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length; ) {
    const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
    off += bytesWritten;
  }
}
