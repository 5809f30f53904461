// One GET, the way a weights download needs it: through the environment's
// proxy (CONNECT tunnel for https), redirects followed up to a limit and
// never from https down to http, an idle timeout, an AbortSignal, and every
// failure turned into a DownloadError that says what to do.
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP, type Socket } from 'node:net';
import * as tls from 'node:tls';
import { abortErrorOf } from '../abort';
import { DownloadError, offlineHint } from './errors';
import { describeProxy, proxyAuthorization, proxyFor } from './proxy';

/** Statuses that redirect a GET. */
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'vgg-native (weights download; https://www.npmjs.com/package/vgg-native)';

export interface GetOptions {
  /** Extra request headers (Range, If-Range). */
  headers: Record<string, string>;
  /** Idle time on the socket before giving up, ms. */
  timeoutMs: number;
  /** Redirects followed before TOO_MANY_REDIRECTS. */
  maxRedirects: number;
  /** The cache file the bytes are for (named in errors). */
  file: string;
  signal?: AbortSignal;
}

/** A response whose status is not a redirect, and the URL that gave it. */
export interface Opened {
  res: http.IncomingMessage;
  url: URL;
  /** True once the idle timeout destroyed the connection (so the body's error can say so). */
  timedOut(): boolean;
}

/** The NETWORK error for `url`: what failed, and the ways around it. */
export function networkError(url: URL, file: string, reason: string, cause?: unknown): DownloadError {
  const proxy = proxyFor(url);
  const via = proxy ? ` through the proxy ${describeProxy(proxy)}` : '';
  return new DownloadError('NETWORK', `cannot download ${url.href}${via}: ${reason}. ${offlineHint(file)}`, { url: url.href, file, cause });
}

function reasonOf(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code ? `${err.code}${err.message && !err.message.includes(err.code) ? ` (${err.message})` : ''}` : String(err?.message ?? e);
}

/** host/port options for node:http(s) from a URL (IPv6 literals lose their brackets). */
function endpoint(url: URL): { host: string; port: number } {
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80) };
}

/** Sends one request; resolves with the response head. */
function send(url: URL, mod: typeof http | typeof https, options: http.RequestOptions, o: GetOptions): Promise<Opened> {
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const req = mod.request({ ...options, method: 'GET', ...(o.signal ? { signal: o.signal } : {}) }, (res) => {
      resolve({ res, url, timedOut: () => timedOut });
    });
    req.setTimeout(o.timeoutMs, () => {
      timedOut = true;
      req.destroy(new Error(`no data for ${o.timeoutMs / 1000} s`));
    });
    req.on('error', (e) =>
      reject(
        o.signal?.aborted ? abortErrorOf(o.signal) : networkError(url, o.file, timedOut ? `no data for ${o.timeoutMs / 1000} s` : reasonOf(e), e),
      ),
    );
    req.end();
  });
}

/** Opens a CONNECT tunnel to `url`'s host through `proxy`. */
function tunnel(proxy: URL, url: URL, o: GetOptions): Promise<Socket> {
  const { host, port } = endpoint(url);
  const target = `${url.hostname}:${port}`;
  return new Promise((resolve, reject) => {
    const mod = proxy.protocol === 'https:' ? https : http;
    const req = mod.request({
      ...endpoint(proxy),
      method: 'CONNECT',
      path: target,
      headers: { host: target, ...proxyAuthorization(proxy) },
      ...(o.signal ? { signal: o.signal } : {}),
    });
    req.setTimeout(o.timeoutMs, () => req.destroy(new Error(`the proxy did not answer in ${o.timeoutMs / 1000} s`)));
    req.on('connect', (res, socket) => {
      req.setTimeout(0);
      if (res.statusCode === 200) {
        resolve(socket);
        return;
      }
      socket.destroy();
      reject(networkError(url, o.file, `the proxy refused to connect to ${host}:${port} (HTTP ${res.statusCode})`));
    });
    req.on('error', (e) => reject(o.signal?.aborted ? abortErrorOf(o.signal) : networkError(url, o.file, reasonOf(e), e)));
    req.end();
  });
}

/** One request to `url`, direct or through the environment's proxy. */
async function requestOnce(url: URL, o: GetOptions): Promise<Opened> {
  const headers = { 'user-agent': USER_AGENT, 'accept-encoding': 'identity', ...o.headers };
  const proxy = proxyFor(url);
  const direct = { ...endpoint(url), path: `${url.pathname}${url.search}`, headers };
  if (!proxy) return send(url, url.protocol === 'https:' ? https : http, direct, o);
  if (url.protocol === 'http:') {
    // A plain-http request goes to the proxy with the absolute URL as its target (RFC 9112 absolute-form).
    const viaProxy = {
      ...endpoint(proxy),
      path: `${url.origin}${url.pathname}${url.search}`,
      headers: { ...headers, host: url.host, ...proxyAuthorization(proxy) },
    };
    return send(url, proxy.protocol === 'https:' ? https : http, viaProxy, o);
  }
  const socket = await tunnel(proxy, url, o);
  const servername = isIP(direct.host) ? undefined : direct.host;
  // No agent: the request runs over the TLS session this tunnel carries.
  return send(url, https, { ...direct, createConnection: () => tls.connect({ socket, ...(servername ? { servername } : {}) }) }, o);
}

/** The next URL of a redirect, refusing anything but http(s) and https-to-http. */
function redirectTarget(from: URL, location: string, file: string): URL {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch (e) {
    throw new DownloadError('BAD_URL', `${from.href} redirects to '${location}', which is not a URL`, { url: from.href, file, cause: e });
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new DownloadError('BAD_URL', `${from.href} redirects to ${next.href}, which is not http(s)`, { url: from.href, file });
  }
  if (from.protocol === 'https:' && next.protocol === 'http:') {
    throw new DownloadError('BAD_URL', `${from.href} redirects from https to plain http (${next.href}); refused`, { url: from.href, file });
  }
  return next;
}

/**
 * GETs `url`, following redirects; resolves with the first response that is
 * not a redirect (any status: the caller decides what it means).
 * @throws DownloadError NETWORK, BAD_URL, TOO_MANY_REDIRECTS; AbortError when `signal` fires
 */
export async function get(url: URL, o: GetOptions): Promise<Opened> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const opened = await requestOnce(current, o);
    const { res } = opened;
    const location = res.headers.location;
    if (!REDIRECT_STATUSES.has(res.statusCode ?? 0) || !location) return opened;
    res.resume(); // the redirect's own body is not wanted; drain it so the socket is freed
    if (hop >= o.maxRedirects) {
      throw new DownloadError('TOO_MANY_REDIRECTS', `${url.href} redirected more than ${o.maxRedirects} times (last to ${location})`, {
        url: url.href,
        file: o.file,
      });
    }
    current = redirectTarget(current, location, o.file);
  }
}
