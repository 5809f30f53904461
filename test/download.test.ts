// Downloads on 127.0.0.1 only: a local server serving generated checkpoints
// (and misbehaving on purpose), a proxy that reaches loopback only, and the
// cache in a temp folder. Covers resume after a dropped connection, corrupt
// bodies, 404, redirects, two processes at once, the mirror, proxies, and
// vgg() loading registry weights through the cache.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { AbortError, DownloadError, downloadWeights, ModelError, vgg } from '../src';
import { fetchToCache } from '../src/hub/download';
import { tempDir } from './helpers/python';
import {
  etagOf,
  HUB_ENV,
  loopbackOnlyEnv,
  startLoopbackProxy,
  startWeightsServer,
  type LoopbackProxy,
  type WeightsServer,
} from './helpers/weights-server';

const execFileP = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const CHILD = path.join(__dirname, 'helpers', 'download-child.ts');
/** Host name the proxy maps to the local server; '.invalid' can never resolve (RFC 2606). */
const FAKE_HOST = 'weights.invalid';

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Random bytes that start like a legacy torch.save pickle (not like an HTML page). */
function fakeWeights(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  let x = seed;
  for (let i = 0; i < bytes; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b.writeUInt32LE(x, Math.min(i, bytes - 4));
  }
  b[0] = 0x80;
  return b;
}

/** Everything in the cache folder, relative, sorted. */
function cacheListing(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((p) => fs.statSync(path.join(dir, p)).isFile()).sort();
}

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<Error & { code: string }> {
  try {
    await p;
  } catch (e) {
    assert.equal((e as { code?: string }).code, code, `expected ${code}, got ${String(e)}`);
    return e as Error & { code: string };
  }
  assert.fail(`expected a rejection with ${code}`);
}

