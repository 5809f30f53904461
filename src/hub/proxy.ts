// Which proxy a request goes through, as curl, pip and npm read it from the
// environment: HTTPS_PROXY for https URLs, HTTP_PROXY for http ones (lower
// case wins, as in curl), ALL_PROXY as the fallback, NO_PROXY for hosts that
// go direct. Corporate networks often allow nothing else out.
import { isIP } from 'node:net';
import { proxyVariable } from '../settings';

/** A NO_PROXY entry: '*', a host, '.domain' or 'domain' (matching sub-domains too), each with an optional ':port'. */
function bypasses(entry: string, host: string, port: string): boolean {
  if (entry === '*') return true;
  let name = entry;
  let entryPort: string | undefined;
  const m = /^(.*):(\d+)$/.exec(entry);
  // '[::1]:8080' and 'host:8080' carry a port; a bare IPv6 address does not.
  if (m && (isIP(m[1].replace(/^\[|\]$/g, '')) !== 6 || m[1].startsWith('['))) {
    name = m[1];
    entryPort = m[2];
  }
  if (entryPort !== undefined && entryPort !== port) return false;
  name = name
    .replace(/^\[|\]$/g, '')
    .replace(/^\*?\./, '')
    .toLowerCase();
  return host === name || host.endsWith(`.${name}`);
}

/** Whether NO_PROXY sends `url` direct. */
export function noProxyFor(url: URL): boolean {
  const list = proxyVariable('no_proxy');
  if (!list) return false;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return list
    .split(/[\s,]+/)
    .filter(Boolean)
    .some((entry) => bypasses(entry.toLowerCase(), host, port));
}

/**
 * The proxy for `url` from the environment, or undefined for a direct
 * connection. A proxy URL without a scheme is taken as http://, as curl does.
 */
export function proxyFor(url: URL): URL | undefined {
  const raw = (url.protocol === 'https:' ? proxyVariable('https_proxy') : proxyVariable('http_proxy')) ?? proxyVariable('all_proxy');
  if (!raw || noProxyFor(url)) return undefined;
  const proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  return proxy;
}

/** The Proxy-Authorization header for a proxy URL with user:password, if it has one. */
export function proxyAuthorization(proxy: URL): Record<string, string> {
  if (!proxy.username && !proxy.password) return {};
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(credentials).toString('base64')}` };
}

/** A proxy URL safe to print (no password). */
export function describeProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}
