// The two-class task of issue 21's "defaults that train": dark squares vs dark
// circles on plain light backgrounds, as PNG files in an ImageFolder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { createRng } from '../../src/image/random';

/** One size x size RGB picture: a dark square or disc (side/diameter 35-65% of the picture) at a random place. */
function shape(kind: 'square' | 'circle', size: number, rand: () => number): Buffer {
  const px = Buffer.alloc(size * size * 3);
  const bg = [0, 1, 2].map(() => 170 + Math.floor(rand() * 80));
  const fg = [0, 1, 2].map(() => Math.floor(rand() * 70));
  const r = (size * (0.35 + rand() * 0.3)) / 2;
  const cx = r + rand() * (size - 2 * r);
  const cy = r + rand() * (size - 2 * r);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x + 0.5 - cx;
      const dy = y + 0.5 - cy;
      const inside = kind === 'square' ? Math.abs(dx) <= r && Math.abs(dy) <= r : dx * dx + dy * dy <= r * r;
      px.set(inside ? fg : bg, (y * size + x) * 3);
    }
  }
  return px;
}

/** Writes `perClass` PNGs of each class into dir/circle and dir/square. */
export async function writeShapes(dir: string, perClass: number, size: number, seed: number): Promise<void> {
  const rand = createRng(seed);
  for (const kind of ['circle', 'square'] as const) {
    fs.mkdirSync(path.join(dir, kind), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const png = await sharp(shape(kind, size, rand), { raw: { width: size, height: size, channels: 3 } })
        .png()
        .toBuffer();
      fs.writeFileSync(path.join(dir, kind, `${i}.png`), png);
    }
  }
}
