// `vgg-native launch` and the process group's faults: the launcher sets
// torchrun's environment, stops the others when a rank fails and restarts
// the group; a rank that is missing, late, mismatched or lost is named in a
// coded error within the timeout; and two ranks in two network namespaces
// joined by a veth pair (two "hosts" over TCP) end where one process with
// the global batch ends, also after one of them is killed and the launcher
// restarts the group from the checkpoint.
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { loadDataset } from '../src/data/dataset';
import { launch } from '../src/launch/launch';
import { runtime } from '../src/runtime';
import { python, readF32, tempDir } from './helpers/python';
import { freePort } from './helpers/net';

const ROOT = path.join(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures');
const SCRIPT = path.join(FIXTURES, 'launch_script.js');
const WORKER = path.join(FIXTURES, 'launch_worker.ts');
const CLI = path.join(ROOT, 'src', 'cli.ts');
/** "Fails within the timeout" on a loaded 2-core machine: the timeout plus this. */
const SLACK_MS = 30_000;
/** The one-host data-parallel test's tolerance (test/distributed.test.ts): max |Δw| against one process. */
const TOLERANCE = 1e-4;
const RANK_VARIABLES = ['WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'LOCAL_WORLD_SIZE', 'GROUP_RANK'];

/** This process's environment without rank variables (an inherited WORLD_SIZE would change the run), children loading tsx. */
function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '--require tsx/cjs' };
  for (const k of RANK_VARIABLES) delete env[k];
  return { ...env, ...extra };
}

/** A child process whose output lines are kept, each with the time it arrived. */
class Proc {
  readonly lines: { at: number; stream: 'out' | 'err'; text: string }[] = [];
  readonly done: Promise<number | null>;
  readonly #waiters: { test: (l: string) => boolean; resolve: (at: number) => void }[] = [];

  constructor(command: string, args: string[], env: NodeJS.ProcessEnv) {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const take = (stream: 'out' | 'err') => {
      let rest = '';
      return (d: Buffer) => {
        const parts = (rest + d.toString()).split('\n');
        rest = parts.pop() ?? '';
        for (const text of parts) this.#line(stream, text);
      };
    };
    child.stdout.on('data', take('out'));
    child.stderr.on('data', take('err'));
    this.done = new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code));
    });
  }

  #line(stream: 'out' | 'err', text: string): void {
    const at = Date.now();
    this.lines.push({ at, stream, text });
    for (const w of [...this.#waiters])
      if (w.test(text)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(at);
      }
  }

  /** When a line matching `re` arrived after `since` (ms since the epoch), now or later; rejects when the process ends without one. */
  waitFor(re: RegExp, since = 0): Promise<number> {
    const seen = this.lines.find((l) => l.at > since && re.test(l.text));
    if (seen) return Promise.resolve(seen.at);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ test: (l) => Date.now() > since && re.test(l), resolve });
      this.done.then(() => reject(new Error(`exited without a line matching ${re}:\n${this.text()}`)));
    });
  }

  text(stream?: 'out' | 'err'): string {
    return this.lines
      .filter((l) => !stream || l.stream === stream)
      .map((l) => l.text)
      .join('\n');
  }
}

function worker(config: unknown, env: Record<string, string>): Proc {
  return new Proc(process.execPath, [WORKER, JSON.stringify(config)], baseEnv(env));
}

function rankEnv(rank: number, worldSize: number, port: number): Record<string, string> {
  return { WORLD_SIZE: String(worldSize), RANK: String(rank), LOCAL_RANK: String(rank), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) };
}

