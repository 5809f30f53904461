// The Reshape before the classifier. Exporters write the flatten as a
// Reshape to a constant ([1, -1], [1, 25088]) or to a shape computed from
// the tensor itself ([Shape(x)[0], -1]); it is read as the flatten only when
// its target provably is [N, C*H*W] for the tensor it reshapes. Any other
// target would move the numbers between images or features, and is refused.
import { FLATTENED_FEATURES } from '../../arch';
import { OnnxFormatError } from '../errors';
import { int, ints } from './proto';
import { ShapeUnknown, type SymDim, shapeValue } from './shape-values';
import type { Node } from './types';
import { dataRank, type OpHandler, type WalkState } from './walk-state';

const DIM_NAMES: Readonly<Record<number, readonly string[]>> = { 4: ['N', 'C', 'H', 'W'], 2: ['N', 'F'] };

/** `[N, -1]`, `[N, C*H*W]`, `[?, 7]`: a target as messages show it. */
function describe(dims: SymDim[], rank: number): string {
  const one = (d: SymDim) => {
    if (d.opaque) return '?';
    if (d.dims.length === 0) return String(d.coef);
    const names = d.dims.map((i) => DIM_NAMES[rank]?.[i] ?? `d${i}`).join('*');
    return d.coef === 1 ? names : `${d.coef}*${names}`;
  };
  return `[${dims.map(one).join(', ')}]`;
}

/** The target: input 1 (opset 5+), computed; or the `shape` attribute of Reshape-1. */
function target(w: WalkState, node: Node, label: string): SymDim[] {
  const name = node.input?.[1];
  if (!name) {
    const shape = ints(node, 'shape');
    if (!shape) throw new OnnxFormatError('UNSUPPORTED_OP', `${w.source}: ${label} has no target shape (neither input 1 nor a shape attribute)`);
    return shape.map((v) => ({ coef: v, dims: [] }));
  }
  const p = w.params;
  try {
    const v = shapeValue(name, {
      source: w.source,
      externalDir: p.externalDir,
      initializers: p.initializers,
      producers: w.producers,
      ranks: w.ranks,
      subject: w.current,
    });
    if (v.scalar) throw new ShapeUnknown('it is a scalar');
    return v.values;
  } catch (err) {
    if (!(err instanceof ShapeUnknown)) throw err;
    throw new OnnxFormatError(
      'UNSUPPORTED_OP',
      `${w.source}: unsupported op: ${label} reshapes to a shape the reader cannot compute (${err.message}); only the flatten to [N, C*H*W] is read`,
    );
  }
}

/** A 0 copies the input's dimension (allowzero=0, the default); with allowzero=1 it makes an empty one. */
function zerosCopied(w: WalkState, node: Node, label: string, dims: SymDim[], rank: number): SymDim[] {
  const allowZero = int(node, 'allowzero', 0) !== 0;
  return dims.map((d, i) => {
    if (d.opaque || d.dims.length > 0 || d.coef !== 0) return d;
    if (allowZero) {
      throw new OnnxFormatError(
        'UNSUPPORTED_ATTRIBUTE',
        `${w.source}: ${label} has allowzero=1 and a 0 in its target ${describe(dims, rank)}, which makes a dimension of size 0; expected the flatten to [N, C*H*W]`,
        label,
      );
    }
    return i < rank ? { coef: 1, dims: [i] } : d;
  });
}

/**
 * [N or a traced batch size, -1 or C*H*W], or [-1, C*H*W]: what keeps each
 * image's features together in row-major order. C*H*W as a literal can only
 * be the 25088 the first dense layer takes (checked there).
 */
function isFlatten(dims: SymDim[], rank: number): boolean {
  if (dims.length !== 2 || dims.some((d) => d.opaque)) return false;
  const [a, b] = dims;
  const lit = (d: SymDim, v?: number) => d.dims.length === 0 && (v === undefined || d.coef === v);
  const rest = Array.from({ length: rank - 1 }, (_, i) => i + 1).join();
  const isRest = (b.coef === 1 && b.dims.join() === rest) || (rank === 4 && lit(b, FLATTENED_FEATURES));
  const isBatch = (a.coef === 1 && a.dims.join() === '0') || (lit(a) && a.coef >= 1);
  return (isBatch && (lit(b, -1) || isRest)) || (lit(a, -1) && isRest);
}

export const reshape: OpHandler = (w, node, label) => {
  const rank = dataRank(w);
  const dims = zerosCopied(w, node, label, target(w, node, label), rank);
  if (!isFlatten(dims, rank)) {
    throw new OnnxFormatError(
      'UNSUPPORTED_OP',
      `${w.source}: unsupported op: ${label} reshapes ${describe(
        Array.from({ length: rank }, (_, i) => ({ coef: 1, dims: [i] })),
        rank,
      )} to ${describe(dims, rank)}; only the flatten to [N, C*H*W] (as [N, -1], [1, -1], [0, -1] or [-1, ${FLATTENED_FEATURES}]) is read`,
    );
  }
  w.inHead = true;
};
