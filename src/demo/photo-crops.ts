// A small real-image classification task that needs no download: crops of
// three photographs Debian's scikit-image ships (a cat, a cup of coffee, an
// astronaut), one class per photograph. Training and validation crops are
// held apart by position: each photo is cut into a 4x4 grid and a crop
// belongs to validation when its centre lies in one of the 4 grid cells with
// (row + col) % 4 == 0, so no validation crop shares its centre region with a
// training crop. Used by `vgg-native demo` and the transfer-learning tests.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { rngFor } from '../data/seed';
import { DatasetError } from '../data/errors';

/** The photographs, one class each. */
export const DEMO_PHOTOS = [
  { label: 'cat', file: 'chelsea.png' },
  { label: 'coffee', file: 'coffee.png' },
  { label: 'astronaut', file: 'astronaut.png' },
] as const;

/** Where Debian's python3-skimage (and pip's scikit-image) keep those photographs. */
export const SKIMAGE_DATA_DIRS = ['/usr/lib/python3/dist-packages/skimage/data', '/usr/local/lib/python3/dist-packages/skimage/data'];

/** Options of {@link writePhotoCrops}. */
export interface PhotoCropOptions {
  /** Side of each saved crop in pixels. Default: 64. */
  size?: number;
  /** Crops drawn per photograph (train and validation together). Default: 160. */
  perPhoto?: number;
  /** Seed of the crop boxes. Default: 0. */
  seed?: number;
  /** Folder holding the photographs. Default: the first of {@link SKIMAGE_DATA_DIRS} that has them. */
  photoDir?: string;
}

/** What {@link writePhotoCrops} wrote. */
export interface PhotoCrops {
  /** ImageFolder root of the training crops (`<train>/<label>/<n>.png`). */
  train: string;
  /** ImageFolder root of the validation crops. */
  val: string;
  /** Class names, in {@link DEMO_PHOTOS} order. */
  classes: string[];
  /** Training and validation crops per class. */
  counts: Array<{ label: string; train: number; val: number }>;
}

/**
 * Writes square crops of the {@link DEMO_PHOTOS} as PNG files under `outDir/train` and
 * `outDir/val` (one folder per class). Each crop box is square, its side uniform in
 * [0.25, 0.5] of the photo's shorter side, its position uniform; it is resized to `size`
 * (sharp, Lanczos). The split by grid cell is described at the top of this file.
 *
 * @param outDir - created if missing
 * @param options - see {@link PhotoCropOptions}
 * @returns the two roots and the counts
 * @throws DatasetError 'NOT_FOUND' when no folder holds the photographs (install python3-skimage)
 * @example
 * const { train, val } = await writePhotoCrops('/tmp/photos');
 * await model.fineTune({ train, val, epochs: 2, batchSize: 32, imageSize: 64, freeze: 'features', cacheFeatures: true, augment: false });
 */
export async function writePhotoCrops(outDir: string, options: PhotoCropOptions = {}): Promise<PhotoCrops> {
  const size = options.size ?? 64;
  const perPhoto = options.perPhoto ?? 160;
  const photoDir = options.photoDir ?? findPhotoDir();
  const counts: PhotoCrops['counts'] = [];
  for (const [k, photo] of DEMO_PHOTOS.entries()) {
    const image = sharp(path.join(photoDir, photo.file)).removeAlpha().toColourspace('srgb');
    const { width, height } = await image.metadata();
    if (!width || !height) throw new DatasetError('UNREADABLE_IMAGES', `${photo.file}: no size in its header`);
    const rng = rngFor(options.seed ?? 0, k);
    const count = { label: photo.label, train: 0, val: 0 };
    for (let i = 0; i < perPhoto; i++) {
      const side = Math.round(Math.min(width, height) * (0.25 + 0.25 * rng()));
      const left = Math.floor(rng() * (width - side + 1));
      const top = Math.floor(rng() * (height - side + 1));
      const split = isValidationCell((left + side / 2) / width, (top + side / 2) / height) ? 'val' : 'train';
      count[split]++;
      const dir = path.join(outDir, split, photo.label);
      fs.mkdirSync(dir, { recursive: true });
      await image
        .clone()
        .extract({ left, top, width: side, height: side })
        .resize(size, size)
        .png()
        .toFile(path.join(dir, `${String(i).padStart(4, '0')}.png`));
    }
    counts.push(count);
  }
  return { train: path.join(outDir, 'train'), val: path.join(outDir, 'val'), classes: DEMO_PHOTOS.map((p) => p.label), counts };
}

/** x, y: the crop centre as a fraction of the photo's width and height. */
function isValidationCell(x: number, y: number): boolean {
  const col = Math.min(3, Math.floor(x * 4));
  const row = Math.min(3, Math.floor(y * 4));
  return (row + col) % 4 === 0;
}

function findPhotoDir(): string {
  const dir = SKIMAGE_DATA_DIRS.find((d) => DEMO_PHOTOS.every((p) => fs.existsSync(path.join(d, p.file))));
  if (!dir) {
    throw new DatasetError(
      'NOT_FOUND',
      `the demo photographs (${DEMO_PHOTOS.map((p) => p.file).join(', ')}) are in none of ${SKIMAGE_DATA_DIRS.join(', ')}: ` +
        'install scikit-image (Debian: apt-get install python3-skimage) or pass photoDir',
    );
  }
  return dir;
}
