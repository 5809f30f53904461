// The weights hub without a network: the registry against its sources
// (torchvision's weight enums as the oracle), names and keywords, the mirror,
// VGG_NATIVE_REGISTRY, the cache folder, proxy selection and the lock.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ARCHITECTURES, DownloadError, downloadWeights, listWeights, ModelError, vgg, weightsCacheDir } from '../src';
import { hashInFileName } from '../src/hub/registry';
import { resolveWeightsFile } from '../src/hub/resolve';
import { noProxyFor, proxyFor } from '../src/hub/proxy';
import { acquireLock } from '../src/hub/lock';
import { pythonCode, tempDir } from './helpers/python';
import { HUB_ENV } from './helpers/weights-server';

const execFileP = promisify(execFile);
const ENV = HUB_ENV;

/** Runs `work` with exactly these hub variables set (the others unset), restoring them afterwards. */
async function withEnv<T>(vars: Record<string, string>, work: () => T | Promise<T>): Promise<T> {
  const saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
  for (const k of ENV) delete process.env[k];
  Object.assign(process.env, vars);
  try {
    return await work();
  } finally {
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

// torchvision's own record of its VGG weights: URL, accuracy, parameter count.
const TORCHVISION_PY = `
import json, torchvision.models as m
out = {}
for name in ['vgg11', 'vgg13', 'vgg16', 'vgg19', 'vgg11_bn', 'vgg13_bn', 'vgg16_bn', 'vgg19_bn']:
    w = getattr(m, name.upper() + '_Weights').IMAGENET1K_V1
    out[name] = {'url': w.url, 'top1': w.meta['_metrics']['ImageNet-1K']['acc@1'], 'top5': w.meta['_metrics']['ImageNet-1K']['acc@5'], 'params': w.meta['num_params'],
                 'resize': w.transforms().resize_size[0], 'crop': w.transforms().crop_size[0]}
print(json.dumps(out))
`;

describe('weights hub: registry, names, cache, proxies, lock', function () {
  this.timeout(60_000);

  describe('registry', () => {
    it("holds mmcls's 8, torchvision's 8, the ONNX zoo's 4 and timm's 8, under unique keys <arch>.<source> and cache names", () =>
      withEnv({}, () => {
        const all = listWeights();
        assert.equal(all.length, 28);
        assert.equal(new Set(all.map((e) => e.key)).size, 28);
        assert.equal(new Set(all.map((e) => e.fileName)).size, 28);
        for (const e of all) assert.equal(e.key, `${e.arch}.${e.source}`);
        assert.deepEqual(
          listWeights({ source: 'mmcls' }).map((e) => e.arch),
          [...ARCHITECTURES],
        );
        assert.deepEqual(
          listWeights({ source: 'torchvision' }).map((e) => e.arch),
          [...ARCHITECTURES],
        );
        assert.deepEqual(
          listWeights({ source: 'onnx-zoo' })
            .map((e) => e.arch)
            .sort(),
          ['vgg16', 'vgg16_bn', 'vgg19', 'vgg19_bn'],
        );
        assert.deepEqual(
          listWeights({ arch: 'vgg16_bn' }).map((e) => e.key),
          ['vgg16_bn.mmcls', 'vgg16_bn.torchvision', 'vgg16_bn.onnx-zoo', 'vgg16_bn.timm'],
        );
        // timm's hub repositories (timm/models/vgg.py default_cfgs: hf_hub_id 'timm/', tag tv_in1k), in timm's layout.
        for (const e of listWeights({ source: 'timm' })) {
          assert.equal(e.publishedUrl, `https://huggingface.co/timm/${e.arch}.tv_in1k/resolve/main/model.safetensors`);
          assert.equal(e.layout, 'timm');
        }
      }));

    it('every entry has a checksum: the hash its file name carries (mmcls, torchvision) or the full sha256 and size (zoo); timm publishes none', () =>
      withEnv({}, () => {
        for (const e of listWeights()) {
          if (e.source === 'timm') {
            assert.equal(e.sha256, undefined, e.key);
            assert.equal(e.fileName, `timm-${e.arch}.tv_in1k.safetensors`);
            continue;
          }
          assert.ok(e.sha256 && /^[0-9a-f]{8,64}$/.test(e.sha256), e.key);
          if (e.source === 'onnx-zoo') {
            assert.equal(e.sha256.length, 64, e.key);
            assert.ok(e.size && e.size > 500e6, e.key);
          } else {
            assert.equal(e.sha256, hashInFileName(e.fileName), e.key);
          }
          assert.equal(e.url, e.publishedUrl);
          assert.ok(e.url.endsWith(`/${e.fileName}`));
          assert.deepEqual([e.input.resizeShortSide, e.input.cropSize, e.numClasses, e.labels], [256, 224, 1000, 'imagenet']);
        }
        const mm = listWeights({ arch: 'vgg16_bn', source: 'mmcls' })[0];
        assert.equal(mm.url, 'https://download.openmmlab.com/mmclassification/v0/vgg/vgg16_bn_batch256_imagenet_20210208-7e55cd29.pth');
        assert.deepEqual(mm.accuracy, { top1: 73.74, top5: 91.66 });
      }));

    it("torchvision entries equal torchvision's weight enums (URL, accuracy, parameters, 256/224 pipeline)", async () => {
      const tv = JSON.parse(await pythonCode(TORCHVISION_PY));
      await withEnv({}, () => {
        for (const e of listWeights({ source: 'torchvision' })) {
          const t = tv[e.arch];
          assert.equal(e.url, t.url, e.key);
          assert.deepEqual(e.accuracy, { top1: t.top1, top5: t.top5 }, e.key);
          assert.equal(e.params, t.params, `${e.key} parameters from the architecture table`);
          assert.deepEqual([e.input.resizeShortSide, e.input.cropSize], [t.resize, t.crop]);
        }
      });
    });

    it("parameter counts agree with mmcls's published table (M, 2 decimals)", () =>
      withEnv({}, () => {
        const published: Record<string, number> = {
          vgg11: 132.86,
          vgg13: 133.05,
          vgg16: 138.36,
          vgg19: 143.67,
          vgg11_bn: 132.87,
          vgg13_bn: 133.05,
          vgg16_bn: 138.37,
          vgg19_bn: 143.68,
        };
        for (const e of listWeights({ source: 'mmcls' })) assert.equal(Math.round(e.params / 1e4) / 100, published[e.arch], e.key);
      }));

    it('VGG_NATIVE_MIRROR replaces the origin of every registry URL (a path prefix kept); a bad one is BAD_URL', () =>
      withEnv({ VGG_NATIVE_MIRROR: 'https://mirror.example.com/models/' }, () => {
        for (const e of listWeights()) {
          const published = new URL(e.publishedUrl);
          assert.equal(e.url, `https://mirror.example.com/models${published.pathname}`);
        }
        process.env.VGG_NATIVE_MIRROR = 'ftp://mirror';
        assert.throws(
          () => listWeights(),
          (e: unknown) => e instanceof DownloadError && e.code === 'BAD_URL',
        );
      }));

    it('VGG_NATIVE_REGISTRY adds entries; a bad file is REGISTRY naming the entry', async () => {
      const tmp = tempDir('vgg-hub-');
      try {
        const file = path.join(tmp.dir, 'reg.json');
        fs.writeFileSync(
          file,
          JSON.stringify([
            {
              key: 'cats.acme',
              arch: 'vgg11_bn',
              url: 'https://models.acme.test/cats-0123abcd.pth',
              sha256: '0123ABCD',
              numClasses: 2,
              source: 'acme',
            },
          ]),
        );
        await withEnv({ VGG_NATIVE_REGISTRY: file }, () => {
          const [e] = listWeights({ source: 'acme' });
          assert.deepEqual(
            [e.key, e.arch, e.sha256, e.numClasses, e.labels, e.layout, e.fileName],
            ['cats.acme', 'vgg11_bn', '0123abcd', 2, 'checkpoint', 'mmcls', 'cats-0123abcd.pth'],
          );
          assert.equal(listWeights().length, 29);
          const cases: Array<[unknown, RegExp]> = [
            [{ key: 'vgg16.mmcls', arch: 'vgg16', url: 'https://x.test/a.pth' }, /key 'vgg16\.mmcls' is taken/],
            [{ key: 'imagenet', arch: 'vgg16', url: 'https://x.test/a.pth' }, /key 'imagenet' is taken/],
            [{ key: 'a', arch: 'vgg15', url: 'https://x.test/a.pth' }, /arch "vgg15"/],
            [{ key: 'a', arch: 'vgg16', url: 'file:///etc/passwd' }, /http\(s\) url/],
            [{ key: 'a', arch: 'vgg16', url: 'https://x.test/a.pth', sha256: 'xyz' }, /sha256/],
            [{ key: 'a', arch: 'vgg16', url: 'https://x.test/a.pth', colour: 'red' }, /unknown field 'colour'/],
          ];
          // A new file per case: the registry is re-read when VGG_NATIVE_REGISTRY names another file.
          cases.forEach(([entry, message], i) => {
            process.env.VGG_NATIVE_REGISTRY = path.join(tmp.dir, `bad-${i}.json`);
            fs.writeFileSync(process.env.VGG_NATIVE_REGISTRY, JSON.stringify([entry]));
            assert.throws(
              () => listWeights(),
              (e: unknown) => e instanceof DownloadError && e.code === 'REGISTRY' && message.test(e.message) && e.message.includes('entry 0'),
            );
          });
          process.env.VGG_NATIVE_REGISTRY = path.join(tmp.dir, 'broken.json');
          fs.writeFileSync(process.env.VGG_NATIVE_REGISTRY, '{ not json');
          assert.throws(
            () => listWeights(),
            (e: unknown) => e instanceof DownloadError && e.code === 'REGISTRY' && /cannot read/.test(e.message),
          );
        });
      } finally {
        tmp.cleanup();
      }
    });
  });

  describe('names', () => {
    it("'imagenet' and the source names pick the architecture's entry; a key must match the architecture", async () => {
      await withEnv({ VGG_NATIVE_OFFLINE: '1', VGG_NATIVE_HOME: path.join(os.tmpdir(), 'vgg-hub-empty-cache') }, async () => {
        const offline = async (weights: string, arch?: 'vgg16_bn' | 'vgg11'): Promise<DownloadError> => {
          try {
            await resolveWeightsFile(weights, arch ? { arch } : {});
          } catch (e) {
            if (e instanceof DownloadError && e.code === 'OFFLINE') return e;
            throw e;
          }
          throw new Error('expected OFFLINE');
        };
        assert.ok((await offline('imagenet', 'vgg16_bn')).file?.endsWith('vgg16_bn_batch256_imagenet_20210208-7e55cd29.pth'));
        assert.ok((await offline('torchvision', 'vgg16_bn')).file?.endsWith('vgg16_bn-6c64b313.pth'));
        assert.ok((await offline('onnx-zoo', 'vgg16_bn')).file?.endsWith('vgg16-bn-7.onnx'));
        assert.ok((await offline('mmcls')).file?.endsWith('vgg16_batch256_imagenet_20210208-db26f1a5.pth'), 'vgg16 when no architecture is given');
        assert.ok((await offline('vgg11.torchvision')).file?.endsWith('vgg11-8a719046.pth'));
        await assert.rejects(
          resolveWeightsFile('onnx-zoo', { arch: 'vgg11' }),
          (e: unknown) => e instanceof RangeError && /'mmcls', 'torchvision'/.test(e.message),
        );
        await assert.rejects(
          resolveWeightsFile('vgg11.torchvision', { arch: 'vgg16_bn' }),
          (e: unknown) => e instanceof ModelError && e.code === 'ARCH_MISMATCH',
        );
        assert.deepEqual(await resolveWeightsFile('./some/local.pth', { arch: 'vgg11' }), { file: './some/local.pth' }, 'a path passes through');
        await assert.rejects(resolveWeightsFile('http://exa mple/x'), (e: unknown) => e instanceof DownloadError && e.code === 'BAD_URL');
        await assert.rejects(
          resolveWeightsFile('https://example.test/x.pth#md5=abc'),
          (e: unknown) => e instanceof DownloadError && e.code === 'BAD_URL',
        );
      });
    });

    it('vgg() resolves the keyword before touching any file, and refuses an unknown registry-like name as a missing file', async () => {
      await withEnv({ VGG_NATIVE_OFFLINE: '1', VGG_NATIVE_HOME: path.join(os.tmpdir(), 'vgg-hub-empty-cache') }, async () => {
        await assert.rejects(
          vgg('vgg13', { weights: 'imagenet' }),
          (e: unknown) => e instanceof DownloadError && e.code === 'OFFLINE' && /vgg13_batch256/.test(e.message),
        );
        await assert.rejects(vgg('vgg13', { weights: 'vgg13.nowhere' }), (e: unknown) => (e as { code?: string }).code === 'UNREADABLE');
        await assert.rejects(vgg('vgg13', { weights: 'imagenet', onDownloadProgress: 3 as never }), (e: unknown) => e instanceof TypeError);
      });
    });

    it('downloadWeights validates its arguments', async () => {
      await assert.rejects(downloadWeights(''), (e: unknown) => e instanceof TypeError && (e as { code?: string }).code === 'ERR_INVALID_ARG_TYPE');
      await assert.rejects(downloadWeights('no-such-weights'), (e: unknown) => e instanceof RangeError && /registry key/.test(e.message));
      await assert.rejects(
        downloadWeights('vgg16.mmcls', { retries: 3 } as never),
        (e: unknown) => e instanceof RangeError && /only the keys arch, onProgress, signal/.test(e.message),
      );
      await assert.rejects(downloadWeights('imagenet', { arch: 'vgg15' as never }), RangeError);
    });
  });

  describe('cache folder', () => {
    it('VGG_NATIVE_HOME, else $XDG_CACHE_HOME/vgg-native (absolute only), else ~/.cache/vgg-native', () =>
      withEnv({}, () => {
        assert.equal(weightsCacheDir(), path.join(os.homedir(), '.cache', 'vgg-native'));
        process.env.XDG_CACHE_HOME = 'relative/cache';
        assert.equal(weightsCacheDir(), path.join(os.homedir(), '.cache', 'vgg-native'));
        process.env.XDG_CACHE_HOME = '/var/cache/me';
        assert.equal(weightsCacheDir(), '/var/cache/me/vgg-native');
        process.env.VGG_NATIVE_HOME = '/opt/models';
        assert.equal(weightsCacheDir(), '/opt/models');
        assert.equal(listWeights({ arch: 'vgg11', source: 'torchvision' })[0].file, '/opt/models/weights/vgg11-8a719046.pth');
      }));
  });

  describe('proxies', () => {
    it('HTTPS_PROXY for https, HTTP_PROXY for http (lower case first), ALL_PROXY as fallback, NO_PROXY bypasses', () =>
      withEnv({}, () => {
        const u = (s: string): URL => new URL(s);
        assert.equal(proxyFor(u('https://a.test/x')), undefined);
        process.env.HTTPS_PROXY = 'http://upper:3128';
        process.env.https_proxy = 'proxy.corp:8080';
        process.env.HTTP_PROXY = 'http://plain:3128';
        assert.equal(proxyFor(u('https://a.test/x'))?.href, 'http://proxy.corp:8080/');
        assert.equal(proxyFor(u('http://a.test/x'))?.href, 'http://plain:3128/');
        delete process.env.HTTP_PROXY;
        process.env.ALL_PROXY = 'http://all:1';
        assert.equal(proxyFor(u('http://a.test/x'))?.href, 'http://all:1/');
        process.env.NO_PROXY = 'localhost, .internal.test,exact.test:8443,10.0.0.7';
        assert.equal(proxyFor(u('http://localhost:9/x')), undefined);
        assert.equal(proxyFor(u('https://mirror.internal.test/x')), undefined);
        assert.equal(proxyFor(u('https://internal.test/x')), undefined);
        assert.equal(proxyFor(u('https://exact.test:8443/x')), undefined);
        assert.ok(proxyFor(u('https://exact.test/x')), 'another port still goes through the proxy');
        assert.equal(proxyFor(u('http://10.0.0.7/x')), undefined);
        assert.ok(proxyFor(u('https://notinternal.test/x')));
        process.env.NO_PROXY = '*';
        assert.equal(noProxyFor(u('https://anything.test/')), true);
      }));
  });

  describe('lock', () => {
    let tmp: ReturnType<typeof tempDir>;
    before(() => {
      tmp = tempDir('vgg-lock-');
    });
    after(() => tmp.cleanup());

    it('a live holder makes others wait (LOCKED after waitMs); release lets the next one in', async () => {
      const file = path.join(tmp.dir, 'a.lock');
      const first = await acquireLock(file, { staleMs: 5000 });
      const e = await acquireLock(file, { waitMs: 300, pollMs: 50 }).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(e instanceof DownloadError && e.code === 'LOCKED', String(e));
      assert.match((e as Error).message, new RegExp(`process ${process.pid} on .*delete ${file.replace(/[.]/g, '\\.')}`));
      const waiting = acquireLock(file, { pollMs: 20 });
      await first.release();
      const second = await waiting;
      await second.release();
      assert.ok(!fs.existsSync(file));
    });

    it("a dead holder's lock (its pid is gone) or a lock not touched for staleMs is broken", async () => {
      const file = path.join(tmp.dir, 'b.lock');
      const child = await execFileP(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
      fs.writeFileSync(file, JSON.stringify({ pid: Number(child.stdout), host: os.hostname(), token: 'dead', since: 0 }));
      const lock = await acquireLock(file, { waitMs: 1000 });
      await lock.release();
      fs.writeFileSync(file, JSON.stringify({ pid: process.pid, host: 'another-host', token: 'old', since: 0 }));
      const old = new Date(Date.now() - 60_000);
      fs.utimesSync(file, old, old);
      const again = await acquireLock(file, { staleMs: 10_000, waitMs: 1000 });
      await again.release();
    });

    it('waiting stops with AbortError when the signal fires', async () => {
      const file = path.join(tmp.dir, 'c.lock');
      const held = await acquireLock(file);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      await assert.rejects(
        acquireLock(file, { signal: controller.signal, pollMs: 20 }),
        (e: unknown) => (e as { code?: string }).code === 'ABORT_ERR',
      );
      await held.release();
    });
  });
});
