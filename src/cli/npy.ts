// Minimal NPY v1.0 writer (numpy.lib.format): float32, C order.
import type { Tensor } from '../tensor';
import { outOfRange } from '../validate';
import { writeFileAtomic } from '../fs/atomic-file';

/** The header: magic, version 1.0, little-endian length, a dict padded with spaces to a multiple of 64 bytes. */
export function npyHeader(shape: readonly number[], descr = '<f4'): Buffer {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${dims}, }`;
  const unpadded = 10 + dict.length + 1; // magic(6) + version(2) + length(2) + dict + '\n'
  dict += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  if (dict.length > 0xffff) throw outOfRange(`NPY header too long for version 1.0 (${dict.length} bytes)`);
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(dict.length, 8);
  return Buffer.concat([head, Buffer.from(dict, 'latin1')]);
}

/** Float32 array bytes in little-endian order (copies only on a big-endian host). */
function littleEndianBytes(data: Float32Array): Buffer {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return bytes;
  const copy = Buffer.from(bytes);
  copy.swap32();
  return copy;
}

/** Writes `t` as a .npy file numpy.load() reads (atomically: temp file, flushed, then renamed). */
export async function writeNpy(file: string, t: Tensor): Promise<void> {
  await writeFileAtomic(file, Buffer.concat([npyHeader(t.shape), littleEndianBytes(t.data)]));
}
