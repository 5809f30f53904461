// One place for settings (src/settings.ts): one grammar per type with a
// stable code for a bad value, runtime() reporting what native code runs
// with, the host cache knob, and native code that reads no environment (the
// settings reach it through configure() only). Expected values are written
// out by hand here, never taken from the code under test.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { errorCode, hostCache, runtime, SettingsError, threads, vgg } from '../src';
import { loadBinding } from '../src/binding';
import { readSettings, SETTING_VARIABLES, setting, torchrunSettings } from '../src/settings';
import { resolveDistributed } from '../src/train/distributed';

const ROOT = path.resolve(__dirname, '..');
const SRC = path.join(ROOT, 'src');

/** The CPU's flags as /proc/cpuinfo lists them (x64 Linux), for the kernel native/gemv.cc must pick. */
function cpuFlags(): Set<string> {
  const line = fs
    .readFileSync('/proc/cpuinfo', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('flags'));
  return new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
}
const FLAGS = cpuFlags();
const HAS_AVX2 = FLAGS.has('avx2') && FLAGS.has('fma');
const BEST_GEMV = FLAGS.has('avx512f') ? 'avx512' : HAS_AVX2 ? 'avx2' : 'none';

/** The test's environment without any variable the package reads, except the addon to load (CI points VGG_NATIVE_ADDON at the prebuilt). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if ((k.startsWith('VGG_NATIVE_') && k !== 'VGG_NATIVE_ADDON') || ['WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'].includes(k))
      delete env[k];
  }
  return { ...env, ...extra };
}

/** Runs `code` (CommonJS, with tsx) in a child with `env` on top of a clean environment; returns the last line of stdout parsed as JSON. */
function child(code: string, env: Record<string, string>): unknown {
  const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', code], { cwd: ROOT, encoding: 'utf8', env: cleanEnv(env) });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
}

function cliRun(env: Record<string, string>, ...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', path.join(SRC, 'cli.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env: cleanEnv(env) });
  return { status: r.status, stderr: r.stderr };
}

function assertBadSetting(fn: () => unknown, variable: string, value: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SettingsError, String(e));
    assert.equal(e.code, 'BAD_SETTING');
    assert.equal(errorCode(e), 'BAD_SETTING');
    assert.equal(e.variable, variable);
    assert.equal(e.value, value);
    assert.ok(e.message.includes(`for environment variable ${variable} but received`), e.message);
    return true;
  });
}

