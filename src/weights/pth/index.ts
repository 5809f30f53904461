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

/** What readPth found: which container, and the unpickled object. */
export interface PthContents {
  format: 'zip' | 'legacy';
  object: unknown;
}

/**
 * Reads a torch.save file (zip or legacy format, detected by content).
 * Tensor bytes are not read: tensors are TensorRefs into the file.
 * @param file - path of the checkpoint
 * @returns the container format and the unpickled object (Maps, arrays,
 * plain values, TensorRefs)
 * @throws CheckpointError BAD_MAGIC (not a checkpoint), TRUNCATED, BAD_ZIP,
 * FORBIDDEN_GLOBAL, FORBIDDEN_OPCODE, BAD_PICKLE, LIMIT, BAD_STORAGE,
 * BAD_TENSOR; the system's error when the file cannot be opened.
 */
export async function readPth(file: string): Promise<PthContents> {
  const abs = path.resolve(file);
  const fh = await fs.promises.open(abs, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(Math.min(4, size));
    await readExactly(fh, head, 0, file);
    if (size >= 4 && head.readUInt32LE(0) === SIG.LOCAL) {
      return { format: 'zip', object: await readZipCheckpoint(fh, abs, file) };
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
