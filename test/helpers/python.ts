// Runs the test oracles (Debian's PyTorch, torchvision, onnx, PIL) with the
// system interpreter: the `python3` on PATH is another one without them.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { relError as sharedRelError } from '../../scripts/rel-error';

const run = promisify(execFile);
export const PYTHON = process.env.VGG_TEST_PYTHON ?? '/usr/bin/python3';

/** Runs a Python script file with arguments; resolves with stdout. */
export async function python(script: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { stdout } = await run(PYTHON, [script, ...args], {
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, OMP_NUM_THREADS: String(os.cpus().length), ...env },
  });
  return stdout;
}

/** Runs inline Python code; resolves with stdout. */
export async function pythonCode(code: string, args: string[] = []): Promise<string> {
  return python('-c', [code, ...args]);
}

/** A fresh temp folder, removed by the returned cleanup function. */
export function tempDir(prefix = 'vgg-native-test-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Reads a raw little-endian float32 file written by numpy's tofile(). */
export function readF32(file: string): Float32Array {
  const buf = fs.readFileSync(file);
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
}

/** Largest |a-b| / max |b|: relative error against the reference's scale (scripts/rel-error.js, as the bench quotes it). */
export function relError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  return sharedRelError(a, b);
}
