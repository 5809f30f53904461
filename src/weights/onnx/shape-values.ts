// Symbolic evaluation of the small integer subgraphs exporters compute a
// Reshape's target with. torch.onnx.export writes `x.view(x.size(0), -1)` as
// Shape(x) -> Gather(0) -> Unsqueeze -> Concat([.., -1]) -> Reshape, and other
// tools use Slice, Squeeze, Mul or plain Constants. Each element of the
// result is either a literal or a product of dimensions of the tensor being
// reshaped (`coef * d[i] * d[j]...`), so the caller can tell a flatten
// ([N, -1], [N, C*H*W]) from a reshape that moves numbers around. Anything the
// evaluation does not follow makes the target unknown, and the file refused.
import { onnx } from 'onnx-proto';
import { MAX_SHAPE_NODES, MAX_SHAPE_VALUES } from './limits';
import { type IntSource, tensorInts } from './int-data';
import { ints, isDefaultDomain, nodeLabel, optionalInt, toNum } from './proto';
import type { Node, Tensor } from './types';

const DT = onnx.TensorProto.DataType;
const INT_TYPES: ReadonlySet<number> = new Set([DT.INT64, DT.INT32, DT.INT16, DT.INT8, DT.UINT32, DT.UINT16, DT.UINT8, DT.UINT64]);

/** One element of a computed shape: `coef` times the dimensions `dims` (indices, sorted) of the tensor being reshaped. */
export interface SymDim {
  coef: number;
  dims: number[];
  /** Depends on something other than the reshaped tensor's dimensions (another tensor's C, H or W). */
  opaque?: boolean;
}

/** A 0-d or 1-d integer tensor, symbolically. */
export interface SymVec {
  values: SymDim[];
  scalar: boolean;
}

/** What the evaluation may look at. */
export interface ShapeContext {
  readonly source: string;
  readonly externalDir: string | undefined;
  readonly initializers: ReadonlyMap<string, Tensor>;
  /** The node writing each tensor. */
  readonly producers: ReadonlyMap<string, Node>;
  /** Rank of each tensor on the image's path so far: their dimension 0 is the batch. */
  readonly ranks: ReadonlyMap<string, number>;
  /** The tensor being reshaped. */
  readonly subject: string;
}

/** Why a target cannot be computed; the Reshape handler turns it into a refusal. */
export class ShapeUnknown extends Error {}

/** Attributes each op may carry here; any other could change the result. */
const SHAPE_OPS: Readonly<Record<string, readonly string[]>> = {
  Constant: ['value', 'value_int', 'value_ints'],
  Identity: [],
  Cast: ['to', 'saturate'],
  Shape: ['start', 'end'],
  Gather: ['axis'],
  Unsqueeze: ['axes'],
  Squeeze: ['axes'],
  Concat: ['axis'],
  Slice: ['starts', 'ends', 'axes', 'steps'],
  Mul: [],
};

const literal = (v: number): SymDim => ({ coef: v, dims: [] });
const isLiteral = (d: SymDim) => !d.opaque && d.dims.length === 0;
const literals = (values: number[], scalar: boolean): SymVec => ({ values: values.map(literal), scalar });

/** A clamp of ONNX's start/end rules (negative counts from the end). */
function clampIndex(i: number, len: number): number {
  return Math.min(len, Math.max(0, i < 0 ? i + len : i));
}

class Evaluator {
  private readonly memo = new Map<string, SymVec>();
  private steps = 0;

  constructor(private readonly ctx: ShapeContext) {}

  value(name: string): SymVec {
    if (!name) throw new ShapeUnknown('an omitted input');
    const known = this.memo.get(name);
    if (known) return known;
    if (++this.steps > MAX_SHAPE_NODES) throw new ShapeUnknown(`more than ${MAX_SHAPE_NODES} nodes compute it`);
    const node = this.ctx.producers.get(name);
    const v = node ? this.ofNode(node) : this.ofTensor(this.ctx.initializers.get(name), name);
    this.memo.set(name, v);
    return v;
  }

