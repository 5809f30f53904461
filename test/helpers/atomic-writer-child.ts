// Child process for test/atomic-writes.test.ts: writes `file` with the
// package's writer of one kind, once or in a loop (to be killed mid-write).
//   tsx atomic-writer-child.ts <pth|npy|text> <file> <version> <MiB> [loop]
import { writeNpy } from '../../src/cli/npy';
import { writeFileAtomic } from '../../src/fs/atomic-file';
import { TensorValue, writePth } from '../../src/weights/pth/writer';

const [kind, file, version, mib, loop] = process.argv.slice(2);
const n = (Number(mib) * 1024 * 1024) / 4;
const data = new Float32Array(n).fill(Number(version));

async function once(): Promise<void> {
  if (kind === 'pth') await writePth(file, new Map([['w', new TensorValue('float32', [n], data)]]));
  else if (kind === 'npy') await writeNpy(file, { shape: [n], data });
  else await writeFileAtomic(file, Buffer.from(data.buffer));
}

(async () => {
  do {
    await once();
    if (loop) process.stdout.write('w');
  } while (loop);
})();
