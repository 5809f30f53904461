// File reading, bounds and error wording shared by the .pth readers: every problem
// is a CheckpointError whose message ends by naming the checkpoint.
import type { FileHandle } from 'node:fs/promises';
import { CheckpointError, type CheckpointErrorCode } from '../errors';

/** Largest pickle either container reader holds in memory. */
export const MAX_PICKLE_BYTES = 1024 * 1024 * 1024;

/** A CheckpointError whose message ends with `(checkpoint <file>)`. */
export function checkpointError(code: CheckpointErrorCode, file: string, msg: string): CheckpointError {
  return new CheckpointError(code, `${msg} (checkpoint ${file})`, file);
}

/**
 * Fills `buf` from `position`.
 * @throws CheckpointError TRUNCATED when the file ends first.
 */
export async function readExactly(fh: FileHandle, buf: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) {
      throw checkpointError(
        'TRUNCATED',
        file,
        `The file ends at byte ${position + done} but ${buf.length} bytes were expected from byte ${position}`,
      );
    }
    done += bytesRead;
  }
}
