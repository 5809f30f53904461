// ImageFolder scanning, as torchvision.datasets.ImageFolder does it:
// classes = sorted names of root's subfolders, images = every file with an
// image extension under each class folder (recursively), sorted per folder.
// Deviation: names starting with '.' are ignored (.ipynb_checkpoints,
// macOS ._* files), which torchvision would take as a class or an image.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatasetError } from './errors';
import type { DatasetItem } from './types';

/**
 * Extensions sharp's prebuilt libvips decodes. BMP/PPM/PGM (in torchvision's
 * list) are not readable by it, so they are reported rather than listed.
 */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif'];

export function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

function hidden(name: string): boolean {
  return name.startsWith('.');
}

/** Python's sorted(): by code point. (JS sort compares UTF-16 units; the same outside astral planes.) */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(p)).isDirectory();
  } catch {
    return false;
  } // stat follows symlinks, like os.walk(followlinks=True)
}

interface Walk {
  files: string[];
  otherExtensions: Map<string, number>;
}

/** All image files under `dir`, ordered like torchvision: sorted(os.walk(dir)) then sorted file names. */
async function walk(dir: string, out: Walk): Promise<void> {
  const groups: Array<{ dir: string; files: string[] }> = [];
  const visit = async (d: string): Promise<void> => {
    const entries = await fs.promises.readdir(d, { withFileTypes: true });
    const files: string[] = [];
    const subdirs: string[] = [];
    for (const e of entries) {
      if (hidden(e.name)) continue;
      const full = path.join(d, e.name);
      const isDir = e.isDirectory() || (e.isSymbolicLink() && (await isDirectory(full)));
      if (isDir) subdirs.push(full);
      else if (isImageFile(e.name)) files.push(e.name);
      else {
        const ext = path.extname(e.name).toLowerCase() || '(no extension)';
        out.otherExtensions.set(ext, (out.otherExtensions.get(ext) ?? 0) + 1);
      }
    }
    groups.push({ dir: d, files: files.sort(byCodePoint).map((f) => path.join(d, f)) });
    for (const s of subdirs) await visit(s);
  };
  await visit(dir);
  groups.sort((a, b) => byCodePoint(a.dir, b.dir));
  for (const g of groups) out.files.push(...g.files);
}

function describeOthers(others: Map<string, number>): string {
  if (others.size === 0) return '';
  const list = [...others].map(([ext, n]) => `${n} ${ext}`).join(', ');
  return ` (found only other files: ${list})`;
}

/**
 * Scans root/<class>/**\/<image>. With `fixedClasses`, labels index that list,
 * folders outside it are an error and listed classes without a folder simply
 * have no items (a validation set need not hold every class).
 */
export async function scanImageFolder(root: string, fixedClasses?: readonly string[]): Promise<{ items: DatasetItem[]; classes: string[] }> {
  const abs = path.resolve(root);
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(abs);
  } catch (err) {
    throw new DatasetError('NOT_FOUND', `Dataset folder not found: "${abs}" (expected a folder laid out as root/<class>/<image>)`, {
      path: abs,
      cause: err,
    });
  }
  if (!stat.isDirectory()) {
    const hint = /\.csv$/i.test(abs) ? '; for a CSV index pass { csv: path }' : '';
    throw new DatasetError('NOT_A_FOLDER', `Expected a dataset folder (root/<class>/<image>) but "${abs}" is a file${hint}`, { path: abs });
  }

  const entries = await fs.promises.readdir(abs, { withFileTypes: true });
  const folders: string[] = [];
  let looseImages = 0;
  for (const e of entries) {
    if (hidden(e.name)) continue;
    if (e.isDirectory() || (e.isSymbolicLink() && (await isDirectory(path.join(abs, e.name))))) folders.push(e.name);
    else if (isImageFile(e.name)) looseImages++;
  }
  folders.sort(byCodePoint);
  if (folders.length === 0) {
    const loose = looseImages > 0 ? `; it holds ${looseImages} image(s) directly, move them into one subfolder per class` : '';
    throw new DatasetError('EMPTY', `No class folders in "${abs}": expected root/<class>/<image>, e.g. ${path.join(abs, 'cat', '1.jpg')}${loose}`, {
      path: abs,
    });
  }

  const classes = fixedClasses ? [...fixedClasses] : folders;
  if (fixedClasses) {
    const unknown = folders.filter((f) => !fixedClasses.includes(f));
    if (unknown.length > 0) {
      throw new DatasetError(
        'BAD_LABELS',
        `Folder(s) ${unknown.map((u) => `'${u}'`).join(', ')} in "${abs}" are not in options.classes [${fixedClasses.map((c) => `'${c}'`).join(', ')}]`,
        { path: abs },
      );
    }
  }

  const items: DatasetItem[] = [];
  const otherExtensions = new Map<string, number>();
  const empty: string[] = [];
  for (const name of folders) {
    const w: Walk = { files: [], otherExtensions };
    await walk(path.join(abs, name), w);
    if (w.files.length === 0) empty.push(name);
    const label = classes.indexOf(name);
    for (const f of w.files) items.push({ path: f, label });
  }
  if (items.length === 0) {
    throw new DatasetError(
      'EMPTY',
      `No images in "${abs}": its class folders hold no ${IMAGE_EXTENSIONS.join('/')} files${describeOthers(otherExtensions)}`,
      { path: abs },
    );
  }
  // torchvision refuses an empty class folder too: the class would exist with no examples.
  if (empty.length > 0 && !fixedClasses) {
    throw new DatasetError(
      'EMPTY',
      `Class folder(s) ${empty.map((e) => `'${e}'`).join(', ')} in "${abs}" hold no images (${IMAGE_EXTENSIONS.join('/')})${describeOthers(otherExtensions)}; add images or remove the folder`,
      { path: abs },
    );
  }
  return { items, classes };
}
