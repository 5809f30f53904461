// Random biases and batch-norm parameters and statistics for a model whose
// initialisation has zeros and ones there, so exports and folds of each are
// really tested (test/onnx-export.test.ts, test/onnx-qdq.test.ts).
import type { Vgg } from '../../src';
import type { NamedTensorSource } from '../../src/binding';

/** A seeded generator of floats in [lo, hi). */
export function uniform(seed: number): (lo: number, hi: number) => number {
  let s = seed >>> 0;
  return (lo, hi) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s / 2 ** 32) * (hi - lo);
  };
}

/** Loads seeded random values into every bias and batch-norm tensor of `model`. */
export async function perturb(model: Vgg, seed: number): Promise<void> {
  const u = uniform(seed);
  const ranges: Array<[RegExp, number, number]> = [
    [/bn\.running_var$/, 0.5, 2],
    [/bn\.weight$/, 0.5, 1.5],
    [/(bn\.bias|bn\.running_mean)$/, -0.2, 0.2],
    [/bias$/, -0.1, 0.1],
  ];
  const entries: NamedTensorSource[] = [];
  for (const t of await model.stateDict()) {
    const r = ranges.find(([re]) => re.test(t.name));
    if (!r || t.dtype !== 'float32') continue;
    const data = new Float32Array(t.data.length).map(() => u(r[1], r[2]));
    entries.push({ name: t.name, tensor: { kind: 'array', data, shape: t.shape } });
  }
  await model.loadStateDict(entries, { strict: false });
}
