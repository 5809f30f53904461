// Refusing globals outside the allow-list, worded for what the file is. A
// whole nn.Module pickled by torch.save(model) gets PICKLED_MODULE (save its
// state_dict instead); anything else FORBIDDEN_GLOBAL. Decided from the
// module path where it names a model library, else from the BUILD after the
// class: a module's state holds `_modules`/`_parameters`. Nothing is ever
// called: a held-back class is only a placeholder, and the file is refused
// before any value is returned.
import { CheckpointError } from '../errors';
import type { Machine } from './machine';
import { RefusedGlobal, RefusedInstance } from './values';

/** Modules whose classes are models and layers: a global of theirs means a pickled model. */
const MODEL_MODULES = [
  'torch.nn.modules.',
  'torch.nn.parallel.',
  'torchvision.models.',
  'timm.models.',
  'timm.layers.',
  'mmcls.',
  'mmpretrain.',
  'mmcv.cnn.',
  'mmengine.model.',
];

/** A class name by Python's convention (CapWords, maybe _private): functions are never held back. */
const CLASS_NAME = /^_*[A-Z][A-Za-z0-9_]*$/;

/** The refusal of a global outside the allow-list, naming it. */
export function forbiddenGlobal(m: Machine, path: string): CheckpointError {
  return new CheckpointError(
    'FORBIDDEN_GLOBAL',
    `Refusing to load global '${path}' from checkpoint${m.file ? ` ${m.file}` : ''}: only tensors, containers and plain values are allowed`,
    m.file,
  );
}

/**
 * The refusal of torch.save(model): names the model's class and says what to save instead.
 * @param path - the class, `module.name`
 * @param file - the checkpoint, when known
 * @returns a CheckpointError PICKLED_MODULE
 * @example throw pickledModule('__main__.Net', 'model.pth');
 */
export function pickledModule(path: string, file?: string): CheckpointError {
  return new CheckpointError(
    'PICKLED_MODULE',
    `Checkpoint${file ? ` ${file}` : ''} is a pickled model of class '${path}' (torch.save(model)), not a state_dict: ` +
      `loading it would run that class's code, so it is refused. Save model.state_dict() instead and load that file`,
    file,
  );
}

/**
 * GLOBAL of a name outside the allow-list: a model library's class is
 * refused as PICKLED_MODULE, another class held back as a placeholder (see
 * buildRefused), anything else refused at once.
 * @throws CheckpointError PICKLED_MODULE or FORBIDDEN_GLOBAL.
 */
export function refuseGlobal(m: Machine, module: string, name: string): RefusedGlobal {
  const path = `${module}.${name}`;
  if (CLASS_NAME.test(name) && MODEL_MODULES.some((p) => `${module}.`.startsWith(p))) throw pickledModule(m.modelClass ?? path, m.file);
  if (!CLASS_NAME.test(name)) throw forbiddenGlobal(m, path);
  m.refused ??= path;
  return new RefusedGlobal(path);
}

/** NEWOBJ/REDUCE of a held-back class: a placeholder; with no arguments it is built like an nn.Module (and may be the model). */
export function instantiateRefused(m: Machine, cls: RefusedGlobal, args: unknown): RefusedInstance {
  if (Array.isArray(args) && args.length === 0) m.modelClass ??= cls.path;
  return new RefusedInstance(cls.path);
}

/**
 * BUILD on a held-back instance ends the run: a state holding `_modules` or
 * `_parameters` is an nn.Module's __dict__.
 * @throws CheckpointError PICKLED_MODULE naming the outermost such class, else FORBIDDEN_GLOBAL.
 */
export function buildRefused(m: Machine, inst: RefusedInstance, state: unknown): never {
  const dict = Array.isArray(state) ? state[0] : state;
  if (dict instanceof Map && (dict.has('_modules') || dict.has('_parameters'))) throw pickledModule(m.modelClass ?? inst.path, m.file);
  throw forbiddenGlobal(m, inst.path);
}

/** Whether an error is already the refusal of a global (nothing to re-word). */
export function isRefusal(x: unknown): boolean {
  return x instanceof CheckpointError && (x.code === 'FORBIDDEN_GLOBAL' || x.code === 'PICKLED_MODULE');
}
