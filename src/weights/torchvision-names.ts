// Canonical (mmcls) names -> torchvision's, whose `features.N` counts every
// module (conv, [bn], relu per convolution and one pool per stage). Derived
// from the table in arch.ts, like every other name.
import { stateShapes, type ArchSpec } from '../arch';

/**
 * Canonical name -> torchvision name for every tensor of the architecture,
 * classifier included (its names do not depend on the class count).
 * @param arch - depth and batch norm
 * @returns a map in state_dict order
 * @example torchvisionNames({ depth: 16, batchNorm: true }).get('features.1.bn.running_mean') // 'features.4.running_mean'
 */
export function torchvisionNames(arch: ArchSpec): Map<string, string> {
  // Any class count > 0 names the classifier's tensors; 1 is the cheapest.
  return new Map(stateShapes(arch, 1).map((e) => [e.name, e.torchvisionName]));
}