  private ofTensor(t: Tensor | undefined, name: string): SymVec {
    if (!t) throw new ShapeUnknown(`'${name}' is a graph input, not a constant`);
    const read = tensorInts(t, this.intSource(name));
    if (!read) throw new ShapeUnknown(`'${name}' is not a small INT64/INT32 tensor`);
    return literals(read.values, read.dims.length === 0);
  }

  private intSource(name: string): IntSource {
    return { source: this.ctx.source, name, externalDir: this.ctx.externalDir };
  }

  /** Literal integers of input `i` (indices, axes, bounds). */
  private ints(node: Node, i: number): number[] {
    const v = this.value(node.input?.[i] ?? '');
    if (!v.values.every(isLiteral)) throw new ShapeUnknown(`${nodeLabel(node)} input ${i} is not a constant`);
    return v.values.map((d) => d.coef);
  }

  /** An attribute's ints, else input `i`'s, else `fallback` (opsets moved several attributes to inputs). */
  private attrOrInput(node: Node, name: string, i: number, fallback?: number[]): number[] | undefined {
    return ints(node, name) ?? (node.input?.[i] ? this.ints(node, i) : fallback);
  }

  private vector(node: Node, i: number): SymDim[] {
    const v = this.value(node.input?.[i] ?? '');
    if (v.scalar) throw new ShapeUnknown(`${nodeLabel(node)} input ${i} is a scalar`);
    return v.values;
  }

  private ofNode(node: Node): SymVec {
    const op = node.opType ?? '';
    const allowed = SHAPE_OPS[op];
    if (!isDefaultDomain(node) || !allowed) throw new ShapeUnknown(`it is computed by ${nodeLabel(node)}, which the reader does not follow`);
    const odd = (node.attribute ?? []).find((a) => !allowed.includes(a.name ?? ''));
    if (odd) throw new ShapeUnknown(`${nodeLabel(node)} has attribute '${odd.name}'`);
    switch (op) {
      case 'Constant':
        return this.constant(node);
      case 'Identity':
        return this.value(node.input?.[0] ?? '');
      case 'Cast':
        if (!INT_TYPES.has(optionalInt(node, 'to') ?? 0)) throw new ShapeUnknown(`${nodeLabel(node)} casts to a non-integer type`);
        return this.value(node.input?.[0] ?? '');
      case 'Shape':
        return this.shape(node);
      case 'Gather':
        return this.gather(node);
      case 'Unsqueeze':
      case 'Squeeze':
        return this.squeeze(node, op === 'Unsqueeze');
      case 'Concat':
        return this.concat(node);
      case 'Slice':
        return this.slice(node);
      default:
        return this.mul(node);
    }
  }

  private concat(node: Node): SymVec {
    if (![0, -1].includes(optionalInt(node, 'axis') ?? 0)) throw new ShapeUnknown(`${nodeLabel(node)} concatenates along another axis`);
    const values = (node.input ?? []).flatMap((_, i) => this.vector(node, i));
    // One input may be listed many times: the memo does not count those.
    if (values.length > MAX_SHAPE_VALUES) throw new ShapeUnknown(`${nodeLabel(node)} makes more than ${MAX_SHAPE_VALUES} values`);
    return { values, scalar: false };
  }

  private constant(node: Node): SymVec {
    const a = node.attribute?.[0];
    if (a?.name === 'value_int') return literals([toNum(a.i ?? 0)], true);
    if (a?.name === 'value_ints') return literals((a.ints ?? []).map(toNum), false);
    return this.ofTensor(a?.t ?? undefined, node.output?.[0] ?? '');
  }

  /** Shape(t)[start:end]: the reshaped tensor's own dimensions, another path tensor's batch, or a constant's dims. */
  private shape(node: Node): SymVec {
    const t = node.input?.[0] ?? '';
    const rank = this.ctx.ranks.get(t);
    let dims: SymDim[];
    if (rank !== undefined) {
      const own = t === this.ctx.subject;
      dims = Array.from({ length: rank }, (_, i) => (own || i === 0 ? { coef: 1, dims: [i] } : { coef: 1, dims: [i], opaque: true }));
    } else {
      const init = this.ctx.initializers.get(t);
      if (!init) throw new ShapeUnknown(`${nodeLabel(node)} reads '${t}', which is not on the image's path`);
      dims = (init.dims ?? []).map((d) => literal(toNum(d)));
    }
    if (dims.length > MAX_SHAPE_VALUES) throw new ShapeUnknown(`${nodeLabel(node)} reads a tensor of rank ${dims.length}`);
    const start = clampIndex(optionalInt(node, 'start') ?? 0, dims.length);
    const end = clampIndex(optionalInt(node, 'end') ?? dims.length, dims.length);
    return { values: dims.slice(start, end), scalar: false };
  }

