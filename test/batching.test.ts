// Dynamic batching across calls (src/inference/batcher.ts): concurrent calls
// coalesced into one forward give each caller exactly the rows it gets when
// run alone with batching off (the oracle), its own errors and its own abort;
// the queue bound rejects with QUEUE_FULL; other model calls are not overtaken.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { AbortError, ImageInputError, QueueFullError, vgg, type BatchInfo, type Tensor, type Vgg } from '../src';

const SKI = '/usr/lib/python3/dist-packages/skimage/data';
const SKL = '/usr/lib/python3/dist-packages/sklearn/datasets/images';
const PHOTOS = [`${SKI}/chelsea.png`, `${SKI}/coffee.png`, `${SKI}/astronaut.png`, `${SKL}/china.jpg`, `${SKL}/flower.jpg`];
/** Small inputs keep the test cheap: vgg11 at 64x64. */
const SMALL = { preprocess: { resizeShort: 64, crop: 64 } } as const;
const SIDE = 64;

/** A seeded [n, 3, SIDE, SIDE] input whose rows differ. */
function input(n: number, seed: number): Tensor {
  const data = new Float32Array(n * 3 * SIDE * SIDE);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(seed * 7919 + i * 0.37);
  return { data, shape: [n, 3, SIDE, SIDE] };
}

/** Equal up to float noise: a different batch composition may pick other kernels. */
function assertRowsClose(actual: Tensor, expected: Tensor, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  let worst = 0;
  for (let i = 0; i < expected.data.length; i++) {
    worst = Math.max(worst, Math.abs(actual.data[i] - expected.data[i]) / (1e-3 + Math.abs(expected.data[i])));
  }
  assert.ok(worst < 1e-3, `${what}: relative difference ${worst}`);
}

