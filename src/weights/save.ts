// model.save(): the model's state as a zip-format .pth that PyTorch's
// torch.load(path, weights_only=True) reads, in mmcls or torchvision layout.
import type { ArchSpec } from '../arch';
import { archName } from '../arch';
import type { NamedTensor } from '../binding';
import { CheckpointError } from './errors';
import { writePth } from './pth/writer';
import { torchvisionNames } from './torchvision-names';

/**
 * Key layout of a saved .pth: 'mmcls' (`{ meta, state_dict }` with
 * `backbone.features.N.conv.weight`-style keys, what mmcls's load_checkpoint
 * reads) or 'torchvision' (a bare state_dict with `features.N.weight` keys,
 * what torchvision's `vgg*().load_state_dict(torch.load(f))` takes).
 */
export type SaveLayout = 'mmcls' | 'torchvision';

export interface SaveContent {
  arch: ArchSpec;
  state: NamedTensor[];
  labels?: string[];
  layout: SaveLayout;
  extraMeta?: Record<string, unknown>;
}

/** The bare state_dict torchvision's `model.load_state_dict(torch.load(f))` takes (it has no place for meta). */
function torchvisionCheckpoint(file: string, c: SaveContent): Map<string, NamedTensor> {
  const names = torchvisionNames(c.arch);
  const state = new Map<string, NamedTensor>();
  for (const t of c.state) {
    const tv = names.get(t.name);
    if (!tv) throw new CheckpointError('BAD_VALUE', `cannot save '${t.name}' in torchvision layout`, file);
    state.set(tv, t);
  }
  return state;
}

/** { meta: { arch, CLASSES, ... }, state_dict: { backbone.* } }: what mmcls's load_checkpoint and our reader take. */
function mmclsCheckpoint(c: SaveContent): Map<string, unknown> {
  const state = new Map<string, NamedTensor>();
  for (const t of c.state) state.set(`backbone.${t.name}`, t);
  const meta = new Map<string, unknown>([
    ['arch', archName(c.arch)],
    ['saved_by', 'vgg-native'],
    ['time', new Date().toISOString()],
    ...Object.entries(c.extraMeta ?? {}),
  ]);
  if (c.labels) meta.set('CLASSES', c.labels);
  return new Map<string, unknown>([
    ['meta', meta],
    ['state_dict', state],
  ]);
}

/**
 * Writes the model's state as a .pth in the chosen layout (atomically, see writePth).
 * @throws CheckpointError BAD_VALUE for a tensor the torchvision layout has no name for, or a meta value torch cannot hold.
 */
export async function saveCheckpoint(file: string, c: SaveContent): Promise<void> {
  await writePth(file, c.layout === 'torchvision' ? torchvisionCheckpoint(file, c) : mmclsCheckpoint(c));
}
