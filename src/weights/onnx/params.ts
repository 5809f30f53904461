// Where a node's parameters come from: initializers, Constant nodes, and
// Identity or float Cast nodes over either (torch exports Identity nodes over
// shared parameters; some tools emit Constant nodes instead of initializers;
// float16 converters cast FLOAT16 weights back to FLOAT before ops they keep
// in float32).
import type { onnx } from 'onnx-proto';
import { OnnxFormatError } from '../errors';
import { castValues, isFloatCast, typeName } from './cast';
import { int, isDefaultDomain, nodeLabel, toNum } from './proto';
import { constantValue, tensorToFloat32 } from './tensor-data';
import type { Node, Param, Tensor } from './types';

/** Most Identity/Cast hops followed from a name to its tensor (a chain longer than this is a loop). */
const MAX_ALIAS_HOPS = 64;

/** An Identity (no `to`) or Cast node between a parameter and its reader. */
interface Alias {
  from: string;
  node: Node;
  to?: number;
}

/** Resolves parameter names to float32 tensors. */
export class ParamTable {
  readonly initializers = new Map<string, Tensor>();
  private readonly constants = new Map<string, Tensor>();
  private readonly aliases = new Map<string, Alias>();

  /**
   * @param graph - the graph, its nodes with local functions inlined
   * @param externalDir - folder external tensor data is looked up in; undefined where there is none
   */
  constructor(
    graph: onnx.IGraphProto,
    private readonly source: string,
    readonly externalDir: string | undefined,
  ) {
    for (const t of graph.initializer ?? []) if (t.name) this.initializers.set(t.name, t);
    for (const node of graph.node ?? []) {
      const out = node.output?.[0];
      if (!out || !isDefaultDomain(node)) continue;
      if (node.opType === 'Constant') {
        const t = constantValue(node);
        if (t) this.constants.set(out, t);
      }
      if (node.opType === 'Identity' && node.input?.[0]) this.aliases.set(out, { from: node.input[0], node });
      if (node.opType === 'Cast' && node.input?.[0]) this.aliases.set(out, { from: node.input[0], node, to: int(node, 'to', 0) });
    }
  }

  /**
   * Input `index` of `node` as a parameter; undefined when absent and not `required`.
   * @param what - how messages name the input ('the weight', 'scale', ...)
   * @throws OnnxFormatError NOT_VGG (a required input is absent),
   * MISSING_INITIALIZER (it names no tensor), UNSUPPORTED_ATTRIBUTE (a Cast
   * to a non-float type on the way), BAD_TENSOR, EXTERNAL_DATA.
   */
  param(node: Node, index: number, what: string, required: true): Param;
  param(node: Node, index: number, what: string, required: boolean): Param | undefined;
  param(node: Node, index: number, what: string, required: boolean): Param | undefined {
    const name = node.input?.[index];
    if (!name) {
      if (required) throw new OnnxFormatError('NOT_VGG', `${this.source}: ${nodeLabel(node)} has no input ${index} (${what})`);
      return undefined;
    }
    const found = this.resolve(name);
    if (!found) {
      throw new OnnxFormatError(
        'MISSING_INITIALIZER',
        `${this.source}: missing initializer: ${nodeLabel(node)} reads ${what} from '${name}', which is neither an initializer nor a Constant`,
      );
    }
    let data = tensorToFloat32(found.tensor, this.source, name, this.externalDir);
    for (const to of found.casts) data = castValues(data, to);
    return { name, dims: (found.tensor.dims ?? []).map(toNum), data };
  }

  /** The tensor behind `name` and the Casts met on the way, innermost first. */
  private resolve(name: string): { tensor: Tensor; casts: number[] } | undefined {
    const casts: number[] = [];
    for (let hops = 0; hops < MAX_ALIAS_HOPS; hops++) {
      const tensor = this.initializers.get(name) ?? this.constants.get(name);
      if (tensor) return { tensor, casts: casts.reverse() };
      const alias = this.aliases.get(name);
      if (alias === undefined) return undefined;
      if (alias.to !== undefined) {
        if (!isFloatCast(alias.to)) {
          throw new OnnxFormatError(
            'UNSUPPORTED_ATTRIBUTE',
            `${this.source}: ${nodeLabel(alias.node)} casts parameter '${alias.from}' to ${typeName(alias.to)}; only float types keep its values`,
            nodeLabel(alias.node),
          );
        }
        casts.push(alias.to);
      }
      name = alias.from;
    }
    return undefined;
  }
}
