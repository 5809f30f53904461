// Decodes an ONNX file in a worker thread: protobuf decoding and the tensor
// conversions of a 0.5 GB VGG take about a second of CPU, which must not
// stall the event loop. The tensors come back transferred, not copied.
import * as path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { OnnxFormatError, readOnnx, type OnnxErrorCode, type OnnxWeights } from './index';

interface Reply {
  ok: true;
  weights: OnnxWeights;
}
/** An error crossing the thread boundary: structured clone keeps no class, so its parts travel. */
interface Failure {
  ok: false;
  name: string;
  message: string;
  code?: string;
  node?: string;
}

/** The worker's error as the caller would have seen it from readOnnx. */
function revive(m: Failure): Error {
  if (m.name === 'OnnxFormatError') return new OnnxFormatError(m.code as OnnxErrorCode, m.message, m.node);
  // System errors (ENOENT, ...) keep their name and code, which callers branch on.
  return Object.assign(new Error(m.message), { name: m.name }, m.code !== undefined ? { code: m.code } : {});
}

/**
 * readOnnx in a worker thread.
 * @throws what readOnnx throws, and OnnxFormatError READER_EXITED when the
 * thread stops without an answer.
 */
export function readOnnxInWorker(file: string): Promise<OnnxWeights> {
  // Under ts tooling (tests) this file is .ts: let the worker load it the same way.
  const isTs = __filename.endsWith('.ts');
  const worker = new Worker(__filename, {
    workerData: { file },
    execArgv: isTs ? [...process.execArgv, '--require', 'tsx/cjs'] : process.execArgv,
  });
  return new Promise<OnnxWeights>((resolve, reject) => {
    worker.once('message', (m: Reply | Failure) => (m.ok ? resolve(m.weights) : reject(revive(m))));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new OnnxFormatError('READER_EXITED', `the ONNX reader thread for ${path.basename(file)} exited with code ${code}`));
    });
  });
}

/** The worker side: read, then post the weights (buffers transferred) or the error's parts. */
function serve(port: NonNullable<typeof parentPort>, file: string): void {
  readOnnx(file).then(
    (weights) => {
      const buffers = new Set<ArrayBuffer>();
      for (const t of weights.tensors) if (t.tensor.kind === 'array') buffers.add(t.tensor.data.buffer as ArrayBuffer);
      port.postMessage({ ok: true, weights } satisfies Reply, [...buffers]);
    },
    (e: Error & { code?: string; node?: string }) =>
      port.postMessage({ ok: false, name: e.name, message: e.message, code: e.code, node: e.node } satisfies Failure),
  );
}

if (!isMainThread && parentPort && (workerData as { file?: string })?.file) {
  serve(parentPort, (workerData as { file: string }).file);
}
