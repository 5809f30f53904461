// Canonical (mmcls) names <-> torchvision's, whose `features.N` counts every
// module: conv, [bn], relu per convolution and one pool per stage.
import { convSlots, type ArchSpec } from '../arch';

/** canonical name -> torchvision name for every tensor of the architecture. */
export function torchvisionNames(arch: ArchSpec): Map<string, string> {
  const map = new Map<string, string>();
  let tv = 0;
  let stage = 0;
  for (const slot of convSlots(arch.depth)) {
    if (slot.stage !== stage) {
      tv++; // the previous stage's MaxPool
      stage = slot.stage;
    }
    const p = `features.${slot.featureIndex}`;
    map.set(`${p}.conv.weight`, `features.${tv}.weight`);
    map.set(`${p}.conv.bias`, `features.${tv}.bias`);
    if (arch.batchNorm) {
      for (const b of ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']) {
        map.set(`${p}.bn.${b}`, `features.${tv + 1}.${b}`);
      }
      tv++;
    }
    tv += 2; // conv (or bn) and relu
  }
  for (const i of [0, 3, 6]) for (const s of ['weight', 'bias']) map.set(`classifier.${i}.${s}`, `classifier.${i}.${s}`);
  return map;
}
