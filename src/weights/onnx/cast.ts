// Cast between float types, as float16 models have them: onnxconverter-common
// stores the weights as FLOAT16 and puts Cast nodes around the graph (float32
// image in, float16 inside, float32 logits out), and before ops it keeps in
// float32. A Cast to another float type only rounds; a Cast to an integer or
// float8 type changes the values and is refused by the callers.
import { onnx } from 'onnx-proto';

const DT = onnx.TensorProto.DataType;

/** Float types a Cast may target without changing the values beyond rounding. */
const FLOAT_TYPES: ReadonlySet<number> = new Set([DT.FLOAT, DT.DOUBLE, DT.FLOAT16, DT.BFLOAT16]);

/** Whether a Cast to `to` keeps the values (up to rounding). */
export function isFloatCast(to: number): boolean {
  return FLOAT_TYPES.has(to);
}

/** Whether a Cast to `to` rounds float32 values to fewer bits. */
export function isNarrowingCast(to: number): boolean {
  return to === DT.FLOAT16 || to === DT.BFLOAT16;
}

/** The ONNX name of a data type (`FLOAT16`), or its number. */
export function typeName(to: number): string {
  return DT[to] ?? String(to);
}

/** Ties to even, as IEEE 754 rounding does. */
function roundEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/** A float32 value rounded to the nearest binary16, as numpy's astype(float16). */
function roundToHalf(x: number): number {
  const a = Math.abs(x);
  if (!Number.isFinite(a) || a === 0) return x;
  if (a >= 65520) return x > 0 ? Infinity : -Infinity; // past 65504 by half a step or more
  let e = Math.max(-14, Math.floor(Math.log2(a))); // subnormals share 2^-14's spacing
  if (e > -14 && 2 ** e > a) e--; // log2 may round up just below a power of two
  if (2 ** (e + 1) <= a) e++; // or down at one
  const q = 2 ** (e - 10);
  return Math.sign(x) * roundEven(a / q) * q;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** A float32 value rounded to the nearest bfloat16 (ties to even), NaN kept. */
function roundToBfloat16(x: number): number {
  if (Number.isNaN(x)) return x;
  f32[0] = x;
  const bits = u32[0];
  u32[0] = ((bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000) >>> 0;
  return f32[0];
}

/**
 * Applies a float Cast to float32 values: rounding for FLOAT16/BFLOAT16,
 * nothing for FLOAT and DOUBLE (the values are float32 already).
 * @example
 * ```ts
 * castValues(Float32Array.of(0.1), onnx.TensorProto.DataType.FLOAT16); // [0.0999755859375]
 * ```
 */
export function castValues(data: Float32Array, to: number): Float32Array {
  if (to === DT.FLOAT16) return data.map(roundToHalf);
  if (to === DT.BFLOAT16) return data.map(roundToBfloat16);
  return data;
}
