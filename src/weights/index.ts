// One door for every weight file: detects the format by content, reads it
// with the right reader and returns canonical tensors (mmcls names without
// `backbone.`) plus the inferred architecture.
import * as fs from 'node:fs';
import type { ArchSpec } from '../arch';
import type { NamedTensorSource, TensorSource } from '../binding';
import { CheckpointError } from './errors';
import { checkAgainst, describeCheck, type StateCheck } from './layout';
import { interpretCheckpoint } from './layout';
import { readOnnxInWorker } from './onnx-thread';
import { readPth, type TensorRef } from './pth-reader';

export { CheckpointError } from './errors';
export { OnnxFormatError } from './onnx';

export type WeightsFormat = 'pth-zip' | 'pth-legacy' | 'onnx' | 'onnx-model';

export interface LoadedWeights {
  format: WeightsFormat;
  layout: string;
  arch: ArchSpec;
  numClasses: number;
  /** Canonical name → where its values are (a file region or memory). */
  tensors: Map<string, TensorSource>;
  labels?: string[];
  meta?: Record<string, unknown>;
  /** Pooling the graph asks for (ONNX MaxPool ceil_mode); undefined = the file does not say. */
  ceilMode?: boolean;
  warnings: string[];
}

async function head(file: string, n: number): Promise<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function readTorch(file: string): Promise<LoadedWeights> {
  const { format, object } = await readPth(file);
  const c = interpretCheckpoint<TensorRef>(object, file);
  return {
    format: format === 'zip' ? 'pth-zip' : 'pth-legacy', layout: c.layout, arch: c.arch, numClasses: c.numClasses,
    tensors: new Map(c.tensors), labels: c.labels, meta: c.meta, warnings: [],
  };
}

async function readOnnxWeights(file: string, archive: boolean): Promise<LoadedWeights> {
  const w = await readOnnxInWorker(file);
  return {
    format: archive ? 'onnx-model' : 'onnx', layout: 'onnx', arch: w.arch, numClasses: w.numClasses,
    tensors: new Map(w.tensors.map((t) => [t.name, t.tensor])), labels: w.labels, warnings: w.warnings,
    ...(w.ceilMode !== undefined ? { ceilMode: w.ceilMode } : {}),
  };
}

/** Reads .pth (zip or legacy), .onnx or the ONNX zoo's .model, by content. */
export async function readWeights(file: string): Promise<LoadedWeights> {
  let magic: Buffer;
  try {
    magic = await head(file, 4);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `weights file not found: ${file}` : `cannot read weights file ${file}: ${(e as Error).message}`);
  }
  if (magic.length === 0) throw new CheckpointError('TRUNCATED', `weights file ${file} is empty`, file);
  if (magic[0] === 0x50 && magic[1] === 0x4b) {
    // A zip: torch.save's (data.pkl inside) or the ONNX zoo's .model archive.
    try {
      return await readTorch(file);
    } catch (e) {
      if (e instanceof CheckpointError && e.code === 'BAD_ZIP' && /no data\.pkl/.test(e.message)) return readOnnxWeights(file, true);
      throw e;
    }
  }
  if (magic[0] === 0x80) return readTorch(file); // a pickle stream: legacy torch.save
  return readOnnxWeights(file, false);
}

function shapeOf(t: TensorSource): number[] {
  return t.shape;
}

/** Compares tensors to the model's state; one error listing every problem, or null. */
export function checkStateAgainstModel(
  modelState: Array<{ name: string; shape: number[] }>, entries: NamedTensorSource[],
  options: { strict: boolean; file?: string },
): CheckpointError | null {
  const got = new Map(entries.map((e) => [e.name, { shape: shapeOf(e.tensor) }]));
  const check: StateCheck = checkAgainst(modelState, got, { strict: options.strict });
  if (check.ok) return null;
  return new CheckpointError('STATE_MISMATCH', describeCheck(check, options.file ?? 'state dict', options), options.file);
}

/** The entries that fit the model (name known, shape equal) and what was left out. */
export function partitionForModel(
  modelState: Array<{ name: string; shape: number[] }>, entries: NamedTensorSource[],
): { fit: NamedTensorSource[]; skipped: string[]; missing: string[] } {
  const check = checkAgainst(modelState, new Map(entries.map((e) => [e.name, { shape: shapeOf(e.tensor) }])), { strict: false });
  const bad = new Set([...check.unexpected, ...check.mismatched.map((m) => m.name)]);
  return { fit: entries.filter((e) => !bad.has(e.name)), skipped: [...bad], missing: check.missing };
}
