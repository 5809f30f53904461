// Nodes in dependency order (Kahn's algorithm). ONNX requires graphs to be
// topologically sorted, but hand-edited and merged files are not always;
// sorting here lets every later step assume a producer comes before its
// readers, and finds cycles and tensors written twice up front.
import { OnnxFormatError } from '../errors';
import { nodeLabel } from './proto';
import type { Node } from './types';

/** The node writing each tensor. */
function producerIndex(nodes: readonly Node[], source: string): Map<string, number> {
  const producer = new Map<string, number>();
  nodes.forEach((node, i) => {
    for (const out of node.output ?? []) {
      if (!out) continue;
      const before = producer.get(out);
      if (before !== undefined) {
        throw new OnnxFormatError(
          'NOT_VGG',
          `${source}: not a VGG: tensor '${out}' is written by both ${nodeLabel(nodes[before])} and ${nodeLabel(node)}; each tensor has one producer`,
        );
      }
      producer.set(out, i);
    }
  });
  return producer;
}

/**
 * The nodes sorted so that each comes after the producers of its inputs
 * (breadth-first from the nodes that read no other node's output, in file order).
 * @throws OnnxFormatError NOT_VGG when a tensor has two producers or the nodes form a cycle.
 * @example
 * ```ts
 * const ordered = sortNodes(graph.node ?? [], 'vgg.onnx');
 * ```
 */
export function sortNodes(nodes: readonly Node[], source: string): Node[] {
  const producer = producerIndex(nodes, source);
  const pending = new Array<number>(nodes.length).fill(0);
  const readers: number[][] = nodes.map(() => []);
  nodes.forEach((node, i) => {
    for (const name of node.input ?? []) {
      const p = name ? producer.get(name) : undefined;
      if (p === undefined) continue; // a graph input, an initializer or an omitted optional input
      pending[i]++;
      readers[p].push(i);
    }
  });
  const queue = nodes.map((_, i) => i).filter((i) => pending[i] === 0);
  for (let head = 0; head < queue.length; head++) {
    for (const r of readers[queue[head]]) if (--pending[r] === 0) queue.push(r);
  }
  if (queue.length < nodes.length) {
    const stuck = nodes.filter((_, i) => pending[i] > 0);
    throw new OnnxFormatError(
      'NOT_VGG',
      `${source}: not a VGG: the graph has a cycle through ${stuck.slice(0, 4).map(nodeLabel).join(', ')}${stuck.length > 4 ? ` and ${stuck.length - 4} more` : ''}`,
    );
  }
  return queue.map((i) => nodes[i]);
}
