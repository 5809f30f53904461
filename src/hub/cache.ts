// Where downloaded weights live. One folder per user (XDG base directory
// spec, as pip, torch.hub and Hugging Face do), overridable for CI, shared
// machines and air-gapped installs. Names inside are stable so a file copied
// there by hand is found.
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { setting, xdgCacheHome } from '../settings';

/** Sub-folder for registry files (kept under their published names). */
const REGISTRY_DIR = 'weights';
/** Sub-folder for files fetched from arbitrary URLs (one folder per URL, so equal basenames never collide). */
const URL_DIR = 'url';
/** Hex digits of sha256(url) naming a URL's folder: 64 bits, no practical collisions. */
const URL_KEY_LENGTH = 16;

/**
 * The cache root: VGG_NATIVE_HOME, else $XDG_CACHE_HOME/vgg-native, else
 * ~/.cache/vgg-native. Read on every call, so a changed environment applies
 * at once.
 *
 * Registry files go to `<root>/weights/<published file name>`, URL downloads
 * to `<root>/url/<16 hex digits of the URL's sha256>/<file name>`.
 *
 * @returns an absolute path (the folder may not exist yet)
 * @example
 * ```ts
 * import { weightsCacheDir } from 'vgg-native';
 *
 * weightsCacheDir(); // '/home/me/.cache/vgg-native'
 * ```
 */
export function weightsCacheDir(): string {
  const home = setting('home');
  if (home !== null) return home;
  return path.join(xdgCacheHome() ?? path.join(os.homedir(), '.cache'), 'vgg-native');
}

/** Cache path of a registry file, by its published file name. */
export function registryCachePath(fileName: string): string {
  return path.join(weightsCacheDir(), REGISTRY_DIR, fileName);
}

/** Cache path of a file fetched from `url` (given without its fragment). */
export function urlCachePath(url: URL): string {
  const key = createHash('sha256').update(url.href).digest('hex').slice(0, URL_KEY_LENGTH);
  return path.join(weightsCacheDir(), URL_DIR, key, fileNameOf(url));
}

/** The last path segment of a URL, made safe as a file name ('weights' when there is none). */
export function fileNameOf(url: URL): string {
  const last = decodeURIComponent(url.pathname.split('/').pop() ?? '');
  const safe = last.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '');
  return safe || 'weights';
}

/** The partial download next to `file` (resumed with Range; renamed to `file` once verified). */
export function partPath(file: string): string {
  return `${file}.part`;
}

/** What the partial download was fetched from (URL and validators), so a resume asks for the same bytes. */
export function partInfoPath(file: string): string {
  return `${file}.part.json`;
}

/** The lock serialising processes that fetch `file`. */
export function lockPath(file: string): string {
  return `${file}.lock`;
}
