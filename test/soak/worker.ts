// A worker_threads worker (or a child process) for the soak: its own model,
// `calls` classify() calls, answers compared with lone calls. Posts the
// SoakResult (or, for mode 'exit-in-flight', exits with calls still running).
import { parentPort, workerData } from 'node:worker_threads';
import { runSoak, SOAK_PREPROCESS, soakInputs, soakModel } from './soak';

const data = (workerData ?? { mode: process.argv[2], calls: Number(process.argv[3] ?? 100) }) as { mode: string; calls: number };

(async () => {
  const model = await soakModel();
  if (data.mode === 'exit-in-flight') {
    const x = soakInputs(4);
    for (let i = 0; i < data.calls; i++) void model.classify(x[i % 4], { topK: 1, preprocess: SOAK_PREPROCESS }).catch(() => undefined);
    setImmediate(() => process.exit(0));
    return;
  }
  const r = await runSoak(model, { calls: data.calls, concurrency: 4, distinctInputs: 4 });
  model.dispose();
  parentPort?.postMessage(r);
})();
