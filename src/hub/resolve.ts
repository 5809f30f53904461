// From what a user writes for `weights` to a local file: a registry key,
// 'imagenet' or a source name (with the architecture), or an http(s) URL is
// fetched into the cache; anything else is a path and passes through.
import { ARCHITECTURES, isArchitecture, type Architecture } from '../arch';
import { ModelError } from '../errors';
import { checkAbortSignal, checkKnownKeys, checkObject, checkString, invalidRange, invalidType, keysOf } from '../validate';
import { urlCachePath } from './cache';
import { DownloadError } from './errors';
import { fetchToCache, type DownloadProgress } from './download';
import {
  DEFAULT_SOURCE,
  findRecord,
  isSourceName,
  registryRecords,
  sourceOf,
  withEnvironment,
  type RegistryRecord,
  type WeightsEntry,
} from './registry';

/** Options of {@link downloadWeights}. */
export interface DownloadOptions {
  /** The architecture 'imagenet' or a source name stands for (default vgg16); with a registry key, it must match. */
  arch?: Architecture;
  /** Called as bytes arrive (at most every 50 ms, and once at the end). */
  onProgress?: (progress: DownloadProgress) => void;
  /** Aborting stops the download (the partial file is kept and resumed next time) with AbortError. */
  signal?: AbortSignal;
}

/** What {@link downloadWeights} fetched, or found in the cache. */
export interface DownloadResult {
  /** The local file. */
  file: string;
  /** Where it came from (after VGG_NATIVE_MIRROR). */
  url: string;
  /** The registry entry, when the name was one. */
  entry?: WeightsEntry;
  /** False when it was already cached. */
  downloaded: boolean;
  /** Size of the local file, bytes. */
  bytes: number;
}

const DOWNLOAD_KEYS = keysOf<DownloadOptions>()(['arch', 'onProgress', 'signal']);
/** A fragment `#sha256=<hex>` on a URL gives the checksum to verify (as pip's URLs do). */
const SHA256_FRAGMENT = /^#sha256=([0-9a-fA-F]{8,64})$/;

/** What a weights string names. */
type Target = { kind: 'registry'; record: RegistryRecord } | { kind: 'url'; url: URL; sha256?: string };

/** Whether `s` is meant as a URL (then it must be a valid one). */
export function looksLikeUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function parseUrl(s: string): { url: URL; sha256?: string } {
  let url: URL;
  try {
    url = new URL(s);
  } catch (e) {
    throw new DownloadError('BAD_URL', `'${s}' is not a valid URL`, { url: s, cause: e });
  }
  const m = SHA256_FRAGMENT.exec(url.hash);
  if (url.hash && !m) throw new DownloadError('BAD_URL', `${s}: the only fragment understood is #sha256=<8 to 64 hex digits>`, { url: s });
  // The fragment is ours, not the server's: never sent, not part of the cache key.
  url.hash = '';
  return { url, ...(m ? { sha256: m[1].toLowerCase() } : {}) };
}

/** The record of `source` for `arch`. @throws RangeError ERR_OUT_OF_RANGE when that source does not publish it */
function recordFor(param: string, name: string, arch: Architecture): RegistryRecord {
  const source = sourceOf(name as Parameters<typeof sourceOf>[0]);
  const found = registryRecords().find((r) => r.source === source && r.arch === arch);
  if (found) return found;
  const publishers = [
    ...new Set(
      registryRecords()
        .filter((r) => r.arch === arch)
        .map((r) => `'${r.source}'`),
    ),
  ];
  throw invalidRange(param, `a source that publishes ${arch} (${publishers.join(', ')})`, name);
}

/**
 * What `name` refers to, or undefined for a local path.
 * @throws ModelError ARCH_MISMATCH when a registry key's architecture is not `arch`
 */
function targetOf(param: string, name: string, arch: Architecture | undefined): Target | undefined {
  if (looksLikeUrl(name)) return { kind: 'url', ...parseUrl(name) };
  if (isSourceName(name)) return { kind: 'registry', record: recordFor(param, name, arch ?? 'vgg16') };
  const record = findRecord(name);
  if (!record) return undefined;
  if (arch && arch !== record.arch) {
    // Fail before fetching hundreds of megabytes of the wrong network.
    throw new ModelError(
      'ARCH_MISMATCH',
      `arch '${arch}' was asked for, but the registry weights '${name}' are a ${record.arch}; ` +
        `pass arch '${record.arch}' or omit it (or weights '${arch}.${DEFAULT_SOURCE}')`,
    );
  }
  return { kind: 'registry', record };
}

