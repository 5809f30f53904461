// Where a node's parameters come from: initializers, Constant nodes, and
// Identity nodes over either (torch exports Identity nodes over shared
// parameters; some tools emit Constant nodes instead of initializers).
import type { onnx } from 'onnx-proto';
import { OnnxFormatError } from '../errors';
import { nodeLabel, toNum } from './proto';
import { constantValue, tensorToFloat32 } from './tensor-data';
import type { Node, Param, Tensor } from './types';

/** Most Identity hops followed from a name to its tensor (a chain longer than this is a loop). */
const MAX_ALIAS_HOPS = 64;

/** Resolves parameter names to float32 tensors. */
export class ParamTable {
  readonly initializers = new Map<string, Tensor>();
  private readonly constants = new Map<string, Tensor>();
  private readonly aliases = new Map<string, string>();

  constructor(
    graph: onnx.IGraphProto,
    private readonly source: string,
    private readonly externalDir: string | undefined,
  ) {
    for (const t of graph.initializer ?? []) if (t.name) this.initializers.set(t.name, t);
    for (const node of graph.node ?? []) {
      const out = node.output?.[0];
      if (!out) continue;
      if (node.opType === 'Constant') {
        const t = constantValue(node);
        if (t) this.constants.set(out, t);
      }
      if (node.opType === 'Identity' && node.input?.[0]) this.aliases.set(out, node.input[0]);
    }
  }

  /**
   * Input `index` of `node` as a parameter; undefined when absent and not `required`.
   * @param what - how messages name the input ('the weight', 'scale', ...)
   * @throws OnnxFormatError NOT_VGG (a required input is absent),
   * MISSING_INITIALIZER (it names no tensor), BAD_TENSOR, EXTERNAL_DATA.
   */
  param(node: Node, index: number, what: string, required: true): Param;
  param(node: Node, index: number, what: string, required: boolean): Param | undefined;
  param(node: Node, index: number, what: string, required: boolean): Param | undefined {
    const name = node.input?.[index];
    if (!name) {
      if (required) throw new OnnxFormatError('NOT_VGG', `${this.source}: ${nodeLabel(node)} has no input ${index} (${what})`);
      return undefined;
    }
    const t = this.resolve(name);
    if (!t) {
      throw new OnnxFormatError(
        'MISSING_INITIALIZER',
        `${this.source}: missing initializer: ${nodeLabel(node)} reads ${what} from '${name}', which is neither an initializer nor a Constant`,
      );
    }
    return { name, dims: (t.dims ?? []).map(toNum), data: tensorToFloat32(t, this.source, name, this.externalDir) };
  }

  private resolve(name: string): Tensor | undefined {
    for (let hops = 0; hops < MAX_ALIAS_HOPS; hops++) {
      const t = this.initializers.get(name) ?? this.constants.get(name);
      if (t) return t;
      const next = this.aliases.get(name);
      if (next === undefined) return undefined;
      name = next;
    }
    return undefined;
  }
}