describe('weights downloads (loopback only)', function () {
  this.timeout(120_000);

  let tmp: ReturnType<typeof tempDir>;
  let cache: string;
  let server: WeightsServer;
  let proxy: LoopbackProxy;
  let saved: Record<string, string | undefined>;
  let ckpt: Buffer;
  let small: Buffer;

  before(async function () {
    this.timeout(300_000);
    saved = Object.fromEntries(HUB_ENV.map((k) => [k, process.env[k]]));
    for (const k of HUB_ENV) delete process.env[k];
    tmp = tempDir('vgg-download-');
    // A real checkpoint (vgg11 backbone, 37 MB) written by the package itself.
    const model = await vgg('vgg11', { numClasses: 0, seed: 1 });
    const file = path.join(tmp.dir, 'vgg11-backbone.pth');
    await model.save(file);
    model.dispose();
    ckpt = fs.readFileSync(file);
    small = fakeWeights(3 << 20, 7);
    server = await startWeightsServer();
    proxy = await startLoopbackProxy(new Map([[FAKE_HOST, server.origin]]));
    // Every request that is not to 127.0.0.1/localhost goes to the loopback-only proxy, so nothing can leave the machine.
    Object.assign(process.env, loopbackOnlyEnv(proxy.url));
  });

  beforeEach(() => {
    cache = fs.mkdtempSync(path.join(tmp.dir, 'cache-'));
    process.env.VGG_NATIVE_HOME = cache;
    server.routes.clear();
    server.seen.length = 0;
  });

  afterEach(() => {
    delete process.env.VGG_NATIVE_MIRROR;
    delete process.env.VGG_NATIVE_REGISTRY;
    delete process.env.VGG_NATIVE_OFFLINE;
  });

  after(async () => {
    await server?.close();
    await proxy?.close();
    for (const k of HUB_ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    tmp?.cleanup();
  });

  it('downloads into VGG_NATIVE_HOME once, with progress; the next call is a cache hit', async () => {
    server.routes.set('/w/small.pth', { body: small });
    const url = `${server.origin}/w/small.pth#sha256=${sha256(small)}`;
    const progress: number[] = [];
    const first = await downloadWeights(url, { onProgress: (p) => progress.push(p.receivedBytes) });
    assert.equal(first.downloaded, true);
    assert.equal(first.bytes, small.length);
    assert.ok(first.file.startsWith(cache), first.file);
    assert.ok(fs.readFileSync(first.file).equals(small));
    assert.equal(progress.at(-1), small.length);
    const second = await downloadWeights(url);
    assert.equal(second.downloaded, false);
    assert.equal(second.file, first.file);
    assert.equal(server.seen.length, 1, 'one request in all');
    assert.deepEqual(cacheListing(cache), [path.relative(cache, first.file)], 'no .part, .part.json or .lock left');
  });

  it('a connection dropped mid-file: the next attempt resumes with Range and ends with a good file', async () => {
    server.routes.set('/w/ckpt.pth', { body: ckpt, dropAfter: 10 << 20 });
    const url = new URL(`${server.origin}/w/ckpt.pth`);
    const file = path.join(cache, 'ckpt.pth');
    const e = await rejectsWithCode(fetchToCache(url, file, { sha256: sha256(ckpt), retries: 0 }), 'NETWORK');
    assert.match(e.message, /connection closed after \d+ of \d+ bytes/);
    const partial = fs.statSync(`${file}.part`).size;
    assert.ok(partial > 0 && partial <= 10 << 20, `partial ${partial}`);
    assert.ok(!fs.existsSync(file), 'no file before it is complete');

    const r = await fetchToCache(url, file, { sha256: sha256(ckpt), retries: 0 });
    assert.equal(r.downloaded, true);
    assert.equal(sha256(fs.readFileSync(file)), sha256(ckpt));
    const resumed = server.seen[1];
    assert.equal(resumed.range, `bytes=${partial}-`, 'the second request asks for the rest');
    assert.equal(resumed.ifRange, etagOf(ckpt), 'and only if the file is unchanged');
    assert.equal(resumed.status, 206);
    assert.deepEqual(cacheListing(cache), ['ckpt.pth']);
  });

  it('by default one call survives a dropped connection (retried with Range); a server ignoring Range starts over', async () => {
    server.routes.set('/w/a.pth', { body: small, dropAfter: 1 << 20 });
    const r = await downloadWeights(`${server.origin}/w/a.pth#sha256=${sha256(small)}`);
    assert.ok(fs.readFileSync(r.file).equals(small));
    assert.deepEqual(
      server.seen.map((s) => s.status),
      [200, 206],
    );

    server.seen.length = 0;
    server.routes.set('/w/b.pth', { body: small, dropAfter: 1 << 20, noRange: true });
    const b = await downloadWeights(`${server.origin}/w/b.pth#sha256=${sha256(small)}`);
    assert.ok(fs.readFileSync(b.file).equals(small));
    assert.deepEqual(
      server.seen.map((s) => s.status),
      [200, 200],
    );
  });

  it('a complete part left by a killed process is finished (416), a stalled server times out (NETWORK)', async () => {
    server.routes.set('/w/done.pth', { body: small });
    const url = new URL(`${server.origin}/w/done.pth`);
    const file = path.join(cache, 'done.pth');
    fs.writeFileSync(`${file}.part`, small);
    fs.writeFileSync(`${file}.part.json`, JSON.stringify({ url: url.href }));
    const r = await fetchToCache(url, file, { sha256: sha256(small) });
    assert.equal(r.bytes, small.length);
    assert.deepEqual(
      server.seen.map((s) => `${s.status} ${s.range}`),
      [`416 bytes=${small.length}-`],
    );
    assert.deepEqual(cacheListing(cache), ['done.pth']);

    server.routes.set('/w/stall.pth', { body: small, trickle: { chunk: 64 << 10, delayMs: 1000 } });
    const e = await rejectsWithCode(
      fetchToCache(new URL(`${server.origin}/w/stall.pth`), path.join(cache, 'stall.pth'), { timeoutMs: 300, retries: 0 }),
      'NETWORK',
    );
    assert.match(e.message, /no data for 0\.3 s after \d+ of \d+ bytes/);
  });

  it('a corrupted body is refused with CHECKSUM and deleted; nothing is left to load', async () => {
    server.routes.set('/w/c.pth', { body: small, corrupt: true });
    const e = await rejectsWithCode(downloadWeights(`${server.origin}/w/c.pth#sha256=${sha256(small).slice(0, 8)}`), 'CHECKSUM');
    assert.ok(e instanceof DownloadError);
    assert.match(e.message, /sha256 is [0-9a-f]{16}\.\.\., expected [0-9a-f]{8}\.\.\..*deleted/);
    assert.deepEqual(cacheListing(cache), []);
    // An HTML page served with 200 (a captive portal) is refused even without a checksum.
    server.routes.set('/w/page.pth', { body: Buffer.from('<!DOCTYPE html><p>please log in</p>') });
    const page = await rejectsWithCode(downloadWeights(`${server.origin}/w/page.pth`), 'CHECKSUM');
    assert.match(page.message, /web page/);
    assert.deepEqual(cacheListing(cache), []);
  });

  it('404 is NOT_FOUND naming the URL, the cache path and how to pass a local file; nothing is left behind', async () => {
    const e = await rejectsWithCode(downloadWeights(`${server.origin}/w/missing.pth`), 'NOT_FOUND');
    assert.equal((e as DownloadError).status, 404);
    assert.match(e.message, new RegExp(`${server.origin}/w/missing\\.pth`));
    assert.ok(e.message.includes(cache), e.message);
    assert.match(e.message, /weights: '\/path\/to\/file'/);
    assert.deepEqual(cacheListing(cache), []);
  });

  it('redirects are followed (bounded); a loop is TOO_MANY_REDIRECTS', async () => {
    server.routes.set('/w/real.pth', { body: small });
    server.routes.set('/w/moved.pth', { redirect: '/w/real.pth' });
    server.routes.set('/w/hop.pth', { redirect: `${server.origin}/w/moved.pth` });
    const r = await downloadWeights(`${server.origin}/w/hop.pth#sha256=${sha256(small)}`);
    assert.ok(fs.readFileSync(r.file).equals(small));
    assert.deepEqual(
      server.seen.map((s) => `${s.status} ${s.path}`),
      ['302 /w/hop.pth', '302 /w/moved.pth', '200 /w/real.pth'],
    );
    server.routes.set('/w/loop', { redirect: '/w/loop' });
    await rejectsWithCode(downloadWeights(`${server.origin}/w/loop`), 'TOO_MANY_REDIRECTS');
  });

  it('offline: a refused connection is NETWORK (after retries); VGG_NATIVE_OFFLINE fails at once with OFFLINE', async () => {
    const closed = `http://127.0.0.1:9/w/x.pth`;
    const e = await rejectsWithCode(downloadWeights(closed), 'NETWORK');
    assert.match(e.message, /cannot download http:\/\/127\.0\.0\.1:9\/w\/x\.pth: ECONNREFUSED/);
    assert.ok(e.message.includes(cache), 'names the cache path');
    assert.match(e.message, /pass its path \(weights: '\/path\/to\/file'\)/);
    process.env.VGG_NATIVE_OFFLINE = '1';
    server.routes.set('/w/small.pth', { body: small });
    const off = await rejectsWithCode(downloadWeights(`${server.origin}/w/small.pth`), 'OFFLINE');
    assert.match(off.message, /VGG_NATIVE_OFFLINE/);
    assert.equal(server.seen.length, 0);
  });

  it('aborting keeps the partial file and releases the lock; the next call resumes', async () => {
    server.routes.set('/w/slow.pth', { body: small, trickle: { chunk: 256 << 10, delayMs: 40 } });
    const url = `${server.origin}/w/slow.pth#sha256=${sha256(small)}`;
    const controller = new AbortController();
    const p = downloadWeights(url, {
      signal: controller.signal,
      onProgress: (pr) => {
        if (pr.receivedBytes > 512 << 10) controller.abort();
      },
    });
    const e = await rejectsWithCode(p, 'ABORT_ERR');
    assert.ok(e instanceof AbortError);
    const listing = cacheListing(cache);
    assert.ok(listing.some((f) => f.endsWith('.part')) && !listing.some((f) => f.endsWith('.lock')), listing.join(', '));
    server.routes.set('/w/slow.pth', { body: small });
    const r = await downloadWeights(url);
    assert.ok(fs.readFileSync(r.file).equals(small));
    assert.match(server.seen.at(-1)!.range ?? '', /^bytes=\d+-$/);
  });

  it('two processes downloading the same file at once: both succeed, one good file, fetched once', async () => {
    server.routes.set('/w/shared.pth', { body: ckpt, trickle: { chunk: 1 << 20, delayMs: 30 } });
    const url = `${server.origin}/w/shared.pth#sha256=${sha256(ckpt)}`;
    const env = { ...process.env, ...loopbackOnlyEnv(proxy.url), VGG_NATIVE_HOME: cache };
    const runChild = () => execFileP(process.execPath, ['--require', 'tsx/cjs', CHILD, url], { cwd: ROOT, env });
    const [a, b] = await Promise.all([runChild(), runChild()]);
    const ra = JSON.parse(a.stdout);
    const rb = JSON.parse(b.stdout);
    assert.equal(ra.file, rb.file);
    assert.equal(sha256(fs.readFileSync(ra.file)), sha256(ckpt));
    assert.equal([ra.downloaded, rb.downloaded].filter(Boolean).length, 1, 'one of them downloaded, the other waited and reused it');
    assert.equal(server.seen.filter((s) => s.status === 200).length, 1, 'the body was served once');
    assert.deepEqual(cacheListing(cache), [path.relative(cache, ra.file)]);
  });

  it('VGG_NATIVE_MIRROR sends registry URLs to the mirror; a file that is not the published one is refused', async () => {
    process.env.VGG_NATIVE_MIRROR = `${server.origin}/mirror/`;
    const published = '/mmclassification/v0/vgg/vgg11_batch256_imagenet_20210208-4271cd6c.pth';
    server.routes.set(`/mirror${published}`, { body: ckpt });
    const e = await rejectsWithCode(downloadWeights('vgg11.mmcls'), 'CHECKSUM');
    assert.match(e.message, /expected 4271cd6c\.\.\./);
    assert.deepEqual(
      server.seen.map((s) => s.path),
      [`/mirror${published}`],
    );
    assert.deepEqual(cacheListing(cache), []);
  });

  it("vgg('vgg11', { weights: <registry key> }) downloads through the mirror into the cache, then loads from it", async () => {
    const hash = sha256(ckpt);
    const registry = path.join(tmp.dir, 'registry.json');
    fs.writeFileSync(
      registry,
      JSON.stringify([
        {
          key: 'vgg11-backbone.test',
          arch: 'vgg11',
          url: `https://${FAKE_HOST}/vgg/vgg11-backbone-${hash.slice(0, 8)}.pth`,
          sha256: hash,
          numClasses: 0,
        },
      ]),
    );
    process.env.VGG_NATIVE_REGISTRY = registry;
    process.env.VGG_NATIVE_MIRROR = server.origin;
    server.routes.set(`/vgg/vgg11-backbone-${hash.slice(0, 8)}.pth`, { body: ckpt });
    let reported = 0;
    const model = await vgg('vgg11', {
      weights: 'vgg11-backbone.test',
      onDownloadProgress: (p) => {
        reported = p.receivedBytes;
      },
    });
    try {
      assert.equal(reported, ckpt.length);
      assert.equal(model.numClasses, 0);
      assert.equal(model.weightsInfo?.path, path.join(cache, 'weights', `vgg11-backbone-${hash.slice(0, 8)}.pth`));
      assert.deepEqual(model.inputPipeline, { size: 224, resize: 'short' });
    } finally {
      model.dispose();
    }
    const again = await vgg({ weights: 'vgg11-backbone.test' });
    assert.equal(again.arch, 'vgg11');
    again.dispose();
    assert.equal(server.seen.length, 1, 'the second model came from the cache');
    await assert.rejects(vgg('vgg16', { weights: 'vgg11-backbone.test' }), (e: unknown) => e instanceof ModelError && e.code === 'ARCH_MISMATCH');
    assert.equal(server.seen.length, 1, 'a wrong architecture is refused before any download');
  });

  it('vgg() takes an http(s) URL and caches it; proxies: HTTP_PROXY is used, NO_PROXY bypasses it', async () => {
    server.routes.set('/vgg/backbone.pth', { body: ckpt });
    const before = proxy.seen.length;
    // weights.invalid resolves nowhere: only the proxy (which maps it to the local server) can answer.
    const model = await vgg('vgg11', { weights: `http://${FAKE_HOST}/vgg/backbone.pth#sha256=${sha256(ckpt).slice(0, 8)}` });
    model.dispose();
    assert.deepEqual(proxy.seen.slice(before), [{ method: 'GET', target: `http://${FAKE_HOST}/vgg/backbone.pth` }]);
    const direct = await vgg('vgg11', { weights: `${server.origin}/vgg/backbone.pth` });
    direct.dispose();
    assert.equal(proxy.seen.length, before + 1, '127.0.0.1 is in NO_PROXY: it went direct');
    assert.equal(server.seen.length, 2);
  });

  it('https through the proxy: a CONNECT tunnel, TLS verified against the CA in NODE_EXTRA_CA_CERTS', async function () {
    const certDir = path.join(tmp.dir, 'tls');
    fs.mkdirSync(certDir, { recursive: true });
    try {
      await execFileP('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        path.join(certDir, 'key.pem'),
        '-out',
        path.join(certDir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost',
      ]);
    } catch {
      this.skip(); // no openssl: the tunnel stays untested here
    }
    const tls = https.createServer(
      { key: fs.readFileSync(path.join(certDir, 'key.pem')), cert: fs.readFileSync(path.join(certDir, 'cert.pem')) },
      (_req, res) => {
        res.writeHead(200, { 'content-length': small.length }).end(small);
      },
    );
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    try {
      const port = (tls.address() as AddressInfo).port;
      const before = proxy.seen.length;
      const env = {
        ...process.env,
        ...loopbackOnlyEnv(proxy.url),
        NO_PROXY: '',
        no_proxy: '',
        VGG_NATIVE_HOME: cache,
        NODE_EXTRA_CA_CERTS: path.join(certDir, 'cert.pem'),
      };
      const { stdout } = await execFileP(
        process.execPath,
        ['--require', 'tsx/cjs', CHILD, `https://localhost:${port}/t.pth#sha256=${sha256(small)}`],
        { cwd: ROOT, env },
      );
      assert.equal(JSON.parse(stdout).bytes, small.length);
      assert.deepEqual(proxy.seen.slice(before), [{ method: 'CONNECT', target: `localhost:${port}` }]);
    } finally {
      tls.closeAllConnections();
      await new Promise((resolve) => tls.close(resolve));
    }
  });

  it('nothing in this suite asked the proxy for a host other than the fake one or loopback', () => {
    // Every request off loopback goes to the proxy (HTTP(S)_PROXY with NO_PROXY=127.0.0.1,localhost): its log is the whole outside traffic.
    for (const s of proxy.seen) assert.match(s.target, new RegExp(`^(http://${FAKE_HOST.replace('.', '\\.')}/|localhost:\\d+$)`), s.target);
  });
});
