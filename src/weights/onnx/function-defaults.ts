// Default attribute values of local functions (FunctionProto.attribute_proto,
// field 11, IR 9). The onnx-proto package predates that field and drops it
// while decoding, so it is picked out of the model's bytes here: a scan over
// the top-level fields that skips the graph in O(1) and decodes only the
// functions' own small fields.
import { onnx } from 'onnx-proto';
import { OnnxFormatError } from '../errors';

/** ModelProto.functions and FunctionProto.attribute_proto field numbers (onnx.proto). */
const MODEL_FUNCTIONS = 25;
const FUNCTION_ATTRIBUTE_PROTO = 11;

/** A cursor over protobuf wire format: just varints and field skipping. */
class WireReader {
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly end = buf.length,
  ) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      value += (b & 0x7f) * 2 ** shift; // multiplication: shifts overflow past 31 bits
      if (b < 0x80) return value;
    }
    throw new Error('varint longer than 10 bytes');
  }

  /** The next field's number, wire type and, for length-delimited fields, its bytes. */
  field(): { number: number; bytes?: Uint8Array } {
    const tag = this.varint();
    const wire = tag % 8;
    const number = Math.floor(tag / 8);
    if (wire === 0) this.varint();
    else if (wire === 1) this.skip(8);
    else if (wire === 5) this.skip(4);
    else if (wire === 2) {
      const len = this.varint();
      const start = this.pos;
      this.skip(len);
      return { number, bytes: this.buf.subarray(start, start + len) };
    } else throw new Error(`wire type ${wire}`);
    return { number };
  }

  private skip(n: number): void {
    if (this.pos + n > this.end) throw new Error('field past the end');
    this.pos += n;
  }
}

/**
 * The attribute_proto defaults of each FunctionProto, in the order of
 * ModelProto.functions (one list per function, empty when it has none).
 * @throws OnnxFormatError NOT_ONNX when the bytes do not scan (they decoded already, so only a damaged function does this).
 * @example
 * ```ts
 * const defaults = functionDefaults(bytes, 'model.onnx'); // defaults[i] belongs to model.functions[i]
 * ```
 */
export function functionDefaults(bytes: Uint8Array, source: string): onnx.IAttributeProto[][] {
  try {
    const out: onnx.IAttributeProto[][] = [];
    const model = new WireReader(bytes);
    while (!model.done) {
      const f = model.field();
      if (f.number !== MODEL_FUNCTIONS || !f.bytes) continue;
      const attrs: onnx.IAttributeProto[] = [];
      const fn = new WireReader(f.bytes);
      while (!fn.done) {
        const g = fn.field();
        if (g.number === FUNCTION_ATTRIBUTE_PROTO && g.bytes) attrs.push(onnx.AttributeProto.decode(g.bytes));
      }
      out.push(attrs);
    }
    return out;
  } catch (err) {
    throw new OnnxFormatError('NOT_ONNX', `${source}: not an ONNX file: its local functions do not decode (${(err as Error).message})`);
  }
}
