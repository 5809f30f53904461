// The one error of the weights hub (registry, cache, downloads). Its codes
// are stable so callers can branch on them; its message always says which
// URL and which cache file were involved, and what to do next.
import { VggNativeError } from '../errors';

/** Codes of {@link DownloadError}. */
export type DownloadErrorCode =
  /** The server answered 404 or 410: the URL (or the mirror's copy) does not exist. */
  | 'NOT_FOUND'
  /** The server answered another error status (401, 403, 5xx, ...). */
  | 'HTTP'
  /** No answer: DNS, refused or reset connections, a proxy that refused, a timeout, or a transfer cut short. A partial file is kept and resumed next time. */
  | 'NETWORK'
  /** The downloaded bytes are not the published file (sha256 or size differ). The download was deleted; nothing was loaded. */
  | 'CHECKSUM'
  /** Not an http(s) URL, or a redirect to one (or from https down to http). */
  | 'BAD_URL'
  /** More redirects than the limit (a loop, usually). */
  | 'TOO_MANY_REDIRECTS'
  /** Another process held the cache file's lock for longer than the wait limit. */
  | 'LOCKED'
  /** VGG_NATIVE_OFFLINE is set and the file is not in the cache. */
  | 'OFFLINE'
  /** The cache folder cannot be created or written (permissions, disk full). */
  | 'CACHE'
  /** The VGG_NATIVE_REGISTRY file is unreadable or not a list of valid entries. */
  | 'REGISTRY';

/**
 * A weights download or cache problem.
 *
 * @example
 * ```ts
 * import { vgg, DownloadError } from 'vgg-native';
 *
 * try {
 *   const model = await vgg('vgg16_bn', { weights: 'imagenet' });
 * } catch (e) {
 *   if (e instanceof DownloadError && e.code === 'NETWORK') console.error(`offline? ${e.message}`);
 *   else throw e;
 * }
 * ```
 */
export class DownloadError extends VggNativeError {
  declare readonly code: DownloadErrorCode;
  /** The URL being fetched (after the mirror, before redirects), when there is one. */
  readonly url: string | undefined;
  /** The cache file it was going to, when there is one. */
  readonly file: string | undefined;
  /** The HTTP status, for NOT_FOUND and HTTP. */
  readonly status: number | undefined;

  /**
   * @param code - one of {@link DownloadErrorCode}
   * @param message - what failed, naming the URL and the cache file, and what to do next
   * @param details - url, file, HTTP status, cause
   */
  constructor(code: DownloadErrorCode, message: string, details: { url?: string; file?: string; status?: number; cause?: unknown } = {}) {
    super(code, message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = 'DownloadError';
    this.url = details.url;
    this.file = details.file;
    this.status = details.status;
  }
}

/**
 * The sentence every "could not fetch" message ends with: where the file
 * would have gone, and the two ways around the network.
 */
export function offlineHint(file: string): string {
  return (
    `To use a copy you already have, pass its path (weights: '/path/to/file'), or copy it to ${file}; ` +
    'VGG_NATIVE_MIRROR=<url> fetches registry weights from a mirror instead'
  );
}
