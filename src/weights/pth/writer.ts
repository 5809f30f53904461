import * as path from 'node:path';
import { withAtomicFile } from '../../fs/atomic-file';
import { pickleCheckpoint } from './pickle-writer';
import { ZipWriter } from '../zip';

export { TensorValue, pickleCheckpoint, type TensorLike } from './pickle-writer';

export interface WritePthOptions {
  /** Folder name inside the zip (default: the file stem, or 'archive'). */
  rootName?: string;
  /** Write ZIP64 records for every entry even when not needed (tests). */
  forceZip64?: boolean;
}

/** torch aligns storage data so it can be memory-mapped as any element type. */
const TORCH_ALIGNMENT = 64;
/** The serialization version torch >= 1.6 writes. */
const FORMAT_VERSION = '3\n';

/**
 * Writes `obj` (Maps/arrays/plain objects/strings/numbers/booleans/null and
 * tensors) as a zip-format .pth. Atomic: a temp file next to `file` is
 * flushed and renamed over it only when complete, and removed on failure;
 * temp files of writers that died are removed first.
 * @param file - where to write; its folder must exist
 * @param obj - the checkpoint object; Maps become OrderedDicts, tensors
 * (TensorValue or anything with dtype/shape/data) become torch tensors
 * @throws CheckpointError BAD_VALUE for a value that cannot be written; the
 * system's error when the file cannot be written.
 */
export async function writePth(file: string, obj: unknown, options: WritePthOptions = {}): Promise<void> {
  const { pickle, tensors } = pickleCheckpoint(obj, file);
  const root = options.rootName ?? rootNameFor(file);
  await withAtomicFile(file, async (fh) => {
    const zip = new ZipWriter(fh, { align: TORCH_ALIGNMENT, forceZip64: options.forceZip64 });
    await zip.addStored(`${root}/data.pkl`, pickle);
    await zip.addStored(`${root}/byteorder`, Buffer.from('little'));
    for (let i = 0; i < tensors.length; i++) {
      const d = tensors[i].data;
      await zip.addStored(`${root}/data/${i}`, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    }
    await zip.addStored(`${root}/version`, Buffer.from(FORMAT_VERSION));
    await zip.finish();
  });
}

/** torch names the root folder after the file; names torch could not have made fall back to 'archive'. */
function rootNameFor(file: string): string {
  const stem = path.basename(file).replace(/\.[^.]*$/, '');
  return /^[A-Za-z0-9_.-]+$/.test(stem) ? stem : 'archive';
}
