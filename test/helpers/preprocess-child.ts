// Runs `preprocess` on one file in a process of its own and reports what it
// cost: peak RSS before (after warming sharp up on a small image) and after,
// so a test can hold the growth to limits.ts' PEAK_BOUND_BYTES; a native
// crash shows as the child's signal instead of killing mocha.
// argv: <file> [options as JSON]; prints one JSON line.
import { preprocess } from '../../src/image/preprocess';
import { errorCode } from '../../src/errors';

const peakRss = () => process.resourceUsage().maxRSS * 1024;

async function main(): Promise<void> {
  const [file, options] = process.argv.slice(2);
  await preprocess({ data: new Uint8Array(64 * 64 * 3), width: 64, height: 64, channels: 3 });
  const before = peakRss();
  const started = Date.now();
  let out: Record<string, unknown>;
  try {
    const t = await preprocess(file, options ? JSON.parse(options) : undefined);
    let min = Infinity;
    let max = -Infinity;
    for (const v of t.data) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    const plane = t.shape[2] * t.shape[3];
    out = { ok: true, shape: t.shape, first: [t.data[0], t.data[plane], t.data[2 * plane]], min, max };
  } catch (e) {
    out = { ok: false, code: errorCode(e), message: (e as Error).message };
  }
  process.stdout.write(`${JSON.stringify({ ...out, ms: Date.now() - started, grewBytes: peakRss() - before })}\n`);
}

main();