describe('settings', function () {
  this.timeout(120000);

  describe('one grammar per type', () => {
    it('booleans: 1/true/yes/on are true, 0/false/no/off/empty are false (any case, trimmed); VGG_NATIVE_DEBUG=0 is off', () => {
      for (const v of ['1', 'true', 'TRUE', 'Yes', 'on', ' on ']) assert.equal(setting('debug', { VGG_NATIVE_DEBUG: v }), true, v);
      for (const v of ['0', 'false', 'False', 'no', 'OFF', '']) assert.equal(setting('debug', { VGG_NATIVE_DEBUG: v }), false, v);
      assert.equal(setting('debug', {}), false);
      // The same grammar for every boolean, whatever its default.
      assert.equal(setting('offline', { VGG_NATIVE_OFFLINE: 'yes' }), true);
      assert.equal(setting('offline', { VGG_NATIVE_OFFLINE: '0' }), false);
      assert.equal(setting('onednn', {}), true);
      assert.equal(setting('onednn', { VGG_NATIVE_ONEDNN: '0' }), false);
      assert.equal(setting('onednn', { VGG_NATIVE_ONEDNN: '' }), false);
      assert.equal(setting('tf32', {}), true);
      assert.equal(setting('tf32', { VGG_NATIVE_TF32: 'off' }), false);
      // VGG_NATIVE_ONEDNN also names a oneDNN folder for `vgg-native build`: a path is the default at run time.
      assert.equal(setting('onednn', { VGG_NATIVE_ONEDNN: '/opt/dnnl' }), true);
    });

    it('a value outside the grammar is refused with BAD_SETTING, naming the variable and the value', () => {
      assertBadSetting(() => setting('debug', { VGG_NATIVE_DEBUG: 'maybe' }), 'VGG_NATIVE_DEBUG', 'maybe');
      assertBadSetting(() => setting('offline', { VGG_NATIVE_OFFLINE: '2' }), 'VGG_NATIVE_OFFLINE', '2');
      assertBadSetting(() => setting('onednn', { VGG_NATIVE_ONEDNN: 'enabled' }), 'VGG_NATIVE_ONEDNN', 'enabled');
      assertBadSetting(() => setting('hostCacheMb', { VGG_NATIVE_HOST_CACHE_MB: '1.5' }), 'VGG_NATIVE_HOST_CACHE_MB', '1.5');
      assertBadSetting(() => setting('hostCacheMb', { VGG_NATIVE_HOST_CACHE_MB: '-1' }), 'VGG_NATIVE_HOST_CACHE_MB', '-1');
      assertBadSetting(() => setting('hostCacheMb', { VGG_NATIVE_HOST_CACHE_MB: '2097152' }), 'VGG_NATIVE_HOST_CACHE_MB', '2097152');
      assertBadSetting(() => setting('workerNice', { VGG_NATIVE_WORKER_NICE: '20' }), 'VGG_NATIVE_WORKER_NICE', '20');
      assertBadSetting(() => setting('gemv', { VGG_NATIVE_GEMV: 'avx512' }), 'VGG_NATIVE_GEMV', 'avx512');
      assertBadSetting(() => setting('convAlgo', { VGG_NATIVE_CONV_ALGO: 'fft' }), 'VGG_NATIVE_CONV_ALGO', 'fft');
      assertBadSetting(() => setting('distBackend', { VGG_NATIVE_DIST_BACKEND: 'mpi' }), 'VGG_NATIVE_DIST_BACKEND', 'mpi');
      assertBadSetting(() => readSettings({ VGG_NATIVE_TF32: 'nope' }), 'VGG_NATIVE_TF32', 'nope');
      assert.throws(() => setting('debug', { VGG_NATIVE_DEBUG: 'maybe' }), {
        message:
          "Expected one of 1, true, yes, on (true) or 0, false, no, off, '' (false) for environment variable VGG_NATIVE_DEBUG but received maybe",
      });
    });

    it('integers and choices: unset or empty is the default; GEMV takes the boolean words for off/auto', () => {
      assert.equal(setting('hostCacheMb', {}), 2048);
      assert.equal(setting('hostCacheMb', { VGG_NATIVE_HOST_CACHE_MB: '' }), 2048);
      assert.equal(setting('hostCacheMb', { VGG_NATIVE_HOST_CACHE_MB: '0' }), 0);
      assert.equal(setting('hostCacheMb', { VGG_NATIVE_HOST_CACHE_MB: ' 512 ' }), 512);
      assert.equal(setting('workerNice', {}), 10);
      assert.equal(setting('workerNice', { VGG_NATIVE_WORKER_NICE: '0' }), 0);
      assert.equal(setting('gemv', {}), 'auto');
      assert.equal(setting('gemv', { VGG_NATIVE_GEMV: '' }), 'auto');
      assert.equal(setting('gemv', { VGG_NATIVE_GEMV: '0' }), 'off');
      assert.equal(setting('gemv', { VGG_NATIVE_GEMV: 'AVX2' }), 'avx2');
      assert.equal(setting('gemv', { VGG_NATIVE_GEMV: '1' }), 'auto');
      assert.equal(setting('convAlgo', { VGG_NATIVE_CONV_ALGO: 'winograd' }), 'winograd');
      assert.equal(setting('distBackend', {}), 'auto');
      assert.equal(setting('home', { VGG_NATIVE_HOME: '/opt/models' }), '/opt/models');
      assert.equal(setting('mirror', { VGG_NATIVE_MIRROR: '' }), null);
    });

    it('every setting at its default in an empty environment', () => {
      assert.deepEqual(readSettings({}), {
        addon: null,
        debug: false,
        home: null,
        mirror: null,
        registry: null,
        offline: false,
        onednn: true,
        tf32: true,
        hostCacheMb: 2048,
        workerNice: 10,
        gemv: 'auto',
        convAlgo: 'auto',
        distBackend: 'auto',
      });
    });

    it('the torchrun variables: read in settings, handed to fineTune; a bad one is BAD_SETTING', () => {
      assert.equal(torchrunSettings({}), undefined);
      assert.equal(torchrunSettings({ WORLD_SIZE: '1', RANK: '0' }), undefined);
      assert.deepEqual(torchrunSettings({ WORLD_SIZE: '3', RANK: '2', MASTER_ADDR: '10.1.2.3', MASTER_PORT: '1234' }), {
        worldSize: 3,
        rank: 2,
        localRank: 2,
        masterAddr: '10.1.2.3',
        masterPort: 1234,
      });
      assertBadSetting(() => torchrunSettings({ WORLD_SIZE: '2' }), 'RANK', '');
      assertBadSetting(() => torchrunSettings({ WORLD_SIZE: '2', RANK: '0', LOCAL_RANK: 'x' }), 'LOCAL_RANK', 'x');
    });
  });

  describe('the distributed backend option', () => {
    it("distributed.backend: 'nccl' or 'gloo' travels with the config; 'auto' (the default) leaves it out; the env sets the default", () => {
      assert.deepEqual(resolveDistributed({ rank: 0, worldSize: 2, backend: 'gloo' }, {}), {
        rank: 0,
        worldSize: 2,
        localRank: 0,
        masterAddr: '127.0.0.1',
        masterPort: 29500,
        timeoutMs: 300000,
        backend: 'gloo',
      });
      assert.equal(resolveDistributed({ rank: 0, worldSize: 2, backend: 'auto' }, { VGG_NATIVE_DIST_BACKEND: 'gloo' })!.backend, undefined);
      assert.equal(resolveDistributed({ rank: 0, worldSize: 2 }, { VGG_NATIVE_DIST_BACKEND: 'nccl' })!.backend, 'nccl');
      assert.equal(resolveDistributed(true, { WORLD_SIZE: '2', RANK: '1', VGG_NATIVE_DIST_BACKEND: 'gloo' })!.backend, 'gloo');
      assert.throws(() => resolveDistributed({ rank: 0, worldSize: 2, backend: 'mpi' }, {}), {
        code: 'ERR_OUT_OF_RANGE',
        message: /options\.distributed\.backend/,
      });
    });

    it('native setDistributed takes the backend: gloo joins, an unknown one is refused, nccl is refused without NCCL or on the CPU', async function () {
      const binding = loadBinding();
      if (!binding.runtime().distributed) this.skip();
      const port = await new Promise<number>((resolve) => {
        const srv = net.createServer().listen(0, '127.0.0.1', () => {
          const p = (srv.address() as net.AddressInfo).port;
          srv.close(() => resolve(p));
        });
      });
      const config = {
        depth: 11 as const,
        batchNorm: false,
        numClasses: 2,
        outIndices: [5],
        frozenStages: -1,
        normEval: false,
        ceilMode: false,
        withLastPool: true,
        dilations: [1, 1, 1, 1, 1],
        device: 'cpu',
        dropout: 0,
        initWeights: false,
      };
      const join = (backend: string) => ({ masterAddr: '127.0.0.1', masterPort: port, rank: 0, worldSize: 1, timeoutMs: 10000, backend }) as never;
      const refused = await binding.Model.create(config);
      try {
        await assert.rejects(refused.setDistributed(join('mpi')), /Expected 'auto', 'nccl' or 'gloo' for the distributed backend but received 'mpi'/);
        // This model is on the CPU: with NCCL in the build it fails at the first collective, without it before the rendezvous.
        await assert.rejects(
          refused.setDistributed(join('nccl')),
          /distributed backend 'nccl' needs (a LibTorch with NCCL|the model on a CUDA device)/,
        );
      } finally {
        refused.dispose();
      }
      const joined = await binding.Model.create(config);
      try {
        await joined.setDistributed(join('gloo'));
      } finally {
        joined.dispose();
      }
    });
  });

  describe('runtime knobs', () => {
    it('hostCache({ limitMb }) sets the cap and reports it; hostCache() only reports; bad values are argument errors', () => {
      const before = hostCache().limitMb;
      try {
        const set = hostCache({ limitMb: 256 });
        assert.equal(set.limitMb, 256);
        assert.equal(hostCache().limitMb, 256);
        assert.equal(runtime().hostCache.limitBytes, 268435456); // 256 * 2^20
        assert.equal(runtime().settings.hostCacheMb, 256);
        const off = hostCache({ limitMb: 0 });
        assert.equal(off.limitMb, 0);
        assert.equal(off.cachedBytes, 0); // 0 frees what it holds
        assert.throws(() => hostCache({ limitMb: -1 }), { code: 'ERR_OUT_OF_RANGE' });
        assert.throws(() => hostCache({ limitMb: 1.5 }), { code: 'ERR_OUT_OF_RANGE' });
        assert.throws(() => hostCache({ limitMb: '64' as never }), { code: 'ERR_INVALID_ARG_TYPE' });
        assert.throws(() => hostCache({ limit: 64 } as never), { code: 'ERR_OUT_OF_RANGE', message: /only the keys limitMb/ });
      } finally {
        hostCache({ limitMb: before });
      }
    });

    it('hostCache under its cap keeps the blocks of the workload running now: the oldest parked blocks are evicted', async function () {
      // Two forwards of different shapes whose working sets fit the cap alone but not together:
      // after the switch the cache must hold the new shape's blocks, so its repeats fault in nothing new.
      this.timeout(120_000);
      const before = hostCache().limitMb;
      const model = await vgg('vgg11', { seed: 0, numClasses: 10 });
      const input = (n: number, side: number) => ({ data: new Float32Array(n * 3 * side * side), shape: [n, 3, side, side] });
      const [a, b] = [input(4, 64), input(3, 80)];
      try {
        hostCache({ limitMb: 64 });
        for (let i = 0; i < 2; i++) await model.forward(a);
        const beforeSwitch = hostCache();
        await model.forward(b);
        const switched = hostCache();
        assert.ok(
          switched.evictions > beforeSwitch.evictions,
          'switching shapes evicted nothing: the two working sets are not over the cap together',
        );
        await model.forward(b);
        await model.forward(b);
        const repeated = hostCache();
        assert.equal(repeated.misses - switched.misses, 0, 'repeats of the new shape went to the system');
        assert.ok(repeated.hits > switched.hits);
        assert.ok(repeated.cachedBytes <= 64 * 2 ** 20);
        hostCache({ limitMb: 1 });
        assert.ok(hostCache().cachedBytes <= 2 ** 20, 'lowering the cap frees the oldest blocks at once');
      } finally {
        model.dispose();
        hostCache({ limitMb: before });
      }
    });

    it('threads(n) sets and reports the intra-op threads; threads() only reports', () => {
      const before = threads();
      try {
        assert.equal(threads(1), 1);
        assert.equal(threads(), 1);
        assert.equal(runtime().threads, 1);
        assert.throws(() => threads(0), { code: 'ERR_OUT_OF_RANGE' });
      } finally {
        threads(before);
      }
    });
  });

  describe('runtime() and native code', () => {
    it('runtime().settings reports the effective value of every setting (a child started with all of them set)', () => {
      const r = child(
        `const { runtime } = require(${JSON.stringify(SRC)}); const x = runtime(); console.log(JSON.stringify({ settings: x.settings, limitBytes: x.hostCache.limitBytes, gemvKernel: x.gemvKernel, onednn: x.onednn }));`,
        {
          VGG_NATIVE_DEBUG: 'no',
          VGG_NATIVE_HOME: '/tmp/vgg-settings-home',
          VGG_NATIVE_MIRROR: 'https://mirror.example.com/vgg',
          VGG_NATIVE_REGISTRY: '/tmp/registry.json',
          VGG_NATIVE_OFFLINE: 'yes',
          VGG_NATIVE_ONEDNN: '0',
          VGG_NATIVE_TF32: 'false',
          VGG_NATIVE_HOST_CACHE_MB: '64',
          VGG_NATIVE_WORKER_NICE: '5',
          VGG_NATIVE_GEMV: 'avx2',
          VGG_NATIVE_CONV_ALGO: 'direct',
          VGG_NATIVE_DIST_BACKEND: 'gloo',
          WORLD_SIZE: '4',
          RANK: '3',
          LOCAL_RANK: '1',
          MASTER_ADDR: '10.0.0.9',
          MASTER_PORT: '29411',
        },
      ) as {
        settings: Record<string, unknown>;
        limitBytes: number;
        gemvKernel: string;
        onednn: { enabled: boolean };
      };
      const { addon, ...settings } = r.settings;
      assert.equal(addon, process.env.VGG_NATIVE_ADDON ?? null);
      assert.deepEqual(settings, {
        debug: false,
        home: '/tmp/vgg-settings-home',
        mirror: 'https://mirror.example.com/vgg',
        registry: '/tmp/registry.json',
        offline: true,
        onednn: false,
        tf32: false,
        hostCacheMb: 64,
        workerNice: 5,
        gemv: 'avx2',
        convAlgo: 'direct',
        distBackend: 'gloo',
        torchrun: { worldSize: 4, rank: 3, localRank: 1, masterAddr: '10.0.0.9', masterPort: 29411 },
      });
      // What native code runs with follows: 64 MiB, AVX2 at most, no oneDNN engine.
      assert.equal(r.limitBytes, 67108864);
      assert.equal(r.gemvKernel, HAS_AVX2 ? 'avx2' : 'none');
      assert.equal(r.onednn.enabled, false);
    });

    it('a bad native setting fails the load with BAD_SETTING (nothing is loaded)', () => {
      const r = child(
        `const { runtime } = require(${JSON.stringify(SRC)}); try { runtime(); console.log('{}'); } catch (e) { console.log(JSON.stringify({ code: e.code, variable: e.variable, name: e.name })); }`,
        { VGG_NATIVE_GEMV: 'fastest' },
      );
      assert.deepEqual(r, { code: 'BAD_SETTING', variable: 'VGG_NATIVE_GEMV', name: 'SettingsError' });
    });

    it('native code reads no environment: the raw addon ignores VGG_NATIVE_*, and only configure() changes it', () => {
      const file = runtime().addon.path;
      const r = child(
        `const b = require(${JSON.stringify(file)});
         const pick = (x) => ({ gemvKernel: x.gemvKernel, limitBytes: x.hostCache.limitBytes, enabled: x.onednn.enabled, built: x.onednn.built, settings: x.settings });
         const before = pick(b.runtime());
         const applied = b.configure({ onednn: false, tf32: true, hostCacheMb: 3, workerNice: 0, gemv: 'off', convAlgo: 'winograd' });
         const after = pick(b.runtime());
         const again = b.configure({ onednn: true, tf32: true, hostCacheMb: 7, workerNice: 1, gemv: 'auto', convAlgo: 'auto' });
         console.log(JSON.stringify({ before, applied, after, again }));`,
        {
          VGG_NATIVE_GEMV: 'off',
          VGG_NATIVE_HOST_CACHE_MB: '1',
          VGG_NATIVE_ONEDNN: '0',
          VGG_NATIVE_CONV_ALGO: 'direct',
          VGG_NATIVE_WORKER_NICE: '3',
        },
      ) as Record<string, { gemvKernel: string; limitBytes: number; enabled: boolean; built: boolean; settings: unknown }> & {
        applied: unknown;
        again: unknown;
      };
      const defaults = { onednn: true, tf32: true, hostCacheMb: 2048, workerNice: 10, gemv: 'auto', convAlgo: 'auto' };
      assert.deepEqual(r.before.settings, defaults, 'the environment did not reach native code');
      assert.equal(r.before.gemvKernel, BEST_GEMV);
      assert.equal(r.before.limitBytes, 2147483648); // 2048 * 2^20
      assert.equal(r.before.enabled, r.before.built);
      const configured = { onednn: false, tf32: true, hostCacheMb: 3, workerNice: 0, gemv: 'off', convAlgo: 'winograd' };
      assert.deepEqual(r.applied, configured);
      assert.deepEqual(r.after.settings, configured);
      assert.equal(r.after.gemvKernel, 'none');
      assert.equal(r.after.limitBytes, 3145728); // 3 * 2^20
      assert.equal(r.after.enabled, false);
      assert.deepEqual(r.again, configured, 'a second configure() changes nothing');
    });

    it('a changed process.env after the load changes nothing native: VGG_NATIVE_GEMV is read once, through settings', () => {
      const r = child(
        `const { runtime } = require(${JSON.stringify(SRC)});
         const first = runtime().gemvKernel;
         process.env.VGG_NATIVE_GEMV = 'off';
         const x = runtime();
         console.log(JSON.stringify({ first, later: x.gemvKernel, setting: x.settings.gemv }));`,
        { VGG_NATIVE_GEMV: 'avx2' },
      );
      const expected = HAS_AVX2 ? 'avx2' : 'none';
      assert.deepEqual(r, { first: expected, later: expected, setting: 'avx2' });
    });

    it('no file of src/ or native/ but src/settings.ts reads the environment', () => {
      const offenders: string[] = [];
      const walk = (dir: string): void => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          const p = path.join(dir, e.name);
          if (e.isDirectory()) walk(p);
          else if (/\.(ts|cc|h)$/.test(e.name) && p !== path.join(SRC, 'settings.ts')) {
            fs.readFileSync(p, 'utf8')
              .split('\n')
              .forEach((line, i) => {
                const code = line.trim();
                if (code.startsWith('//') || code.startsWith('*') || code.startsWith('/*')) return;
                if (/process\.env\b|getenv\s*\(|secure_getenv|environ\b/.test(code)) offenders.push(`${path.relative(ROOT, p)}:${i + 1}: ${code}`);
              });
          }
        }
      };
      walk(SRC);
      walk(path.join(ROOT, 'native'));
      assert.deepEqual(offenders, []);
    });
  });

  describe('the CLI and the README', () => {
    it('VGG_NATIVE_DEBUG=0 is off (no stack), =1 is on, a bad value fails the command with BAD_SETTING', () => {
      const missing = path.join(ROOT, 'no-such-weights.pth');
      const off = cliRun({ VGG_NATIVE_DEBUG: '0' }, 'info', missing);
      assert.equal(off.status, 1);
      assert.match(off.stderr, /^vgg-native: .*no-such-weights\.pth.*\n$/);
      const on = cliRun({ VGG_NATIVE_DEBUG: '1' }, 'info', missing);
      assert.equal(on.status, 1);
      assert.match(on.stderr, /\n\s+at /);
      const bad = cliRun({ VGG_NATIVE_DEBUG: 'sometimes' }, 'weights');
      assert.equal(bad.status, 1);
      assert.equal(
        bad.stderr,
        `vgg-native: Expected one of 1, true, yes, on (true) or 0, false, no, off, '' (false) for environment variable VGG_NATIVE_DEBUG but received sometimes\n`,
      );
    });

    it("README's Environment table lists every variable the package reads", () => {
      const ours = [
        'VGG_NATIVE_ADDON',
        'VGG_NATIVE_DEBUG',
        'VGG_NATIVE_HOME',
        'VGG_NATIVE_MIRROR',
        'VGG_NATIVE_REGISTRY',
        'VGG_NATIVE_OFFLINE',
        'VGG_NATIVE_ONEDNN',
        'VGG_NATIVE_TF32',
        'VGG_NATIVE_HOST_CACHE_MB',
        'VGG_NATIVE_WORKER_NICE',
        'VGG_NATIVE_GEMV',
        'VGG_NATIVE_CONV_ALGO',
        'VGG_NATIVE_DIST_BACKEND',
      ];
      assert.deepEqual(Object.values(SETTING_VARIABLES).sort(), [...ours].sort());
      const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
      const section = readme.split(/^## Environment$/m)[1]?.split(/^## /m)[0] ?? '';
      const rows = new Set([...section.matchAll(/^\| `([A-Z0-9_]+)`/gm)].map((m) => m[1]));
      for (const name of [...ours, 'WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'HTTPS_PROXY', 'NO_PROXY', 'XDG_CACHE_HOME'])
        assert.ok(rows.has(name), `README "Environment" has no row for ${name}`);
    });
  });
});
