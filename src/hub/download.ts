// Fetches one URL into one cache file, safely: under a lock (one process
// downloads, the others wait and reuse its file), into `<file>.part` resumed
// with HTTP Range after a dropped connection, checked (sha256 start, size,
// not an HTML page) and only then renamed into place. A file that fails the
// check is deleted and reported; it never reaches a reader.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { abortErrorOf, throwIfAborted } from '../abort';
import { setting } from '../settings';
import { lockPath, partInfoPath, partPath } from './cache';
import { DownloadError, offlineHint } from './errors';
import { get, networkError, type Opened } from './http';
import { acquireLock, type LockOptions } from './lock';

/** Where a download stands; passed to `onProgress` as bytes arrive. */
export interface DownloadProgress {
  /** The URL being fetched. */
  url: string;
  /** The cache file it goes to. */
  file: string;
  /** Bytes of the file received so far, a resumed part included. */
  receivedBytes: number;
  /** The file's size, when the server says it. */
  totalBytes: number | undefined;
  /** Bytes that were already there from an interrupted download (0 for a fresh one). */
  resumedFrom: number;
}

/** How fetchToCache checks and reports. */
export interface FetchOptions {
  /** Hex start of the expected sha256 (8 to 64 digits). */
  sha256?: string;
  /** Expected bytes. */
  size?: number;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /** Further attempts after a network failure or a 5xx, each resuming where the last stopped. Default 2. */
  retries?: number;
  /** Idle socket time before an attempt fails, ms. Default 30 s. */
  timeoutMs?: number;
  /** Default 10. */
  maxRedirects?: number;
  lock?: LockOptions;
}

/** What fetchToCache did. */
export interface FetchResult {
  file: string;
  /** False when the file was already in the cache (nothing was fetched). */
  downloaded: boolean;
  bytes: number;
}

/** Sidecar of a partial download: resume only what came from the same URL, and ask for the same version (If-Range). */
interface PartInfo {
  url: string;
  etag?: string;
  lastModified?: string;
  total?: number;
}

const DEFAULT_RETRIES = 2;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_REDIRECTS = 10;
/** First pause between attempts; doubles each time. */
const RETRY_BASE_MS = 250;
/** At most this often, onProgress is called (plus once at the end). */
const PROGRESS_INTERVAL_MS = 50;
/** First bytes of things servers send instead of a file with a 200: HTML pages ('<'), JSON errors ('{'). */
const NOT_WEIGHTS = [0x3c, 0x7b];

/** VGG_NATIVE_OFFLINE=1 (or true/yes/on): never touch the network. @throws SettingsError BAD_SETTING for a value that is no boolean */
export function isOffline(): boolean {
  return setting('offline');
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await fs.promises.stat(file)).size;
  } catch {
    return undefined;
  }
}

async function removePart(file: string): Promise<void> {
  await Promise.all([partPath(file), partInfoPath(file)].map((p) => fs.promises.rm(p, { force: true })));
}

async function readPartInfo(file: string): Promise<PartInfo | undefined> {
  try {
    return JSON.parse(await fs.promises.readFile(partInfoPath(file), 'utf8')) as PartInfo;
  } catch {
    return undefined;
  }
}

/** Bytes of a partial download worth resuming for `url` (0, and it is removed, when it came from elsewhere). */
async function resumableBytes(file: string, url: URL): Promise<{ have: number; info?: PartInfo }> {
  const have = await sizeOf(partPath(file));
  if (!have) return { have: 0 };
  const info = await readPartInfo(file);
  if (info?.url !== url.href) {
    await removePart(file);
    return { have: 0 };
  }
  return { have, info };
}

/** `bytes a-b/total` (or `bytes *\/total`) → its numbers. */
function parseContentRange(v: string | undefined): { start?: number; total?: number } | undefined {
  const m = /^bytes (?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(v?.trim() ?? '');
  if (!m) return undefined;
  return { ...(m[1] !== undefined ? { start: Number(m[1]) } : {}), ...(m[2] !== '*' ? { total: Number(m[2]) } : {}) };
}

function statusError(opened: Opened, file: string): DownloadError {
  const status = opened.res.statusCode ?? 0;
  const url = opened.url.href;
  if (status === 404 || status === 410) {
    return new DownloadError('NOT_FOUND', `${url} does not exist (HTTP ${status}). ${offlineHint(file)}`, { url, file, status });
  }
  return new DownloadError('HTTP', `${url} answered HTTP ${status} ${opened.res.statusMessage ?? ''}`.trim() + `. ${offlineHint(file)}`, {
    url,
    file,
    status,
  });
}

/** Counts bytes into onProgress (throttled) on their way to the file. */
function progressCounter(report: (received: number, final: boolean) => void, start: number): Transform & { received(): number } {
  let received = start;
  let last = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      const now = performance.now();
      if (now - last >= PROGRESS_INTERVAL_MS) {
        last = now;
        report(received, false);
      }
      done(null, chunk);
    },
    flush(done) {
      report(received, true);
      done();
    },
  });
  return Object.assign(t, { received: () => received });
}

