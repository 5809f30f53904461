// Turns the CLI's image arguments into a list of files: a folder is walked
// (recursively, sorted by name) for the image files a dataset folder holds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IMAGE_EXTENSIONS, isImageFile } from '../data/folder';
import { UsageError } from './common';

async function walk(dir: string, out: string[]): Promise<void> {
  const entries = await fs.promises.readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    let isDir = e.isDirectory();
    if (e.isSymbolicLink()) isDir = (await fs.promises.stat(p).catch(() => undefined))?.isDirectory() ?? false;
    if (isDir) await walk(p, out);
    else if (isImageFile(e.name)) out.push(p);
  }
}

/**
 * Files and folders -> image paths in argument order. A path that does not
 * exist is kept, so it is reported as that image's error like any unreadable one.
 */
export async function collectImages(args: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    const st = await fs.promises.stat(arg).catch(() => undefined);
    if (st?.isDirectory()) {
      const before = out.length;
      await walk(arg, out);
      if (out.length === before) throw new UsageError(`no image files (${IMAGE_EXTENSIONS.join(' ')}) in folder ${arg}`);
    } else {
      out.push(arg);
    }
  }
  return out;
}
