// One training epoch: every batch of the epoch through one optimizer step,
// observers told after each. Everything random is a function of (seed,
// epoch, step) — data order and augmentation in the loader, dropout reseeded
// every step here — and the learning rate a function of the global step, so a
// run resumed from a checkpoint continues exactly as if never stopped.
import { abortErrorOf } from '../abort';
import { mixSeed } from '../data/seed';
import { ModelError } from '../errors';
import { distributedError } from './distributed';
import type { TrainBatch } from './feature-cache';
import { notify, type TrainingObserver } from './observer';
import { ratesAt, type TrainingRun } from './run';

/** Stream of dropout seeds: its own purpose tag, apart from the data loader's (order 1, augment 2, split 3). */
const DROPOUT_PURPOSE = 4;

export function dropoutSeed(seed: number, globalStep: number): number {
  return mixSeed(DROPOUT_PURPOSE, seed, globalStep);
}

/** Trains from run.position to the end of its epoch. @throws AbortError when options.signal fires (at a step boundary) */
export async function trainEpoch(run: TrainingRun, observers: readonly TrainingObserver[]): Promise<void> {
  const { position: p, options: o } = run;
  const t0 = Date.now() - p.running.seconds * 1000;
  for await (const batch of run.source.epoch(p.epoch, { signal: o.signal, startStep: p.step })) {
    const started = Date.now();
    const lr = ratesAt(run, p.globalStep);
    const out = await takeStep(run, batch, lr);
    if (out) {
      p.running.lossSum += out.loss * batch.labels.length;
      p.running.correct += out.correct;
      p.running.seen += batch.labels.length;
    }
    p.running.images += batch.globalSize;
    p.step++;
    p.globalStep++;
    const now = Date.now();
    p.running.seconds = (now - t0) / 1000;
    const warning = run.divergence.see(out?.loss ?? NaN);
    if (warning) run.report.warnings.push(warning);
    await notify(observers, 'step', {
      epoch: p.epoch,
      step: p.step - 1,
      stepsPerEpoch: run.stepsPerEpoch,
      globalStep: p.globalStep,
      totalSteps: run.totalSteps,
      loss: out?.loss ?? NaN,
      correct: out?.correct ?? 0,
      n: out ? batch.labels.length : 0,
      images: batch.globalSize,
      lr: lr[0],
      seconds: (now - started) / 1000,
      position: p,
      ...(warning ? { warning } : {}),
    });
    if (o.signal?.aborted) throw abortErrorOf(o.signal);
  }
}

/** One optimizer step; undefined when this process had nothing to learn from. @throws ModelError 'DIVERGED', 'RANK_LOST' */
async function takeStep(run: TrainingRun, batch: TrainBatch, lr: [number, number]): Promise<{ loss: number; correct: number } | undefined> {
  const { options: o, dist, position: p } = run;
  // Every rank steps, even with an empty shard: the gradient allreduce needs all of them.
  if (batch.labels.length === 0 && !dist) return undefined; // every image of this batch was skipped
  // lossScale makes the averaged gradient the global batch's mean when shards differ in size.
  const lossScale = dist ? (batch.labels.length * dist.worldSize) / Math.max(batch.globalSize, 1) : 1;
  const out = await run.model
    .trainStep(batch, {
      labelSmoothing: o.labelSmoothing,
      clipGradNorm: o.clipGradNorm,
      lr,
      precision: o.precision,
      lossScale,
      seed: dropoutSeed(o.seed, p.globalStep), // dropout reseeded in the worker, under the generator's lock
      ...(o.cacheFeatures ? { features: true } : {}),
    })
    .catch((e: unknown) => {
      throw distributedError(e); // a lost rank surfaces in the gradient allreduce: ModelError 'RANK_LOST'
    });
  if (batch.labels.length === 0) return undefined;
  if (!Number.isFinite(out.loss)) {
    throw new ModelError(
      'DIVERGED',
      `The training loss became ${out.loss} at epoch ${p.epoch}, step ${p.step} (lr ${lr[0]}): lower options.lr, ` +
        'add a warm-up (options.schedule.warmupSteps) or set options.clipGradNorm',
    );
  }
  return out;
}