/** Where the response's bytes start and how many the whole file has, or undefined to start over. */
function placeOf(opened: Opened, have: number): { start: number; total: number | undefined } | undefined {
  const { res } = opened;
  if (res.statusCode === 206) {
    const range = parseContentRange(res.headers['content-range']);
    return range?.start === have ? { start: have, total: range.total } : undefined;
  }
  // 200: the whole file (the server ignored Range, or the file changed since the part was fetched).
  const length = Number(res.headers['content-length']);
  return { start: 0, total: Number.isFinite(length) && res.headers['content-length'] !== undefined ? length : undefined };
}

/** A response ready to stream into the part, or 'complete' when the part already holds the whole file. */
type Rest = { opened: Opened; start: number; total: number | undefined } | 'complete';

/** Asks for what the part lacks (Range, If-Range) and judges the answer. */
async function requestRest(url: URL, file: string, o: FetchOptions): Promise<Rest> {
  const { have, info } = await resumableBytes(file, url);
  const validator = info?.etag ?? info?.lastModified;
  const headers: Record<string, string> = have > 0 ? { range: `bytes=${have}-`, ...(validator ? { 'if-range': validator } : {}) } : {};
  const opened = await get(url, {
    headers,
    timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxRedirects: o.maxRedirects ?? DEFAULT_MAX_REDIRECTS,
    file,
    signal: o.signal,
  });
  const { res } = opened;
  if (res.statusCode === 416 && have > 0) {
    // Nothing after `have`: the part is complete if the server's size says so, else it is not this file.
    res.resume();
    if (parseContentRange(res.headers['content-range'])?.total === have) return 'complete';
    await removePart(file);
    throw networkError(url, file, 'the server refused to resume the partial download; it was discarded');
  }
  if (res.statusCode !== 200 && res.statusCode !== 206) {
    res.resume();
    throw statusError(opened, file);
  }
  const place = placeOf(opened, have);
  if (!place) {
    res.resume();
    await removePart(file);
    throw networkError(url, file, 'the server resumed at another byte than asked; the partial download was discarded');
  }
  if (o.size !== undefined && place.total !== undefined && place.total !== o.size) {
    res.resume();
    await removePart(file);
    throw new DownloadError(
      'CHECKSUM',
      `${opened.url.href} offers ${place.total} bytes, but the published file has ${o.size}: ` +
        `not the published file (a wrong mirror?). Nothing was kept (${file})`,
      { url: url.href, file },
    );
  }
  return { opened, ...place };
}

/** Streams the response into the part (appending from `start`), reporting progress; the sidecar records what to resume. */
async function receive(url: URL, file: string, rest: Exclude<Rest, 'complete'>, o: FetchOptions): Promise<void> {
  const {
    opened: { res },
    start,
    total,
  } = rest;
  const etag = res.headers.etag;
  const lastModified = res.headers['last-modified'];
  const info: PartInfo = {
    url: url.href,
    ...(etag ? { etag } : {}),
    ...(lastModified ? { lastModified } : {}),
    ...(total !== undefined ? { total } : {}),
  };
  await fs.promises.writeFile(partInfoPath(file), JSON.stringify(info));
  const report = (received: number): void => o.onProgress?.({ url: url.href, file, receivedBytes: received, totalBytes: total, resumedFrom: start });
  const counter = progressCounter(report, start);
  const part = partPath(file);
  try {
    await pipeline(res, counter, fs.createWriteStream(part, { flags: start > 0 ? 'a' : 'w' }), o.signal ? { signal: o.signal } : {});
  } catch (e) {
    if (o.signal?.aborted) throw abortErrorOf(o.signal);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EACCES' || code === 'EROFS') {
      throw new DownloadError('CACHE', `cannot write ${part}: ${(e as Error).message}`, { url: url.href, file, cause: e });
    }
    const why = rest.opened.timedOut() ? `no data for ${(o.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000} s` : 'the connection closed';
    throw networkError(url, file, `${why} after ${counter.received()}${total !== undefined ? ` of ${total}` : ''} bytes (run again to resume)`, e);
  }
  if (total !== undefined && counter.received() !== total) {
    throw networkError(url, file, `the connection closed after ${counter.received()} of ${total} bytes (run again to resume)`);
  }
}

/** One attempt: resumes or starts `<file>.part` from `url`; resolves when the part holds the whole file. */
async function transfer(url: URL, file: string, o: FetchOptions): Promise<void> {
  const rest = await requestRest(url, file, o);
  if (rest !== 'complete') await receive(url, file, rest, o);
}

