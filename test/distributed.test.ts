// Data-parallel fine-tuning: two processes joined by Gloo on 127.0.0.1 must
// end where one process with the same global batch ends (the oracle), and
// the torchrun environment must be read as torchrun writes it.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadDataset } from '../src/data/dataset';
import { runtime } from '../src/runtime';
import { distributedFromEnv, resolveDistributed } from '../src/train/distributed';
import { python, readF32, relError, tempDir } from './helpers/python';
import { freePort } from './helpers/net';

const FIXTURES = path.join(__dirname, 'fixtures');
const WORKER = path.join(FIXTURES, 'finetune_train_worker.ts');

function runWorker(config: unknown, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // Only the variables we set: a WORLD_SIZE inherited from the test's own environment would change the run.
    const base = { ...process.env };
    for (const k of ['WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT']) delete base[k];
    const child = spawn(process.execPath, ['-r', 'tsx/cjs', WORKER, JSON.stringify(config)], {
      cwd: path.join(__dirname, '..'),
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('distributed fine-tuning', function () {
  describe('rendezvous settings', function () {
    it('reads the torchrun environment', function () {
      assert.equal(distributedFromEnv({}), undefined);
      assert.equal(distributedFromEnv({ WORLD_SIZE: '1', RANK: '0' }), undefined);
      assert.deepEqual(distributedFromEnv({ WORLD_SIZE: '4', RANK: '3', LOCAL_RANK: '1', MASTER_ADDR: '10.0.0.2', MASTER_PORT: '29400' }), {
        rank: 3,
        worldSize: 4,
        localRank: 1,
        masterAddr: '10.0.0.2',
        masterPort: 29400,
        timeoutMs: 300000,
      });
      assert.deepEqual(distributedFromEnv({ WORLD_SIZE: '2', RANK: '1' }), {
        rank: 1,
        worldSize: 2,
        localRank: 1,
        masterAddr: '127.0.0.1',
        masterPort: 29500,
        timeoutMs: 300000,
      });
    });

    it('rejects inconsistent settings, naming the variable', function () {
      assert.throws(() => distributedFromEnv({ WORLD_SIZE: '2' }), /RANK/);
      assert.throws(
        () => distributedFromEnv({ WORLD_SIZE: '2', RANK: '2' }),
        /Expected an integer between 0 and 1 for environment variable RANK but received 2/,
      );
      assert.throws(() => distributedFromEnv({ WORLD_SIZE: 'two', RANK: '0' }), /environment variable WORLD_SIZE/);
      assert.throws(() => distributedFromEnv({ WORLD_SIZE: '2', RANK: '0', MASTER_PORT: '70000' }), /environment variable MASTER_PORT/);
      assert.throws(() => resolveDistributed(true, {}), /options\.distributed/);
      assert.equal(resolveDistributed(false, { WORLD_SIZE: '2', RANK: '0' }), undefined);
      assert.deepEqual(resolveDistributed({ rank: 1, worldSize: 2, masterPort: 1234 }, {}), {
        rank: 1,
        worldSize: 2,
        localRank: 1,
        masterAddr: '127.0.0.1',
        masterPort: 1234,
        timeoutMs: 300000,
      });
    });
  });

  describe('two processes with Gloo', function () {
    let tmp: { dir: string; cleanup: () => void };
    before(function () {
      if (!runtime().distributed) {
        // Visible in the report as pending, with the reason.
        this.test!.parent!.title += ' (SKIPPED: this LibTorch build has no c10d/Gloo)';
        this.skip();
      }
      tmp = tempDir('vgg-native-dist-');
    });
    after(() => tmp?.cleanup());

    it('2 ranks × batch 8 end with the weights of 1 process × batch 16 after 5 steps (vgg11, dropout 0) within 1e-4', async function () {
      const digitsDir = path.join(tmp.dir, 'digits');
      await python(path.join(FIXTURES, 'make_digits.py'), [digitsDir, '32']);
      const digits = await loadDataset(digitsDir);
      const train = Array.from({ length: 80 }, (_, i) => digits.items[i * 20]).map((it) => ({ path: it.path, label: digits.classes[it.label] }));
      // No batch norm (statistics are per shard) and no dropout (masks are per process); augmentation is per item, so it may stay.
      const config = (out: string) => ({
        arch: 'vgg11',
        seed: 2,
        dropout: 0,
        threads: 1,
        out,
        fineTune: {
          train,
          epochs: 1,
          batchSize: 16,
          imageSize: 32,
          valFraction: 0,
          seed: 4,
          lr: 0.01,
          optimizer: { type: 'sgd', momentum: 0.9, weightDecay: 1e-4 },
        },
      });
      const single = path.join(tmp.dir, 'single.f32');
      const port = await freePort();
      const env = (rank: number) => ({
        WORLD_SIZE: '2',
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
      });
      const [r0, r1] = await Promise.all([0, 1].map((rank) => runWorker(config(path.join(tmp.dir, 'rank{rank}.f32')), env(rank))));
      assert.equal(r0.code, 0, r0.stderr);
      assert.equal(r1.code, 0, r1.stderr);
      assert.equal(r0.stdout.split('\n').filter((l) => l.startsWith('STEP ')).length, 5);
      const s = await runWorker(config(single), {});
      assert.equal(s.code, 0, s.stderr);

      const w0 = readF32(path.join(tmp.dir, 'rank0.f32'));
      const w1 = readF32(path.join(tmp.dir, 'rank1.f32'));
      const w = readF32(single);
      assert.equal(relError(w1, w0), 0, 'both ranks hold the same weights');
      let maxAbs = 0;
      for (let i = 0; i < w.length; i++) maxAbs = Math.max(maxAbs, Math.abs(w0[i] - w[i]));
      assert.ok(maxAbs <= 1e-4, `2 ranks vs 1 process: max |Δw| ${maxAbs}`);
      // The 5 steps did move the weights (else the comparison would prove nothing).
      const init = path.join(tmp.dir, 'init.f32');
      const z = await runWorker({ ...config(init), fineTune: { ...config(init).fineTune, lr: 0 } }, {});
      assert.equal(z.code, 0, z.stderr);
      const w00 = readF32(init);
      let moved = 0;
      for (let i = 0; i < w.length; i++) moved = Math.max(moved, Math.abs(w00[i] - w[i]));
      assert.ok(moved > 100 * maxAbs && moved > 1e-4, `training moved weights by only ${moved}`);
      fs.rmSync(init);
    });
  });
});