  private gather(node: Node): SymVec {
    if (![0, -1].includes(optionalInt(node, 'axis') ?? 0)) throw new ShapeUnknown(`${nodeLabel(node)} gathers along another axis`);
    const data = this.vector(node, 0);
    const idx = this.value(node.input?.[1] ?? '');
    const values = this.ints(node, 1).map((i) => {
      const d = data[i < 0 ? i + data.length : i];
      if (!d) throw new ShapeUnknown(`${nodeLabel(node)} index ${i} is out of range`);
      return d;
    });
    return { values, scalar: idx.scalar };
  }

  /** Unsqueeze of a scalar to [1] elements, Squeeze of [1] to a scalar: the only rank changes a 1-d shape needs. */
  private squeeze(node: Node, unsqueeze: boolean): SymVec {
    const x = this.value(node.input?.[0] ?? '');
    const axes = this.attrOrInput(node, 'axes', 1, unsqueeze ? undefined : [0]);
    const axisOk = axes?.length === 1 && (axes[0] === 0 || axes[0] === -1);
    if (!axisOk || x.scalar !== unsqueeze || (!unsqueeze && x.values.length !== 1)) {
      throw new ShapeUnknown(`${nodeLabel(node)} makes more than a 1-d shape`);
    }
    return { values: x.values, scalar: !unsqueeze };
  }

  private slice(node: Node): SymVec {
    const data = this.vector(node, 0);
    const starts = this.attrOrInput(node, 'starts', 1);
    const ends = this.attrOrInput(node, 'ends', 2);
    const axes = this.attrOrInput(node, 'axes', 3, [0]);
    const steps = this.attrOrInput(node, 'steps', 4, [1]);
    if (starts?.length !== 1 || ends?.length !== 1 || axes?.length !== 1 || ![0, -1].includes(axes[0]) || steps?.join() !== '1') {
      throw new ShapeUnknown(`${nodeLabel(node)} is not a step-1 slice of a 1-d shape`);
    }
    return { values: data.slice(clampIndex(starts[0], data.length), clampIndex(ends[0], data.length)), scalar: false };
  }

  /** Elementwise product, a one-element side broadcast. */
  private mul(node: Node): SymVec {
    const a = this.value(node.input?.[0] ?? '');
    const b = this.value(node.input?.[1] ?? '');
    const n = Math.max(a.values.length, b.values.length);
    if ((a.values.length !== n && a.values.length !== 1) || (b.values.length !== n && b.values.length !== 1)) {
      throw new ShapeUnknown(`${nodeLabel(node)} multiplies vectors of different lengths`);
    }
    const values = Array.from({ length: n }, (_, i) => {
      const x = a.values[a.values.length === 1 ? 0 : i];
      const y = b.values[b.values.length === 1 ? 0 : i];
      return { coef: x.coef * y.coef, dims: [...x.dims, ...y.dims].sort((p, q) => p - q), opaque: x.opaque || y.opaque };
    });
    return { values, scalar: a.scalar && b.scalar };
  }
}

/**
 * The value of the integer tensor `name`, symbolically, as far as the
 * subgraph computing it can be followed (at most MAX_SHAPE_NODES nodes).
 * @throws ShapeUnknown saying what could not be followed; OnnxFormatError EXTERNAL_DATA.
 * @example
 * ```ts
 * const target = shapeValue(reshape.input[1], ctx); // [{coef: 1, dims: [0]}, {coef: -1, dims: []}] for [N, -1]
 * ```
 */
export function shapeValue(name: string, ctx: ShapeContext): SymVec {
  return new Evaluator(ctx).value(name);
}
