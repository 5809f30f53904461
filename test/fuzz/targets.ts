// The fuzz targets: one function per kind of untrusted input the package
// reads, each taking raw bytes and going the whole way a user's call goes
// (container, pickle VM, tensor bounds and values, layout; ONNX archive,
// protobuf, graph walk; image decode and preprocessing). Shared by the fuzz
// loop (test/fuzz/worker.ts) and the regression replay
// (test/fuzz-regressions.test.ts), so both judge an input the same way.
//
// The oracle: a target either returns or throws an error carrying one of the
// package's codes (errorCode() defined). Anything else — a plain Error, a
// crash, a hang, an allocation far beyond the input's size — is a finding.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errorCode } from '../../src/errors';
import { PEAK_BOUND_BYTES } from '../../src/image/limits';
import { preprocess } from '../../src/image/preprocess';
import { interpretCheckpoint } from '../../src/weights/layout';
import { readOnnx } from '../../src/weights/onnx';
import { unpickle } from '../../src/weights/pickle';
import { materialize, readPth, TensorRef } from '../../src/weights/pth';
import { readSafetensors } from '../../src/weights/safetensors';

export type TargetName = 'pth' | 'pickle' | 'onnx' | 'model' | 'image' | 'safetensors';
export const TARGETS: readonly TargetName[] = ['pth', 'pickle', 'onnx', 'model', 'image', 'safetensors'];

/** Most bytes a target may add to the process's peak RSS per input byte, above a fixed allowance. */
export const ALLOC_MULTIPLE = 64;
/** The fixed allowance (libvips, protobuf and V8 warm-up buffers). */
export const ALLOC_BASE_BYTES = 96 * 1024 * 1024;
/**
 * Most bytes one input may add to peak RSS: ALLOC_BASE_BYTES + ALLOC_MULTIPLE
 * per input byte for the readers; for images, whose declared size is the
 * attack, the pipeline's own stated bound (src/image/limits.ts) whatever the file's size.
 */
export function allocBound(target: TargetName, inputBytes: number): number {
  return target === 'image' ? PEAK_BOUND_BYTES : ALLOC_BASE_BYTES + ALLOC_MULTIPLE * inputBytes;
}
/** An input running longer than this (wall clock) is a hang candidate; it is re-run alone to confirm. */
export const HANG_MS = 2000;

/** What one input did: 'ok', or the code of the error it was refused with. */
export interface Outcome {
  result: 'ok' | 'refused';
  code?: string;
  message?: string;
}

/** An input the oracle rejects: an error without a code (or a non-error thrown). */
export class Finding extends Error {
  constructor(
    readonly target: TargetName,
    readonly thrown: unknown,
  ) {
    super(`${target}: uncoded ${thrown instanceof Error ? `${thrown.name}: ${thrown.message}\n${thrown.stack}` : String(thrown)}`);
  }
}

let scratch: string | undefined;
/** One temp folder per process for the file-based readers; removed at exit. */
function scratchDir(): string {
  if (!scratch) {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vgg-fuzz-'));
    const dir = scratch;
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return scratch;
}
let serial = 0;

async function withFile<T>(bytes: Buffer, ext: string, fn: (file: string) => Promise<T>): Promise<T> {
  const file = path.join(scratchDir(), `in-${serial++}${ext}`);
  fs.writeFileSync(file, bytes);
  try {
    return await fn(file);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

async function runPth(bytes: Buffer): Promise<void> {
  await withFile(bytes, '.pth', async (file) => {
    const { object } = await readPth(file);
    const todo: unknown[] = [object];
    let seen = 0;
    while (todo.length && seen++ < 100_000) {
      const v = todo.pop();
      if (v instanceof TensorRef) await materialize(v);
      else if (v instanceof Map) todo.push(...v.values());
      else if (Array.isArray(v)) todo.push(...v);
    }
    interpretCheckpoint<TensorRef>(object, file);
  });
}

function runPickle(bytes: Buffer): void {
  unpickle(bytes, 0, {
    file: '<fuzz>',
    persistentLoad: (pid) => pid,
    makeTensor: (args) => args,
    maxObjects: 1_000_000,
  });
}

async function runOnnx(bytes: Buffer, ext: string): Promise<void> {
  await readOnnx(bytes);
  // The path form too: it also looks for external data beside the file.
  await withFile(bytes, ext, (file) => readOnnx(file));
}

/** The header, then every tensor's bytes: a declared size must be checked against the file before anything is allocated by it. */
async function runSafetensors(bytes: Buffer): Promise<void> {
  await withFile(bytes, '.safetensors', async (file) => {
    const { tensors } = await readSafetensors(file);
    for (const t of tensors.values()) await materialize(t);
  });
}

async function runImage(bytes: Buffer): Promise<void> {
  // The default pipeline and limits, as a user's classify() runs them: the declared size is what is fuzzed.
  await preprocess(bytes);
}

/** Runs one input through a target and says what happened; throws a Finding when the oracle rejects it. */
export async function runTarget(target: TargetName, bytes: Buffer): Promise<Outcome> {
  try {
    switch (target) {
      case 'pth':
        await runPth(bytes);
        break;
      case 'pickle':
        runPickle(bytes);
        break;
      case 'onnx':
        await runOnnx(bytes, '.onnx');
        break;
      case 'model':
        await runOnnx(bytes, '.model');
        break;
      case 'image':
        await runImage(bytes);
        break;
      case 'safetensors':
        await runSafetensors(bytes);
        break;
    }
    return { result: 'ok' };
  } catch (e) {
    const code = errorCode(e);
    if (code === undefined) throw new Finding(target, e);
    return { result: 'refused', code, message: (e as Error).message };
  }
}

/** Every file under `dir/<target>/` as [target, file] pairs (missing folders are empty). */
export function corpusFiles(dir: string): Array<[TargetName, string]> {
  const out: Array<[TargetName, string]> = [];
  for (const t of TARGETS) {
    const d = path.join(dir, t);
    if (!fs.existsSync(d)) continue;
    for (const n of fs.readdirSync(d).sort()) if (!n.startsWith('.')) out.push([t, path.join(d, n)]);
  }
  return out;
}

export const CORPUS_DIR = path.join(__dirname, 'corpus');
