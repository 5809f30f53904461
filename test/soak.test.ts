// The short soak in `npm test` (the long one is `npm run soak`): 1,000
// classify() calls from 16 concurrent callers on 32x32 inputs with VGG-11,
// each answer compared with a lone call's; dispose() with work queued;
// worker_threads each with its own model; a process exiting with calls in
// flight. No timing is asserted; RSS growth has a generous bound.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { errorCode } from '../src/errors';
import type { Vgg } from '../src';
import { soakLog } from './helpers/robustness-log';
import { runSoak, SOAK_PREPROCESS, type SoakResult, soakInputs, soakModel } from './soak/soak';

const WORKER = path.join(__dirname, 'soak', 'worker.ts');
/** RSS may grow this much between warm-up and the end (allocator caches settle; a leak of one input per call would be far more). */
const RSS_SLACK_MIB = 256;

function inWorker(calls: number): Promise<SoakResult> {
  return new Promise((resolve, reject) => {
    // An eval'd CommonJS entry that registers tsx, then loads the TypeScript worker.
    const code = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(WORKER)});`;
    const w = new Worker(code, { eval: true, workerData: { mode: 'soak', calls } });
    let result: SoakResult | undefined;
    w.on('message', (m) => {
      result = m;
    });
    w.on('error', reject);
    w.on('exit', (code) => (result && code === 0 ? resolve(result) : reject(new Error(`worker exited ${code} without a result`))));
  });
}

describe('soak', function () {
  let model: Vgg;
  before(async () => {
    model = await soakModel();
  });
  after(() => model?.dispose());

  it('1,000 calls from 16 concurrent callers: every answer matches a lone call, RSS flat', async () => {
    const r = await runSoak(model, { calls: 1000, concurrency: 16 });
    soakLog.soak = r;
    assert.equal(r.calls, 1000);
    assert.equal(r.errors, 0);
    assert.equal(r.wrong, 0);
    assert.ok(r.rssEndMiB - r.rssStartMiB < RSS_SLACK_MIB, `RSS ${r.rssStartMiB} → ${r.rssEndMiB} MiB`);
  });

  it('dispose() with 64 calls queued: each call resolves or rejects with DISPOSED, nothing hangs', async () => {
    const m = await soakModel();
    const x = soakInputs(4);
    const calls = Array.from({ length: 64 }, (_, i) => m.classify(x[i % 4], { topK: 1, preprocess: SOAK_PREPROCESS }));
    m.dispose();
    const settled = await Promise.allSettled(calls);
    const codes: Record<string, number> = {};
    for (const s of settled) {
      const k = s.status === 'fulfilled' ? 'ok' : String(errorCode(s.reason));
      codes[k] = (codes[k] ?? 0) + 1;
    }
    soakLog.disposed = codes;
    assert.deepEqual(
      Object.keys(codes).filter((k) => k !== 'ok' && k !== 'DISPOSED'),
      [],
      JSON.stringify(codes),
    );
    await assert.rejects(m.classify(x[0], { preprocess: SOAK_PREPROCESS }), (e: unknown) => errorCode(e) === 'DISPOSED');
  });

  it('two worker_threads, each with its own model, answer as lone calls do', async () => {
    const rs = await Promise.all([inWorker(100), inWorker(100)]);
    soakLog.workers = rs;
    for (const r of rs) {
      assert.equal(r.calls, 100);
      assert.equal(r.wrong, 0);
      assert.equal(r.errors, 0);
    }
  });

  it('a process exiting with 64 calls in flight exits cleanly (no crash, no hang)', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', WORKER, 'exit-in-flight', '64'], { encoding: 'utf8', timeout: 300000 });
    soakLog.exitCode = r.status;
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.status, 0, r.stderr);
  });
});