describe('dynamic batching across calls', function () {
  this.timeout(120_000);
  let alone: Vgg;
  const batches: BatchInfo[] = [];
  let batched: Vgg;

  before(async () => {
    alone = await vgg('vgg11', { numClasses: 10, seed: 0, batching: false });
    // A long idle wait makes the coalescing deterministic: every call made in one tick joins one group.
    batched = await vgg('vgg11', { numClasses: 10, seed: 0, batching: { maxBatch: 8, maxWaitMs: 300, onBatch: (b) => batches.push(b) } });
    const state = await alone.stateDict();
    await batched.loadStateDict(state.map(({ name, data, shape }) => ({ name, tensor: { kind: 'array', data, shape } })));
  });
  beforeEach(() => {
    batches.length = 0;
  });
  after(() => {
    alone.dispose();
    batched.dispose();
  });

  it('coalesces concurrent forward() calls and gives each caller its own rows, in order', async () => {
    const xs = [input(1, 1), input(2, 2), input(3, 3), input(1, 4)];
    const got = await Promise.all(xs.map((x) => batched.forward(x)));
    assert.deepEqual(
      batches.map((b) => [b.images, b.calls]),
      [[7, 4]],
    );
    for (const [i, x] of xs.entries()) assertRowsClose(got[i], await alone.forward(x), `call ${i}`);
    // Each caller owns its buffer: no view of another caller's rows.
    assert.equal(got[1].data.buffer.byteLength, 2 * 10 * 4);
  });

  it('splits groups at maxBatch and runs a call larger than maxBatch alone, unsplit', async () => {
    const xs = [input(5, 5), input(5, 6), input(9, 7)];
    const got = await Promise.all(xs.map((x) => batched.forward(x)));
    assert.deepEqual(
      batches.map((b) => [b.images, b.calls]),
      [
        [5, 1],
        [5, 1],
        [9, 1],
      ],
    );
    for (const [i, x] of xs.entries()) assertRowsClose(got[i], await alone.forward(x), `call ${i}`);
  });

  it('classify(): coalesced photos give the top-5 of each photo classified alone; an undecodable image fails only its caller', async () => {
    const calls = [...PHOTOS.map((p) => fs.readFileSync(p)), Buffer.from('not an image at all')];
    const settled = await Promise.allSettled(calls.map((b) => batched.classify(b, SMALL)));
    assert.ok(
      batches.some((b) => b.calls > 1),
      `no coalesced forward: ${JSON.stringify(batches)}`,
    );
    for (const [i, photo] of PHOTOS.entries()) {
      const r = settled[i];
      assert.equal(r.status, 'fulfilled', `${photo}: ${(r as PromiseRejectedResult).reason}`);
      const expected = await alone.classify(photo, SMALL);
      assert.deepEqual(
        r.value.map((p) => p.index),
        expected.map((p) => p.index),
        photo,
      );
      r.value.forEach((p, k) => assert.ok(Math.abs(p.probability - expected[k].probability) < 1e-4, `${photo} #${k}`));
    }
    const bad = settled[PHOTOS.length];
    assert.equal(bad.status, 'rejected');
    assert.ok(bad.reason instanceof ImageInputError && bad.reason.code === 'UNSUPPORTED_FORMAT', String(bad.reason));
  });

  it('extractFeatures(): calls for the same layer coalesce, other layers run apart, each as alone', async () => {
    const [a, b, c] = await Promise.all([
      batched.extractFeatures(PHOTOS[0], { ...SMALL, layer: 'pool5' }),
      batched.extractFeatures(PHOTOS.slice(1, 3), { ...SMALL, layer: 'pool5', normalize: true }),
      batched.extractFeatures(PHOTOS[3], { ...SMALL, layer: 'fc7' }),
    ]);
    assert.ok(batches.some((x) => x.calls === 2 && x.images === 3) && batches.some((x) => x.calls === 1 && x.images === 1), JSON.stringify(batches));
    assertRowsClose(a, await alone.extractFeatures(PHOTOS[0], { ...SMALL, layer: 'pool5' }), 'pool5');
    assertRowsClose(b, await alone.extractFeatures(PHOTOS.slice(1, 3), { ...SMALL, layer: 'pool5', normalize: true }), 'pool5 normalised');
    assertRowsClose(c, await alone.extractFeatures(PHOTOS[3], { ...SMALL, layer: 'fc7' }), 'fc7');
  });

  it('an aborted waiting call rejects at once with AbortError and its rows never run; the others are unaffected', async () => {
    const controller = new AbortController();
    const kept = batched.forward(input(2, 8));
    const dropped = batched.forward(input(3, 9), { signal: controller.signal });
    controller.abort();
    await assert.rejects(dropped, AbortError);
    assertRowsClose(await kept, await alone.forward(input(2, 8)), 'kept');
    assert.deepEqual(
      batches.map((b) => [b.images, b.calls]),
      [[2, 1]],
    );
  });

  it('rejects with QUEUE_FULL beyond maxQueue waiting calls, and runs the rest', async () => {
    const small = await vgg('vgg11', { numClasses: 10, seed: 0, batching: { maxBatch: 1, maxWaitMs: 0, maxQueue: 2 } });
    try {
      const calls = [1, 2, 3].map((s) => small.forward(input(1, s)));
      const settled = await Promise.allSettled(calls);
      assert.deepEqual(
        settled.map((s) => s.status),
        ['fulfilled', 'fulfilled', 'rejected'],
      );
      const e = (settled[2] as PromiseRejectedResult).reason;
      assert.ok(e instanceof QueueFullError && e.code === 'QUEUE_FULL', String(e));
      await small.forward(input(1, 4)); // the queue drained: accepted again
    } finally {
      small.dispose();
    }
  });

  it('a call made after another model call does not join a forward queued before it', async () => {
    const first = batched.forward(input(1, 10));
    const state = batched.stateDict();
    const second = batched.forward(input(1, 11));
    await Promise.all([first, state, second]);
    assert.deepEqual(
      batches.map((b) => [b.images, b.calls]),
      [
        [1, 1],
        [1, 1],
      ],
    );
  });

  it('a disposed model rejects waiting calls with DISPOSED', async () => {
    const m = await vgg('vgg11', { numClasses: 10, seed: 0, batching: { maxWaitMs: 200 } });
    const call = m.forward(input(1, 12));
    m.dispose();
    await assert.rejects(call, { code: 'DISPOSED' });
  });

  it('validates options.batching once, naming the option', async () => {
    await assert.rejects(vgg('vgg11', { batching: { maxBatch: 0 } }), { code: 'ERR_OUT_OF_RANGE', message: /options\.batching\.maxBatch/ });
    await assert.rejects(vgg('vgg11', { batching: { maxWait: 1 } as never }), { code: 'ERR_OUT_OF_RANGE', message: /options\.batching/ });
    await assert.rejects(vgg('vgg11', { batching: true as never }), { code: 'ERR_INVALID_ARG_TYPE', message: /options\.batching/ });
  });
});
