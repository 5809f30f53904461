// TorchScript archives (torch.jit.save): the same zip as torch.save, plus
// the model's code (`<root>/code/__torch__/...`) and `<root>/constants.pkl`.
// Their data.pkl builds `__torch__.*` objects whose attributes hold the
// submodules and tensors; read as inert records, they flatten into the
// state_dict the module would give, so the layout code sees its usual keys.
import { ScriptObject } from '../pickle';
import type { ZipReader } from '../zip';
import { checkpointError } from './io';
import { TensorRef } from './tensor-ref';

/** Whether the archive under `prefix` is TorchScript: torch.jit.save writes its code and constants, torch.save never. */
export function isTorchScript(zip: ZipReader, prefix: string): boolean {
  if (zip.entries.has(`${prefix}constants.pkl`)) return true;
  for (const name of zip.entries.keys()) if (name.startsWith(`${prefix}code/`)) return true;
  return false;
}

/** Deepest module nesting followed (a VGG's is 2); the unpickler has already refused cycles. */
const MAX_MODULE_DEPTH = 100;

/**
 * The tensors of a TorchScript module tree by dotted name, as its
 * state_dict() names them (`features.0.weight`, `features.1.running_mean`,
 * ...): tensor attributes of every object, submodules recursed into,
 * anything else (`training`, hooks, lists) skipped.
 * @param root - the unpickled data.pkl
 * @param file - for messages
 * @returns name → tensor, in the order the archive lists them
 * @throws CheckpointError BAD_PICKLE when the root is not a TorchScript object, LIMIT when nested too deep.
 * @example scriptStateDict(value, 'vgg11.pt').get('features.0.weight') // a TensorRef
 */
export function scriptStateDict(root: unknown, file: string): Map<string, TensorRef> {
  if (!(root instanceof ScriptObject)) throw checkpointError('BAD_PICKLE', file, 'The TorchScript archive does not hold a module object in data.pkl');
  const out = new Map<string, TensorRef>();
  // Explicit stack, children pushed in reverse so names come out in the archive's order.
  const stack: Array<{ obj: ScriptObject; prefix: string; depth: number }> = [{ obj: root, prefix: '', depth: 0 }];
  while (stack.length) {
    const { obj, prefix, depth } = stack.pop()!;
    if (depth > MAX_MODULE_DEPTH) throw checkpointError('LIMIT', file, `TorchScript modules nested deeper than ${MAX_MODULE_DEPTH}`);
    const children: typeof stack = [];
    for (const [k, v] of obj.attributes) {
      if (v instanceof TensorRef) out.set(`${prefix}${k}`, v);
      else if (v instanceof ScriptObject) children.push({ obj: v, prefix: `${prefix}${k}.`, depth: depth + 1 });
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
  return out;
}
