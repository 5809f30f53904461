// Random access to an archive's bytes, from an open file or from memory, so
// the zip reader never needs the whole archive in a Buffer: a 500 MB .model
// is read record by record and entry by entry.
import type { FileHandle } from 'node:fs/promises';

/** Bytes the zip reader can read at any position. */
export interface ByteSource {
  /** Total length in bytes. */
  readonly size: number;
  /**
   * Fills `buf` from `position` on; resolves with how many bytes were read,
   * fewer than `buf.length` only where the source ends.
   */
  read(buf: Uint8Array, position: number): Promise<number>;
}

/** Most bytes asked of one fs read: larger requests are split (fs reads cap at 2 GiB). */
const MAX_READ = 1 << 30;

/** A source over an open file handle; its size is taken once, here. */
export async function fileSource(fh: FileHandle): Promise<ByteSource> {
  const size = (await fh.stat()).size;
  return {
    size,
    async read(buf, position) {
      let done = 0;
      while (done < buf.length) {
        const want = Math.min(buf.length - done, MAX_READ);
        const { bytesRead } = await fh.read(buf, done, want, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    },
  };
}

/** A source over bytes already in memory (readOnnx of a Buffer). */
export function bufferSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    async read(buf, position) {
      const n = Math.max(0, Math.min(buf.length, bytes.length - position));
      buf.set(bytes.subarray(position, position + n));
      return n;
    },
  };
}
