// The package's own folder and version, wherever it runs from (src/ under
// tsx, dist/ when installed).
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The vgg-native package's root folder: the nearest folder above this file whose
 * package.json is named 'vgg-native' (the same from src/ under tsx and from dist/).
 *
 * @returns its real path (symbolic links resolved)
 * @throws Error when no such folder exists above this file
 */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      const name = (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: unknown }).name;
      if (name === 'vgg-native') return fs.realpathSync(dir);
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no vgg-native package.json above ${__dirname}`);
    dir = up;
  }
}

let version: string | undefined;

/**
 * The package's version from its package.json ('unknown' if it cannot be read).
 * @returns e.g. '0.1.0'
 * @example packageVersion() // '0.1.0'
 */
export function packageVersion(): string {
  if (version === undefined) {
    try {
      const manifest = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown };
      version = typeof manifest.version === 'string' ? manifest.version : 'unknown';
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
