// model.save(): the model's state as a zip-format .pth that PyTorch's
// torch.load(path, weights_only=True) reads, in mmcls or torchvision layout.
import type { ArchSpec } from '../arch';
import { archName } from '../arch';
import type { NamedTensor } from '../binding';
import { writePth } from './pth-writer';
import { torchvisionNames } from './torchvision-names';

export type SaveLayout = 'mmcls' | 'torchvision';

export interface SaveContent {
  arch: ArchSpec;
  state: NamedTensor[];
  labels?: string[];
  layout: SaveLayout;
  extraMeta?: Record<string, unknown>;
}

/**
 * mmcls layout: { meta: { arch, CLASSES, ... }, state_dict: { backbone.* } },
 * what mmcls's load_checkpoint and our reader take. torchvision layout: the
 * bare state_dict torchvision's `model.load_state_dict(torch.load(f))` takes
 * (it has no place for meta).
 */
export async function saveCheckpoint(file: string, c: SaveContent): Promise<void> {
  const state = new Map<string, NamedTensor>();
  if (c.layout === 'torchvision') {
    const names = torchvisionNames(c.arch);
    for (const t of c.state) {
      const tv = names.get(t.name);
      if (!tv) throw new Error(`cannot save '${t.name}' in torchvision layout`);
      state.set(tv, t);
    }
    await writePth(file, state);
    return;
  }
  for (const t of c.state) state.set(`backbone.${t.name}`, t);
  const meta = new Map<string, unknown>([
    ['arch', archName(c.arch)],
    ['saved_by', 'vgg-native'],
    ['time', new Date().toISOString()],
    ...Object.entries(c.extraMeta ?? {}),
  ]);
  if (c.labels) meta.set('CLASSES', c.labels);
  await writePth(file, new Map<string, unknown>([['meta', meta], ['state_dict', state]]));
}