function retryable(e: unknown): boolean {
  return e instanceof DownloadError && (e.code === 'NETWORK' || (e.code === 'HTTP' && (e.status ?? 0) >= 500));
}

async function transferWithRetries(url: URL, file: string, o: FetchOptions): Promise<void> {
  const retries = o.retries ?? DEFAULT_RETRIES;
  for (let attempt = 0; ; attempt++) {
    try {
      await transfer(url, file, o);
      return;
    } catch (e) {
      if (!retryable(e) || attempt >= retries) throw e;
      await sleep(RETRY_BASE_MS * 2 ** attempt, undefined, o.signal ? { signal: o.signal } : {}).catch(() => {
        throw abortErrorOf(o.signal!);
      });
    }
  }
}

/** sha256 of a file, hex. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

/** Why the finished part is not the file asked for, or undefined when it passes. */
async function integrityProblem(part: string, o: FetchOptions): Promise<string | undefined> {
  const size = (await sizeOf(part)) ?? 0;
  if (size === 0) return 'it is empty';
  if (o.size !== undefined && size !== o.size) return `it has ${size} bytes, the published file ${o.size}`;
  const fh = await fs.promises.open(part, 'r');
  const first = Buffer.alloc(1);
  try {
    await fh.read(first, 0, 1, 0);
  } finally {
    await fh.close();
  }
  if (NOT_WEIGHTS.includes(first[0]))
    return `it starts with '${first.toString('latin1')}': a web page or error message, not weights (a login page or a proxy's?)`;
  if (o.sha256) {
    const digest = await sha256File(part);
    if (!digest.startsWith(o.sha256.toLowerCase()))
      return `its sha256 is ${digest.slice(0, Math.max(16, o.sha256.length))}..., expected ${o.sha256}...`;
  }
  return undefined;
}

/** Checks the finished part and renames it into place; a bad part is deleted and reported. */
async function verifyAndCommit(url: URL, file: string, o: FetchOptions): Promise<number> {
  const part = partPath(file);
  const problem = await integrityProblem(part, o);
  if (problem) {
    await removePart(file);
    throw new DownloadError(
      'CHECKSUM',
      `the file downloaded from ${url.href} is corrupt or not the published one: ${problem}. ` +
        `It was deleted (${file}); nothing was loaded. Run again; if it happens again, the server or mirror holds another file`,
      { url: url.href, file },
    );
  }
  await fs.promises.rename(part, file);
  await fs.promises.rm(partInfoPath(file), { force: true });
  return (await sizeOf(file)) ?? 0;
}

/** The cached file's size if it is there and the right size; a wrong-sized one (damaged, or copied in by hand) is removed. */
async function cachedSize(file: string, size: number | undefined): Promise<number | undefined> {
  const have = await sizeOf(file);
  if (have === undefined) return undefined;
  if (size !== undefined && have !== size) {
    await fs.promises.rm(file, { force: true });
    return undefined;
  }
  return have;
}

async function ensureFolder(file: string): Promise<void> {
  try {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
  } catch (e) {
    throw new DownloadError(
      'CACHE',
      `cannot create the weights cache folder ${path.dirname(file)}: ${(e as Error).message} ` + '(set VGG_NATIVE_HOME to a writable folder)',
      { file, cause: e },
    );
  }
}

/**
 * Makes sure `file` holds the bytes at `url`: returns at once when it is
 * cached, else downloads it (once across processes), verifies and renames it.
 * @param url - http(s) URL
 * @param file - the cache path
 * @returns the file, whether it was fetched now, and its size
 * @throws DownloadError NOT_FOUND, HTTP, NETWORK, CHECKSUM, BAD_URL, TOO_MANY_REDIRECTS, LOCKED, OFFLINE, CACHE; AbortError when `signal` fires
 */
export async function fetchToCache(url: URL, file: string, o: FetchOptions = {}): Promise<FetchResult> {
  throwIfAborted(o.signal);
  const cached = await cachedSize(file, o.size);
  if (cached !== undefined) return { file, downloaded: false, bytes: cached };
  if (isOffline()) {
    throw new DownloadError('OFFLINE', `VGG_NATIVE_OFFLINE is set and ${url.href} is not in the cache. ${offlineHint(file)}`, {
      url: url.href,
      file,
    });
  }
  await ensureFolder(file);
  const lock = await acquireLock(lockPath(file), { ...o.lock, ...(o.signal ? { signal: o.signal } : {}) });
  try {
    // Another process may have finished it while this one waited for the lock.
    const done = await cachedSize(file, o.size);
    if (done !== undefined) return { file, downloaded: false, bytes: done };
    await transferWithRetries(url, file, o);
    return { file, downloaded: true, bytes: await verifyAndCommit(url, file, o) };
  } finally {
    await lock.release();
  }
}
