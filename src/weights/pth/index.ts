// Reads torch.save containers (zip >= 1.6 and the legacy stream) into a JS
// object graph whose tensors are TensorRefs: file offsets + shape/stride, not
// data. Native code preads the bytes straight into tensor memory; only the
// pickles (small) are read into JS.
//
// Layout: pth/zip-checkpoint and pth/legacy-checkpoint walk the two
// containers, pth/storage-graph turns persistent ids into storages and
// tensors, pth/tensor-ref is what comes out, pth/materialize reads values.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OP } from '../pickle';
import { checkpointError, readExactly } from './io';
import { readLegacyCheckpoint } from './legacy-checkpoint';
import { readZipCheckpoint } from './zip-checkpoint';
import { SIG } from '../zip';

export { materialize } from './materialize';
export { ELEMENT_SIZE, TensorRef, checkTensorBounds } from './tensor-ref';

/**
 * Which container readPth found: torch.save's zip (torch >= 1.6) or legacy
 * stream, or a TorchScript archive (torch.jit.save: a zip with the model's
 * code, whose tensors are returned by state_dict name).
 */
export type PthFormat = 'zip' | 'legacy' | 'torchscript';

/** What readPth found: which container, and the unpickled object. */
export interface PthContents {
  format: PthFormat;
  /** The unpickled object; for 'torchscript' a Map of dotted state_dict names to TensorRefs. */
  object: unknown;
}

/**
 * Reads a torch.save file (zip or legacy format, detected by content) or a
 * torch.jit.save archive (TorchScript: detected by its code entries; its
 * module objects are read as records, never run, and flattened into the
 * state_dict the module would give).
 * Tensor bytes are not read: tensors are TensorRefs into the file.
 * @param file - path of the checkpoint
 * @returns the container format and the unpickled object (Maps, arrays,
 * plain values, TensorRefs)
 * @throws CheckpointError BAD_MAGIC (not a checkpoint), TRUNCATED, BAD_ZIP,
 * FORBIDDEN_GLOBAL, PICKLED_MODULE (torch.save(model) of a whole nn.Module),
 * FORBIDDEN_OPCODE, BAD_PICKLE, LIMIT, BAD_STORAGE, BAD_TENSOR,
 * UNSUPPORTED_DTYPE (e.g. a uint16 or float8 tensor); the system's error
 * when the file cannot be opened.
 * @example
 * ```ts
 * const { format, object } = await readPth('vgg11.pt');
 * if (format === 'torchscript') console.log([...(object as Map<string, TensorRef>).keys()][0]); // 'features.0.weight'
 * ```
 */
export async function readPth(file: string): Promise<PthContents> {
  const abs = path.resolve(file);
  const fh = await fs.promises.open(abs, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(Math.min(4, size));
    await readExactly(fh, head, 0, file);
    if (size >= 4 && head.readUInt32LE(0) === SIG.LOCAL) {
      const { torchScript, object } = await readZipCheckpoint(fh, abs, file);
      return { format: torchScript ? 'torchscript' : 'zip', object };
    }
    if (size >= 1 && head[0] === OP.PROTO) {
      return { format: 'legacy', object: await readLegacyCheckpoint(fh, abs, file, size) };
    }
    throw checkpointError(
      'BAD_MAGIC',
      file,
      size === 0
        ? 'Not a PyTorch checkpoint: the file is empty'
        : `Not a PyTorch checkpoint: expected a zip archive (PK\\x03\\x04) or a legacy pickle stream (0x80) but the file starts with 0x${head.toString('hex')}`,
    );
  } finally {
    await fh.close();
  }
}
