// The first bytes of a file, for deciding what it is before a reader or decoder sees it.
import * as fs from 'node:fs';

/** Up to `n` bytes from the start of `file` (fewer for a shorter file); rejects as fs does (ENOENT, EISDIR, EACCES). */
export async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
