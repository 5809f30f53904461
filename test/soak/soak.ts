// The soak (issue 13), shared by `npm run soak` (scripts/soak.js: 10,000
// calls or an hour) and the short run in `npm test` (test/soak.test.ts):
// many classify() calls from concurrent callers on small inputs, each answer
// compared with the answer a single, lone call gave for the same input
// (computed first, one call at a time), and the resident set size sampled
// after warm-up and at the end.
import { vgg, type Vgg } from '../../src';
import type { Prediction } from '../../src/inference/classify';
import type { RawPixels } from '../../src/image/decode';

export const SOAK_ARCH = 'vgg11' as const;
export const SOAK_SIZE = 32;
/** Top-1 probabilities of a batched and a lone call may differ by float32 rounding only. */
export const PROB_TOLERANCE = 1e-4;

export interface SoakOptions {
  calls: number;
  concurrency: number;
  /** Stop after this many minutes even when `calls` is not reached (0: no limit). */
  minutes?: number;
  distinctInputs?: number;
  onProgress?: (done: number) => void;
}

export interface SoakResult {
  calls: number;
  concurrency: number;
  wrong: number;
  errors: number;
  rssStartMiB: number;
  rssEndMiB: number;
  rssPeakMiB: number;
  seconds: number;
}

/** Deterministic small images (xorshift), distinct enough to get different answers. */
export function soakInputs(n: number): RawPixels[] {
  const out: RawPixels[] = [];
  let s = 0x12345678;
  for (let i = 0; i < n; i++) {
    const data = new Uint8Array(SOAK_SIZE * SOAK_SIZE * 3);
    for (let j = 0; j < data.length; j++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      data[j] = s & 0xff;
    }
    out.push({ data, width: SOAK_SIZE, height: SOAK_SIZE, channels: 3 });
  }
  return out;
}

export const SOAK_PREPROCESS = { resizeShort: SOAK_SIZE, crop: SOAK_SIZE } as const;

export function soakModel(): Promise<Vgg> {
  return vgg(SOAK_ARCH, { numClasses: 10, seed: 7 });
}

export function sameAnswer(a: Prediction[], b: Prediction[]): boolean {
  return a.length === b.length && a.every((p, i) => p.index === b[i].index && Math.abs(p.probability - b[i].probability) <= PROB_TOLERANCE);
}

const mib = (b: number) => Math.round((b / 1048576) * 10) / 10;

/** Runs the soak on `model`; never throws for a wrong answer (it is counted). */
export async function runSoak(model: Vgg, o: SoakOptions): Promise<SoakResult> {
  const inputs = soakInputs(o.distinctInputs ?? 8);
  const reference: Prediction[][] = [];
  for (const x of inputs) reference.push(await model.classify(x, { topK: 3, preprocess: SOAK_PREPROCESS }));
  // Warm-up: allocator caches and thread pools reach their working size.
  await Promise.all(
    Array.from({ length: o.concurrency * 4 }, (_, i) => model.classify(inputs[i % inputs.length], { topK: 3, preprocess: SOAK_PREPROCESS })),
  );
  global.gc?.();
  const rssStart = process.memoryUsage().rss;
  let peak = rssStart;
  const started = Date.now();
  const until = o.minutes ? started + o.minutes * 60000 : Infinity;
  let next = 0;
  let done = 0;
  let wrong = 0;
  let errors = 0;
  const caller = async (): Promise<void> => {
    while (next < o.calls && Date.now() < until) {
      const i = next++;
      const x = i % inputs.length;
      try {
        const got = await model.classify(inputs[x], { topK: 3, preprocess: SOAK_PREPROCESS });
        if (!sameAnswer(got, reference[x])) wrong++;
      } catch {
        errors++;
      }
      done++;
      if (done % 250 === 0) {
        peak = Math.max(peak, process.memoryUsage().rss);
        o.onProgress?.(done);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, caller));
  global.gc?.();
  const rssEnd = process.memoryUsage().rss;
  return {
    calls: done,
    concurrency: o.concurrency,
    wrong,
    errors,
    rssStartMiB: mib(rssStart),
    rssEndMiB: mib(rssEnd),
    rssPeakMiB: mib(Math.max(peak, rssEnd)),
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}