/** A Writable that keeps what it was given. */
function sink(): PassThrough & { text: () => string } {
  const chunks: string[] = [];
  const s = new PassThrough();
  s.on('data', (d: Buffer) => chunks.push(d.toString()));
  return Object.assign(s, { text: () => chunks.join('') });
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Two network namespaces with a veth pair between them, 10.213.0.1 and
 * 10.213.0.2/24: two "hosts" on one kernel. `ip netns exec` mounts
 * /etc/netns/<name>/hosts over /etc/hosts, so this machine's hostname
 * resolves to the namespace's own address there, which is the address Gloo
 * picks (it binds to what the hostname resolves to).
 */
class Namespaces {
  readonly names = [`vggn${process.pid}a`, `vggn${process.pid}b`];
  readonly addresses = ['10.213.0.1', '10.213.0.2'];
  readonly #veth = [`vgn${process.pid}a`, `vgn${process.pid}b`];

  /** Undefined when made, else why not. */
  create(): string | undefined {
    if (process.getuid?.() !== 0) return 'not root';
    if (spawnSync('ip', ['-V']).status !== 0) return 'iproute2 (ip) is not installed';
    const steps: string[][] = [
      ['netns', 'add', this.names[0]],
      ['netns', 'add', this.names[1]],
      ['link', 'add', this.#veth[0], 'type', 'veth', 'peer', 'name', this.#veth[1]],
    ];
    for (const i of [0, 1]) {
      steps.push(
        ['link', 'set', this.#veth[i], 'netns', this.names[i]],
        ['-n', this.names[i], 'addr', 'add', `${this.addresses[i]}/24`, 'dev', this.#veth[i]],
        ['-n', this.names[i], 'link', 'set', this.#veth[i], 'up'],
        ['-n', this.names[i], 'link', 'set', 'lo', 'up'],
      );
    }
    for (const args of steps) {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      if (r.status !== 0) return `ip ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`;
    }
    for (const i of [0, 1]) {
      const dir = path.join('/etc/netns', this.names[i]);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'hosts'), `127.0.0.1 localhost\n${this.addresses[i]} ${os.hostname()}\n`);
    }
    return undefined;
  }

  /** Deleting a namespace deletes its end of the veth, and so the pair. */
  cleanup(): void {
    for (const name of this.names) {
      spawnSync('ip', ['netns', 'del', name]);
      fs.rmSync(path.join('/etc/netns', name), { recursive: true, force: true });
    }
    spawnSync('ip', ['link', 'del', this.#veth[0]]); // when creating failed before the move
  }
}

describe('vgg-native launch', function () {
  describe('the launcher (no LibTorch)', function () {
    it("gives each local rank torchrun's environment and prefixes its lines", async function () {
      const stdout = sink();
      const stderr = sink();
      const r = await launch(
        {
          command: [process.execPath, SCRIPT, 'env'],
          nprocPerNode: 2,
          nnodes: 3,
          nodeRank: 1,
          masterAddr: '10.0.0.9',
          masterPort: 1234,
          env: baseEnv(),
        },
        { stdout, stderr },
      );
      assert.deepEqual(r, { restarts: 0 });
      const lines = stdout.text().trim().split('\n').sort();
      const rank = (n: number, local: number) =>
        `[rank${n}]: ${JSON.stringify({ MASTER_ADDR: '10.0.0.9', MASTER_PORT: '1234', WORLD_SIZE: '6', RANK: String(n), LOCAL_RANK: String(local), LOCAL_WORLD_SIZE: '2', GROUP_RANK: '1', TORCHELASTIC_RESTART_COUNT: '0' })}`;
      assert.deepEqual(lines, [rank(2, 0), rank(3, 1)]);
    });

    it('stops the other ranks when one fails; the CLI exits 1 with the first failure', async function () {
      const started = Date.now();
      const p = new Proc(process.execPath, [CLI, 'launch', '--nproc-per-node', '2', SCRIPT, 'fail-rank1'], baseEnv());
      assert.equal(await p.done, 1, p.text());
      assert.match(p.text('err'), /^vgg-native: rank 1 \(local rank 1\) exited with code 3: boom from rank 1; the other ranks were stopped$/m);
      assert.match(p.text('out'), /^\[rank0\]: rank 0 stopping on SIGTERM$/m);
      assert.doesNotMatch(p.text('out'), /never stopped/);
      assert.ok(Date.now() - started < SLACK_MS, 'rank 0 (which waits a minute) was stopped');
    });

    it('restarts the group up to maxRestarts, else fails with RANK_FAILED', async function () {
      const out = { stdout: sink(), stderr: sink() };
      const command = [process.execPath, SCRIPT, 'flaky'];
      assert.deepEqual(await launch({ command, nprocPerNode: 2, maxRestarts: 1, env: baseEnv() }, out), { restarts: 1 });
      assert.match(
        out.stderr.text(),
        /vgg-native launch: rank 1 \(local rank 1\) exited with code 1: flaky failure; restarting the group \(1 of 1\)/,
      );
      await assert.rejects(launch({ command, nprocPerNode: 2, env: baseEnv() }, { stdout: sink(), stderr: sink() }), {
        code: 'RANK_FAILED',
        message: 'rank 1 (local rank 1) exited with code 1: flaky failure; the other ranks were stopped',
      });
    });

    it('refuses bad options naming them', async function () {
      await assert.rejects(launch({ command: ['x'], nnodes: 2, nodeRank: 2 }), {
        code: 'ERR_OUT_OF_RANGE',
        message: /options\.nodeRank/,
      });
      await assert.rejects(launch({ command: [] }), { code: 'ERR_OUT_OF_RANGE', message: /options\.command/ });
      const p = new Proc(process.execPath, [CLI, 'launch', '--nnodes', '2', '--node-rank', '2', SCRIPT], baseEnv());
      assert.equal(await p.done, 2);
      assert.match(p.text('err'), /--node-rank must be below --nnodes \(2\), got 2/);
    });
  });

  describe('process group faults (Gloo)', function () {
    let tmp: { dir: string; cleanup: () => void };
    let train: { path: string; label: string }[];
    before(async function () {
      if (!runtime().distributed) {
        this.test!.parent!.title += ' (SKIPPED: this LibTorch build has no c10d/Gloo)';
        this.skip();
      }
      tmp = tempDir('vgg-native-launch-');
      const digitsDir = path.join(tmp.dir, 'digits');
      await python(path.join(FIXTURES, 'make_digits.py'), [digitsDir, '32']);
      const digits = await loadDataset(digitsDir);
      train = Array.from({ length: 128 }, (_, i) => digits.items[(i * 13) % digits.items.length]).map((it) => ({
        path: it.path,
        label: digits.classes[it.label],
      }));
    });
    after(() => tmp?.cleanup());

    /** vgg11 at 32x32 without dropout or batch norm (as the one-host test), `steps` steps of 16 images. */
    const config = (out: string, steps: number, extra: Record<string, unknown> = {}, arch = 'vgg11') => ({
      arch,
      seed: 2,
      dropout: 0,
      threads: 1,
      out,
      timeoutMs: 10_000,
      ...extra,
      fineTune: {
        train: train.slice(0, steps * 16),
        epochs: 1,
        batchSize: 16,
        imageSize: 32,
        valFraction: 0,
        seed: 4,
        lr: 0.01,
        optimizer: { type: 'sgd', momentum: 0.9, weightDecay: 1e-4 },
        ...((extra.fineTune as object) ?? {}),
      },
    });

    it('a rank that never joins: rank 0 fails with RENDEZVOUS_TIMEOUT naming rank 1 within the timeout', async function () {
      const port = await freePort();
      const started = Date.now();
      const r0 = worker(config(path.join(tmp.dir, 'x{rank}.f32'), 1, { timeoutMs: 3000 }), rankEnv(0, 2, port));
      assert.equal(await r0.done, 1);
      assert.match(r0.text('err'), /^ERROR RENDEZVOUS_TIMEOUT rank 1 of 2 did not join the process group at 127\.0\.0\.1:\d+ within 3000 ms/m);
      assert.ok(Date.now() - started < 3000 + SLACK_MS);
    });

    it('a rank that joins late within the timeout is waited for', async function () {
      const port = await freePort();
      const cfg = config(path.join(tmp.dir, 'late{rank}.f32'), 1, { timeoutMs: 60_000 });
      const r0 = worker(cfg, rankEnv(0, 2, port));
      await r0.waitFor(/^PID /);
      await new Promise((resolve) => setTimeout(resolve, 4000));
      const r1 = worker(cfg, rankEnv(1, 2, port));
      assert.deepEqual(await Promise.all([r0.done, r1.done]), [0, 0], `${r0.text('err')}\n${r1.text('err')}`);
      assert.equal(maxAbsDiff(readF32(path.join(tmp.dir, 'late0.f32')), readF32(path.join(tmp.dir, 'late1.f32'))), 0);
    });

    it('ranks started with different world sizes are refused with RENDEZVOUS_MISMATCH', async function () {
      const port = await freePort();
      const cfg = config(path.join(tmp.dir, 'ws{rank}.f32'), 1);
      const r0 = worker(cfg, rankEnv(0, 2, port));
      const r1 = worker(cfg, rankEnv(1, 4, port)); // 4 divides the batch of 16, so only the rendezvous can refuse it
      assert.deepEqual(await Promise.all([r0.done, r1.done]), [1, 1]);
      for (const r of [r0, r1]) assert.match(r.text('err'), /^ERROR RENDEZVOUS_MISMATCH rank 1 differs from rank 0: WORLD_SIZE 2 on rank 0, 4 here/m);
    });

    it('ranks with models of different shapes are refused with RENDEZVOUS_MISMATCH', async function () {
      const port = await freePort();
      const r0 = worker(config(path.join(tmp.dir, 'sh{rank}.f32'), 1), rankEnv(0, 2, port));
      const r1 = worker(config(path.join(tmp.dir, 'sh{rank}.f32'), 1, {}, 'vgg13'), rankEnv(1, 2, port));
      assert.deepEqual(await Promise.all([r0.done, r1.done]), [1, 1]);
      for (const r of [r0, r1])
        assert.match(r.text('err'), /^ERROR RENDEZVOUS_MISMATCH rank 1 differs from rank 0: the model has \d+ tensors on rank 0, \d+ here/m);
    });

    describe('two hosts: network namespaces joined by a veth pair', function () {
      const hosts = new Namespaces();
      before(function () {
        const refused = hosts.create();
        if (refused) {
          console.log(`      (skipped: cannot make network namespaces here: ${refused})`);
          this.test!.parent!.title += ` (SKIPPED: ${refused})`;
          this.skip();
        }
      });
      after(() => hosts.cleanup());

      const STEPS = 8;
      let oracle: Float32Array;

      /** The launcher of node `node` (0 or 1) in its namespace. */
      const launcher = (node: number, cfg: unknown, maxRestarts: number) =>
        new Proc(
          'ip',
          [
            'netns',
            'exec',
            hosts.names[node],
            process.execPath,
            CLI,
            'launch',
            '--nnodes',
            '2',
            '--node-rank',
            String(node),
            '--master-addr',
            hosts.addresses[0],
            '--master-port',
            '29500',
            '--max-restarts',
            String(maxRestarts),
            WORKER,
            JSON.stringify(cfg),
          ],
          baseEnv(),
        );

      it(`2 ranks on 2 hosts over TCP × batch 8 end with the weights of 1 process × batch 16 after ${STEPS} steps within ${TOLERANCE}`, async function () {
        const single = worker(config(path.join(tmp.dir, 'single.f32'), STEPS), {});
        assert.equal(await single.done, 0, single.text('err'));
        oracle = readF32(path.join(tmp.dir, 'single.f32'));
        const cfg = config(path.join(tmp.dir, 'hosts{rank}.f32'), STEPS);
        const [a, b] = [launcher(0, cfg, 0), launcher(1, cfg, 0)];
        assert.deepEqual(await Promise.all([a.done, b.done]), [0, 0], `${a.text()}\n${b.text()}`);
        assert.equal(
          a
            .text('out')
            .split('\n')
            .filter((l) => /^\[rank0\]: STEP /.test(l)).length,
          STEPS,
        );
        const w0 = readF32(path.join(tmp.dir, 'hosts0.f32'));
        assert.equal(maxAbsDiff(w0, readF32(path.join(tmp.dir, 'hosts1.f32'))), 0, 'both ranks hold the same weights');
        const d = maxAbsDiff(w0, oracle);
        assert.ok(d <= TOLERANCE, `2 hosts vs 1 process: max |Δw| ${d}`);
      });

      it('a rank killed mid-epoch: the other fails with RANK_LOST naming it within the timeout, and the restarted group resumes to the same weights', async function () {
        if (!oracle) this.skip();
        const timeoutMs = 10_000;
        const checkpointDir = path.join(tmp.dir, 'ckpt');
        const cfg = config(path.join(tmp.dir, 'killed{rank}.f32'), STEPS, {
          timeoutMs,
          fineTune: { checkpointDir, checkpointEvery: 4, resume: true },
        });
        const [a, b] = [launcher(0, cfg, 1), launcher(1, cfg, 1)];
        // After rank 1's step 5, rank 0 has written the step-4 checkpoint (before step 5's allreduce).
        await b.waitFor(/^\[rank1\]: STEP 5$/);
        const pid = Number(/^\[rank1\]: PID (\d+)$/m.exec(b.text('out'))![1]);
        process.kill(pid, 'SIGKILL');
        const killedAt = Date.now();
        const failedAt = await a.waitFor(/^\[rank0\]: ERROR RANK_LOST rank 1 of 2 stopped answering/);
        const resumedAt = await a.waitFor(/^\[rank0\]: STEP 5$/, failedAt); // the first step after the restart (from the step-4 checkpoint)
        assert.deepEqual(await Promise.all([a.done, b.done]), [0, 0], `${a.text()}\n${b.text()}`);
        const toError = failedAt - killedAt;
        console.log(
          `      kill → rank 0's RANK_LOST: ${(toError / 1000).toFixed(1)} s; kill → resumed step 5: ${((resumedAt - killedAt) / 1000).toFixed(1)} s`,
        );
        assert.ok(toError < timeoutMs + SLACK_MS, `RANK_LOST after ${toError} ms`);
        assert.match(
          a.text('err'),
          /vgg-native launch: rank 0 \(local rank 0\) exited with code 1: ERROR RANK_LOST .*restarting the group \(1 of 1\)/,
        );
        assert.match(b.text('err'), /vgg-native launch: rank 1 \(local rank 0\) was killed by SIGKILL; restarting the group \(1 of 1\)/);
        const report = JSON.parse(/^\[rank0\]: REPORT (.*)$/m.exec(a.text('out'))![1]);
        assert.equal(report.resumedFrom.globalStep, 4);
        const w0 = readF32(path.join(tmp.dir, 'killed0.f32'));
        assert.equal(maxAbsDiff(w0, readF32(path.join(tmp.dir, 'killed1.f32'))), 0, 'both ranks hold the same weights');
        const d = maxAbsDiff(w0, oracle);
        assert.ok(d <= TOLERANCE, `killed, restarted and resumed vs 1 process: max |Δw| ${d}`);
      });
    });
  });
});
