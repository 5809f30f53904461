// A weights server on 127.0.0.1 for the download tests: serves generated
// files with Range, ETag and If-Range like a CDN, and can misbehave on
// purpose (drop the connection mid-file, corrupt the body, 404, redirect,
// trickle). Plus a proxy that answers only for loopback, so a test that
// tried to leave the machine would fail and be seen.
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

/** The environment variables the hub reads: tests clear them so the machine's own settings cannot leak in. */
export const HUB_ENV = [
  'VGG_NATIVE_HOME',
  'VGG_NATIVE_MIRROR',
  'VGG_NATIVE_REGISTRY',
  'VGG_NATIVE_OFFLINE',
  'XDG_CACHE_HOME',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'http_proxy',
  'https_proxy',
  'ALL_PROXY',
  'all_proxy',
  'NO_PROXY',
  'no_proxy',
];

/** How one path answers. */
export interface Route {
  body?: Buffer;
  /** Answer this status with a short text body instead of the file. */
  status?: number;
  /** 302 to this location. */
  redirect?: string;
  /** Destroy the connection after this many body bytes, for the first `dropTimes` requests (default 1). */
  dropAfter?: number;
  dropTimes?: number;
  /** Flip one byte in the middle of the body. */
  corrupt?: boolean;
  /** Send the body in chunks of this many bytes, pausing `delayMs` between them. */
  trickle?: { chunk: number; delayMs: number };
  /** Ignore Range (always 200 with the whole body), as some servers do. */
  noRange?: boolean;
}

/** One request the server saw. */
export interface Seen {
  method: string;
  path: string;
  range?: string;
  ifRange?: string;
  status: number;
}

export interface WeightsServer {
  /** http://127.0.0.1:<port> */
  origin: string;
  routes: Map<string, Route>;
  seen: Seen[];
  close(): Promise<void>;
}

export function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
}

function corrupted(body: Buffer): Buffer {
  const copy = Buffer.from(body);
  copy[copy.length >> 1] ^= 0xff;
  return copy;
}

/** The byte range asked for and honoured, or undefined for the whole body. */
function rangeOf(req: http.IncomingMessage, route: Route, etag: string): number | undefined {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (!m || route.noRange) return undefined;
  const ifRange = req.headers['if-range'];
  return ifRange === undefined || ifRange === etag ? Number(m[1]) : undefined;
}

async function writeBody(res: http.ServerResponse, data: Buffer, route: Route, drop: boolean): Promise<void> {
  const limit = drop ? Math.min(route.dropAfter!, data.length) : data.length;
  const step = route.trickle?.chunk ?? 1 << 20;
  for (let at = 0; at < limit; at += step) {
    const piece = data.subarray(at, Math.min(at + step, limit));
    if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
    if (route.trickle) await new Promise((r) => setTimeout(r, route.trickle!.delayMs));
    if (res.destroyed) return;
  }
  if (drop) {
    // Let the bytes leave, then cut the connection the way a failing network does.
    await new Promise((r) => setTimeout(r, 20));
    res.socket?.destroy();
    return;
  }
  res.end();
}

async function answer(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  route: Route | undefined,
  seen: Seen,
  drops: Map<Route, number>,
): Promise<void> {
  if (!route) {
    seen.status = 404;
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  if (route.redirect) {
    seen.status = 302;
    res.writeHead(302, { location: route.redirect }).end();
    return;
  }
  if (route.status) {
    seen.status = route.status;
    res.writeHead(route.status, { 'content-type': 'text/plain' }).end(`status ${route.status}`);
    return;
  }
  const body = route.corrupt ? corrupted(route.body!) : route.body!;
  const etag = etagOf(route.body!);
  const start = rangeOf(req, route, etag);
  if (start !== undefined && start >= body.length) {
    seen.status = 416;
    res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
    return;
  }
  const dropped = drops.get(route) ?? 0;
  const drop = route.dropAfter !== undefined && dropped < (route.dropTimes ?? 1);
  if (drop) drops.set(route, dropped + 1);
  const from = start ?? 0;
  const headers: http.OutgoingHttpHeaders = {
    etag,
    'accept-ranges': 'bytes',
    'content-length': body.length - from,
    'content-type': 'application/octet-stream',
  };
  if (start !== undefined) headers['content-range'] = `bytes ${from}-${body.length - 1}/${body.length}`;
  seen.status = start !== undefined ? 206 : 200;
  res.writeHead(seen.status, headers);
  await writeBody(res, body.subarray(from), route, drop);
}

/** Starts the server on 127.0.0.1 (a free port). */
export async function startWeightsServer(routes = new Map<string, Route>()): Promise<WeightsServer> {
  const seen: Seen[] = [];
  const drops = new Map<Route, number>();
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const s: Seen = {
      method: req.method ?? '',
      path,
      status: 0,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers['if-range'] ? { ifRange: String(req.headers['if-range']) } : {}),
    };
    seen.push(s);
    answer(req, res, routes.get(path), s, drops).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    routes,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What the proxy was asked for: absolute-form GETs and CONNECT targets. */
export interface ProxySeen {
  method: string;
  target: string;
}

export interface LoopbackProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  seen: ProxySeen[];
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * An HTTP proxy that forwards only to loopback: GETs whose host is in
 * `aliases` go to that origin; CONNECT to a loopback host:port is tunnelled;
 * everything else is answered 502 (and recorded, so tests can assert that
 * nothing tried to leave the machine).
 */
export async function startLoopbackProxy(aliases: Map<string, string> = new Map()): Promise<LoopbackProxy> {
  const seen: ProxySeen[] = [];
  const tunnels = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', target: req.url ?? '' });
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end();
      return;
    }
    const origin = aliases.get(target.host) ?? (LOOPBACK.has(target.hostname) ? target.origin : undefined);
    if (!origin) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end('this test proxy reaches loopback only');
      return;
    }
    const upstream = http.request(
      `${origin}${target.pathname}${target.search}`,
      { method: req.method, headers: { ...req.headers, host: new URL(origin).host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket) => {
    seen.push({ method: 'CONNECT', target: req.url ?? '' });
    const m = /^(.*):(\d+)$/.exec(req.url ?? '');
    if (!m || !LOOPBACK.has(m[1])) {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    tunnels.add(socket);
    socket.on('close', () => tunnels.delete(socket));
    const host = m[1] === 'localhost' ? '127.0.0.1' : m[1].replace(/^\[|\]$/g, '');
    const upstream = net.connect(Number(m[2]), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        for (const t of tunnels) t.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Environment that sends every non-loopback request to `proxy` (or to a closed port when none): nothing leaves the machine. */
export function loopbackOnlyEnv(proxy?: string): Record<string, string> {
  const to = proxy ?? 'http://127.0.0.1:9';
  return {
    HTTP_PROXY: to,
    HTTPS_PROXY: to,
    http_proxy: to,
    https_proxy: to,
    ALL_PROXY: to,
    all_proxy: to,
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  };
}
