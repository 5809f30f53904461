// Local functions (ModelProto.functions, IR 8+): torch.onnx.export with
// export_modules_as_functions writes each ConvModule as a call to a function
// in a custom domain. The walk only knows standard ops, so every call is
// replaced by the function's body: formal inputs and outputs renamed to the
// call's tensors, names internal to the body made unique per call, and
// attribute references (ref_attr_name) resolved from the call's attributes
// or the function's defaults. Calls nest; depth and node count are bounded.
import { onnx } from 'onnx-proto';
import { OnnxFormatError } from '../errors';
import { functionDefaults } from './function-defaults';
import { MAX_FUNCTION_DEPTH, MAX_GRAPH_NODES } from './limits';
import { nodeLabel } from './proto';
import type { Node } from './types';

interface LocalFunction {
  fn: onnx.IFunctionProto;
  defaults: onnx.IAttributeProto[];
}

interface Inlining {
  readonly source: string;
  readonly table: ReadonlyMap<string, LocalFunction>;
  readonly out: Node[];
  calls: number;
}

/** How a function is looked up: its domain ('' for ai.onnx) and name. */
function key(domain: string | null | undefined, name: string | null | undefined): string {
  return `${domain === 'ai.onnx' ? '' : (domain ?? '')}\u0000${name ?? ''}`;
}

function functionTable(model: onnx.IModelProto, bytes: Uint8Array, source: string): Map<string, LocalFunction> {
  const defaults = functionDefaults(bytes, source);
  const table = new Map<string, LocalFunction>();
  (model.functions ?? []).forEach((fn, i) => {
    const k = key(fn.domain, fn.name);
    if (table.has(k)) {
      // IR 10 overloads share a name; the overload field of a call is not decoded, so the callee would be a guess.
      throw new OnnxFormatError(
        'UNSUPPORTED_OP',
        `${source}: local function '${fn.domain}.${fn.name}' is defined more than once (overloads are not read)`,
      );
    }
    table.set(k, { fn, defaults: defaults[i] ?? [] });
  });
  return table;
}

/** A body node's attributes with references to the call's attributes (or the defaults) resolved; unresolved ones are left out, as ONNX says. */
function boundAttributes(node: Node, call: Node, f: LocalFunction): onnx.IAttributeProto[] {
  return (node.attribute ?? []).flatMap((a) => {
    if (!a.refAttrName) return [a];
    const given = call.attribute?.find((c) => c.name === a.refAttrName) ?? f.defaults.find((d) => d.name === a.refAttrName);
    return given ? [new onnx.AttributeProto({ ...given, name: a.name })] : [];
  });
}

/** The body of `f` for one call: its tensors renamed to the call's, its own tensors prefixed to stay apart from other calls'. */
function instantiate(f: LocalFunction, call: Node, n: number): Node[] {
  const prefix = `${call.name || f.fn.name}#${n}/`;
  const names = new Map<string, string>();
  (f.fn.input ?? []).forEach((formal, i) => names.set(formal, call.input?.[i] ?? ''));
  (f.fn.output ?? []).forEach((formal, i) => {
    // An output the call does not take stays an internal tensor: the body may still read it.
    if (call.output?.[i]) names.set(formal, call.output[i]);
  });
  const rename = (name: string) => (name ? (names.get(name) ?? prefix + name) : name);
  return (f.fn.node ?? []).map(
    (node) =>
      new onnx.NodeProto({
        ...node,
        name: prefix + (node.name || node.opType || ''),
        input: (node.input ?? []).map(rename),
        output: (node.output ?? []).map(rename),
        attribute: boundAttributes(node, call, f),
      }),
  );
}

function expand(nodes: readonly Node[], depth: number, s: Inlining): void {
  for (const node of nodes) {
    const f = s.table.get(key(node.domain, node.opType));
    if (!f) {
      if (s.out.length >= MAX_GRAPH_NODES) {
        throw new OnnxFormatError(
          'NOT_VGG',
          `${s.source}: not a VGG: the graph has more than ${MAX_GRAPH_NODES} nodes once its local functions are inlined`,
        );
      }
      s.out.push(node);
      continue;
    }
    // Calls count against the node bound too: functions that only call others could otherwise multiply without end.
    if (++s.calls > MAX_GRAPH_NODES) {
      throw new OnnxFormatError('NOT_VGG', `${s.source}: not a VGG: the graph makes more than ${MAX_GRAPH_NODES} local function calls`);
    }
    if (depth >= MAX_FUNCTION_DEPTH) {
      throw new OnnxFormatError(
        'NOT_VGG',
        `${s.source}: not a VGG: ${nodeLabel(node)} calls local functions nested more than ${MAX_FUNCTION_DEPTH} deep (a function that calls itself?)`,
      );
    }
    expand(instantiate(f, node, s.calls), depth + 1, s);
  }
}

/**
 * The graph's nodes with every call of a local function replaced by the
 * function's body (recursively); the nodes themselves when there are no functions.
 * @param bytes - the ModelProto's bytes, for the defaults onnx-proto does not decode
 * @throws OnnxFormatError NOT_VGG (nesting deeper than MAX_FUNCTION_DEPTH, more
 * than MAX_GRAPH_NODES nodes or calls), UNSUPPORTED_OP (a function defined twice), NOT_ONNX.
 * @example
 * ```ts
 * const nodes = inlineFunctions(decodeModel(bytes, file), bytes, file);
 * ```
 */
export function inlineFunctions(model: onnx.IModelProto, bytes: Uint8Array, source: string): Node[] {
  const nodes = model.graph?.node ?? [];
  if (!model.functions?.length) return nodes;
  const s: Inlining = { source, table: functionTable(model, bytes, source), out: [], calls: 0 };
  expand(nodes, 0, s);
  return s.out;
}
