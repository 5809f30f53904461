// Runs the independent PyTorch re-implementation of mmcls's VGG
// (test/fixtures/mmcls_vgg.py) on the weights of one of our models, passed
// as raw float32 files, and returns its outputs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Vgg } from '../../src';
import type { Tensor } from '../../src/tensor';
import { python, readF32 } from './python';

export const FIXTURES = path.resolve(__dirname, '..', 'fixtures');

export interface ReferenceSpec {
  outIndices?: number[];
  ceilMode?: boolean;
  withLastPool?: boolean;
  dilations?: number[];
}

/** Writes the model's state as raw files plus an index; returns the index entries. */
export async function dumpState(model: Vgg, dir: string): Promise<Array<{ name: string; shape: number[]; dtype: string; file: string }>> {
  const state = await model.stateDict();
  return state.map((t, i) => {
    const file = `t${i}.bin`;
    fs.writeFileSync(path.join(dir, file), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    return { name: t.name, shape: t.shape, dtype: t.dtype, file };
  });
}

/**
 * Writes what the Python oracles read: the model's state (dumpState), the
 * input as input.f32 and spec.json with the architecture, `extra` and the
 * tensor list; then runs `script` (in test/fixtures) on the folder.
 */
export async function runReference(script: string, model: Vgg, input: Tensor, dir: string, extra: Record<string, unknown>): Promise<void> {
  const tensors = await dumpState(model, dir);
  fs.writeFileSync(path.join(dir, 'input.f32'), Buffer.from(input.data.buffer, input.data.byteOffset, input.data.byteLength));
  const arch = { depth: model.spec.depth, bn: model.spec.batchNorm, num_classes: model.numClasses > 0 ? model.numClasses : -1 };
  fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify({ ...arch, ...extra, input_shape: input.shape, tensors }));
  await python(path.join(FIXTURES, script), [dir]);
}

/** PyTorch's outputs (out_indices order, logits last) for `input` on the model's weights. */
export async function referenceForward(model: Vgg, input: Tensor, dir: string, spec: ReferenceSpec = {}): Promise<Tensor[]> {
  await runReference('reference_forward.py', model, input, dir, {
    out_indices: spec.outIndices,
    ceil_mode: spec.ceilMode ?? false,
    with_last_pool: spec.withLastPool ?? true,
    dilations: spec.dilations ?? [1, 1, 1, 1, 1],
  });
  const outs = JSON.parse(fs.readFileSync(path.join(dir, 'outputs.json'), 'utf8')) as Array<{ file: string; shape: number[] }>;
  return outs.map((o) => ({ data: readF32(path.join(dir, o.file)), shape: o.shape }));
}

/** A deterministic pseudo-random input in roughly the normalised-image range. */
export function randomInput(shape: number[], seed = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s / 2 ** 32) * 4 - 2;
  }
  return { data, shape };
}
