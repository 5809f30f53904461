// Protobuf decoding of the ModelProto and the small accessors the walk uses
// on nodes: attributes by name, 64-bit integers as numbers, text attributes.
import { onnx } from 'onnx-proto';
import { OnnxFormatError } from '../errors';
import type { Node } from './types';

/**
 * Decodes a ModelProto that has a graph with nodes.
 * @throws OnnxFormatError NOT_ONNX (empty, not protobuf, or no graph).
 */
export function decodeModel(bytes: Uint8Array, source: string): onnx.ModelProto {
  if (bytes.length === 0) throw new OnnxFormatError('NOT_ONNX', `${source}: not an ONNX file: it is empty`);
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new OnnxFormatError(
      'NOT_ONNX',
      `${source}: not an ONNX file: expected an ONNX ModelProto (protobuf) or a zip .model archive but decoding failed (${(err as Error).message})`,
    );
  }
  if (!model.graph?.node || model.graph.node.length === 0) {
    throw new OnnxFormatError('NOT_ONNX', `${source}: not an ONNX file: decoded ${bytes.length} bytes but found no graph with nodes`);
  }
  return model;
}

/**
 * Version of the default ('' / ai.onnx) operator set.
 * @throws OnnxFormatError NOT_ONNX when the model imports none.
 */
export function defaultOpset(model: onnx.IModelProto, source: string): number {
  const imports = model.opsetImport ?? [];
  const entry = imports.find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!entry) {
    throw new OnnxFormatError(
      'NOT_ONNX',
      `${source}: expected an opset_import for the default ONNX domain but found ${imports.map((o) => o.domain).join(', ') || 'none'}`,
    );
  }
  return toNum(entry.version ?? 0);
}

/** "producer_name producer_version", or undefined when neither is set. */
export function producerOf(model: onnx.IModelProto): string | undefined {
  return [model.producerName, model.producerVersion].filter((s) => s).join(' ') || undefined;
}

/** protobufjs hands 64-bit integers out as Long objects when `long` is installed. */
export function toNum(v: number | { toNumber(): number }): number {
  return typeof v === 'number' ? v : v.toNumber();
}

export function attr(node: Node, name: string): onnx.IAttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

/** An INTS attribute, or undefined when absent. */
export function ints(node: Node, name: string): number[] | undefined {
  const a = attr(node, name);
  return a ? (a.ints ?? []).map(toNum) : undefined;
}

/** An INT attribute, or `fallback` when absent. */
export function int(node: Node, name: string, fallback: number): number {
  const v = attr(node, name)?.i;
  return v === undefined || v === null ? fallback : toNum(v);
}

/** An INT attribute, or undefined when absent. */
export function optionalInt(node: Node, name: string): number | undefined {
  const v = attr(node, name)?.i;
  return v === undefined || v === null ? undefined : toNum(v);
}

/** A STRING attribute as text, or `fallback` when absent. */
export function text(node: Node, name: string, fallback: string): string {
  const s = attr(node, name)?.s;
  return s ? Buffer.from(s).toString() : fallback;
}

/** Whether a node's op is a standard one (domain '' or 'ai.onnx'), not a custom or contrib op of the same name. */
export function isDefaultDomain(n: Node): boolean {
  return !n.domain || n.domain === 'ai.onnx';
}

/** How messages name a node: `Conv node 'vgg0_conv0_fwd'`. */
export function nodeLabel(n: Node): string {
  return `${n.opType} node '${n.name || n.output?.[0] || '?'}'`;
}
