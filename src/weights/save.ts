// model.save(): the model's state written as a .pth (torch.load with
// weights_only=True reads it), a .safetensors, or an ONNX graph; names in the
// mmcls, torchvision or timm layout, all derived from the table in arch.ts.
import * as path from 'node:path';
import type { ArchSpec, BackboneOptions } from '../arch';
import { archName, stateShapes } from '../arch';
import type { NamedTensor } from '../binding';
import type { InputPipeline } from '../core/forward';
import { CheckpointError } from './errors';
import { writeOnnx } from './onnx/export';
import { writePth } from './pth/writer';
import { writeSafetensors } from './safetensors';

/**
 * Key layout of a saved .pth or .safetensors: 'mmcls' (`backbone.features.N.conv.weight`
 * names; in a .pth inside `{ meta, state_dict }`, what mmcls's load_checkpoint
 * reads), 'torchvision' (`features.N.weight`, `classifier.N.weight`: what
 * torchvision's `vgg*().load_state_dict(...)` takes) or 'timm' (torchvision's
 * `features`, then `pre_logits.fc1`/`fc2` as 7x7 and 1x1 convolutions and
 * `head.fc`: what `timm.create_model('vgg16')` takes).
 */
export type SaveLayout = 'mmcls' | 'torchvision' | 'timm';
/** The layouts, in the order the docs list them. */
export const SAVE_LAYOUTS = ['mmcls', 'torchvision', 'timm'] as const satisfies readonly SaveLayout[];

/** File format of a save: 'pth' (torch.save zip), 'safetensors' or 'onnx' (an inference graph, opset 17). */
export type SaveFormat = 'pth' | 'safetensors' | 'onnx';
/** The formats, in the order the docs list them. */
export const SAVE_FORMATS = ['pth', 'safetensors', 'onnx'] as const satisfies readonly SaveFormat[];

/** Everything a model knows that a file can hold. */
export interface SaveContent {
  arch: ArchSpec;
  numClasses: number;
  backbone: BackboneOptions;
  state: NamedTensor[];
  labels?: string[];
  inputPipeline?: InputPipeline;
  layout: SaveLayout;
  extraMeta?: Record<string, unknown>;
  /** ONNX only: write the QDQ int8 form at these convolution input scales (the model's calibration). */
  activationScales?: readonly number[];
}

/**
 * The format a file name implies: .safetensors, .onnx, else 'pth'.
 * @param file - the path to write
 * @returns 'safetensors' or 'onnx' by extension (any case), 'pth' for anything else
 * @example formatOfFile('tuned.onnx') // 'onnx'
 */
export function formatOfFile(file: string): SaveFormat {
  const ext = path.extname(file).toLowerCase();
  return ext === '.safetensors' ? 'safetensors' : ext === '.onnx' ? 'onnx' : 'pth';
}

/** The state under the layout's names and stored shapes (timm keeps fc6/fc7 as convolutions: same bytes, other shapes). */
function renamed(file: string, c: SaveContent): NamedTensor[] {
  if (c.layout === 'mmcls') return c.state;
  const table = new Map(stateShapes(c.arch, 1).map((e) => [e.name, e]));
  return c.state.map((t) => {
    const e = table.get(t.name);
    if (!e) throw new CheckpointError('BAD_VALUE', `cannot save '${t.name}' in ${c.layout} layout`, file);
    if (c.layout === 'torchvision') return { ...t, name: e.torchvisionName };
    const reshaped = e.timm.shape.length !== e.shape.length; // fc6, fc7: the head's rows follow the model
    return { ...t, name: e.timm.name, shape: reshaped ? e.timm.shape : t.shape };
  });
}

/** mmcls's meta: arch, CLASSES, the input pipeline and the caller's entries. */
function metaOf(c: SaveContent): Map<string, unknown> {
  const pipeline = c.inputPipeline ? { input_size: c.inputPipeline.size, input_resize: c.inputPipeline.resize } : {};
  const meta = new Map<string, unknown>([
    ['arch', archName(c.arch)],
    ['saved_by', 'vgg-native'],
    ['time', new Date().toISOString()],
    ...Object.entries(pipeline),
    ...Object.entries(c.extraMeta ?? {}),
  ]);
  if (c.labels) meta.set('CLASSES', c.labels);
  return meta;
}

/** A .pth: mmcls's `{ meta, state_dict }` with `backbone.` keys, or a bare state_dict for torchvision and timm (they have no place for meta). */
async function savePth(file: string, c: SaveContent): Promise<void> {
  const state = renamed(file, c);
  if (c.layout !== 'mmcls') {
    await writePth(file, new Map(state.map((t) => [t.name, t])));
    return;
  }
  const sd = new Map(state.map((t) => [`backbone.${t.name}`, t]));
  await writePth(
    file,
    new Map<string, unknown>([
      ['meta', metaOf(c)],
      ['state_dict', sd],
    ]),
  );
}

/** A .safetensors: the layout's names (mmcls with `backbone.`), meta as `__metadata__` strings (`format: 'pt'` as the hub's files; labels as JSON). */
async function saveSafetensors(file: string, c: SaveContent): Promise<void> {
  const state = renamed(file, c).map((t) => (c.layout === 'mmcls' ? { ...t, name: `backbone.${t.name}` } : t));
  const metadata: Record<string, string> = { format: 'pt' };
  for (const [k, v] of metaOf(c)) metadata[k === 'CLASSES' ? 'labels' : k] = typeof v === 'string' ? v : JSON.stringify(v);
  await writeSafetensors(file, state, metadata);
}

/**
 * Writes the model in `format` (atomically: a temp file renamed into place).
 * @throws CheckpointError BAD_VALUE for a tensor the layout has no name for, or a meta value the format cannot hold.
 */
export async function saveWeights(file: string, format: SaveFormat, c: SaveContent): Promise<void> {
  if (format === 'pth') return savePth(file, c);
  if (format === 'safetensors') return saveSafetensors(file, c);
  const pipeline = c.inputPipeline;
  return writeOnnx(file, {
    arch: c.arch,
    numClasses: c.numClasses,
    backbone: c.backbone,
    state: c.state,
    preprocessing: pipeline ? { inputSize: pipeline.size, resize: pipeline.resize } : {},
    ...(c.labels && c.numClasses > 0 ? { labels: c.labels } : {}),
    meta: { ...(c.extraMeta ?? {}) },
    ...(c.activationScales ? { quantization: { activationScales: c.activationScales } } : {}),
  });
}
