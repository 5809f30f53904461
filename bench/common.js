// The helpers every bench section shares (bench/run.js, bench/serve.js): medians, rounding,
// the settle before each timed call, the seeded input, and the targets line's wording.
'use strict';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, d = 2) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits before each timed call: every contender's thread pool spins for a while after its
 * work (libgomp's workers, onnxruntime's intra-op pool, caffe2's pthreadpool), and interleaved
 * rep by rep those spinning threads would take cores from whichever contender runs next.
 */
const SETTLE_MS = Number(process.env.VGG_BENCH_SETTLE_MS ?? 250);
const settle = () => delay(SETTLE_MS);

/** Seconds one call of `fn` takes, after the settle. */
async function timed(fn) {
  await settle();
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** A float32 tensor of `shape` with values in [-2, 2) from a linear congruential generator: the same input in every process. */
function seededInput(shape, seed) {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s / 2 ** 32) * 4 - 2;
  }
  return { data, shape };
}

/** 'VGG-16 b8 int8/fp32 1.87x (target 1.8, met)'; a gap reads '12.3 ms (target 20 ms, met)'. */
function formatTarget(t) {
  const target = t.unit === 'x' ? t.target : `${t.target}${t.unit}`;
  return `${t.what} ${t.value}${t.unit} (target ${target}, ${t.met ? 'met' : 'missed'})`;
}

module.exports = { median, round, delay, SETTLE_MS, settle, timed, seededInput, formatTarget };