async function fetchTarget(target: Target, o: DownloadOptions): Promise<DownloadResult> {
  const common = { ...(o.onProgress ? { onProgress: o.onProgress } : {}), ...(o.signal ? { signal: o.signal } : {}) };
  if (target.kind === 'url') {
    const r = await fetchToCache(target.url, urlCachePath(target.url), { ...common, ...(target.sha256 ? { sha256: target.sha256 } : {}) });
    return { file: r.file, url: target.url.href, downloaded: r.downloaded, bytes: r.bytes };
  }
  const entry = withEnvironment(target.record);
  const r = await fetchToCache(new URL(entry.url), entry.file, {
    ...common,
    ...(entry.sha256 ? { sha256: entry.sha256 } : {}),
    ...(entry.size !== undefined ? { size: entry.size } : {}),
  });
  return { file: r.file, url: entry.url, entry: { ...entry, cached: true }, downloaded: r.downloaded, bytes: r.bytes };
}

/**
 * Resolves vgg()'s `weights` to a local file, downloading registry weights
 * and URLs into the cache; a path is returned unchanged (the reader reports
 * a missing one).
 * @param weights - a path, a registry key, 'imagenet', 'mmcls', 'torchvision', 'onnx-zoo', 'timm' or an http(s) URL
 * @param o - the architecture the keywords stand for, progress, abort
 * @returns the local file and, for registry weights, the entry
 */
export async function resolveWeightsFile(weights: string, o: DownloadOptions = {}): Promise<{ file: string; entry?: WeightsEntry }> {
  const target = targetOf('options.weights', weights, o.arch);
  if (!target) return { file: weights };
  const r = await fetchTarget(target, o);
  return { file: r.file, ...(r.entry ? { entry: r.entry } : {}) };
}

/**
 * Downloads weights into the cache (VGG_NATIVE_HOME, else the XDG cache
 * folder) unless they are there already: once across processes, resuming an
 * interrupted download, verifying the published sha256 and size.
 *
 * @param name - a registry key ('vgg16_bn.mmcls', see listWeights()), 'imagenet'
 * (the default source) or a source name ('mmcls', 'torchvision', 'onnx-zoo', 'timm')
 * for `options.arch`, or an http(s) URL (optionally ending in #sha256=<hex>)
 * @param options - arch, onProgress, signal
 * @returns the cached file, its URL, the registry entry, and whether it was fetched now
 * @throws TypeError (ERR_INVALID_ARG_TYPE) / RangeError (ERR_OUT_OF_RANGE) for a bad name or option
 * @throws ModelError ARCH_MISMATCH when `options.arch` contradicts the registry key
 * @throws DownloadError NOT_FOUND (HTTP 404), HTTP (another error status), NETWORK (offline, refused,
 * timed out: the message names the URL, the cache file and how to pass a local file instead),
 * CHECKSUM (corrupt download: deleted), BAD_URL, TOO_MANY_REDIRECTS, LOCKED, OFFLINE
 * (VGG_NATIVE_OFFLINE set and not cached), CACHE (cache folder not writable), REGISTRY
 * @throws AbortError (code ABORT_ERR) when `options.signal` fires
 * @example
 * ```ts
 * import { downloadWeights, vgg } from 'vgg-native';
 *
 * const { file } = await downloadWeights('vgg16_bn.torchvision', {
 *   onProgress: (p) => process.stderr.write(`\r${p.receivedBytes} / ${p.totalBytes ?? '?'} bytes`),
 * });
 * const model = await vgg('vgg16_bn', { weights: file });
 * ```
 */
export async function downloadWeights(name: string, options?: DownloadOptions): Promise<DownloadResult> {
  checkString('name', name);
  const o = checkKnownKeys('options', checkObject('options', options), DOWNLOAD_KEYS) as DownloadOptions;
  if (o.arch !== undefined && !isArchitecture(o.arch)) throw invalidRange('options.arch', `one of ${ARCHITECTURES.join(', ')}`, o.arch);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalidType('options.onProgress', 'a function', o.onProgress);
  checkAbortSignal('options.signal', o.signal);
  const target = targetOf('name', name, o.arch);
  if (!target)
    throw invalidRange('name', "a registry key (see listWeights()), 'imagenet', 'mmcls', 'torchvision', 'onnx-zoo', 'timm' or an http(s) URL", name);
  return fetchTarget(target, o);
}
