// The end of an epoch: validate, record the epoch and the best one so far,
// decide on early stopping, move to the next epoch and tell the observers.
import { scoreLoader } from './evaluate';
import { notify, validationObserver, type TrainingObserver } from './observer';
import type { EpochReport } from './result';
import { emptyTotals } from './resume';
import { ratesAt, type TrainingRun } from './run';

/** Validates the model as it is (the feature cache left: an ordinary model), records the epoch, tells the observers. */
export async function endEpoch(run: TrainingRun, observers: readonly TrainingObserver[]): Promise<void> {
  const { model, options: o, report, position: p } = run;
  const started = Date.now();
  await run.cache?.leave(model); // validation and the observers see an ordinary model
  const scored = run.valLoader
    ? await scoreLoader(model, run.valCache ?? run.valLoader, o.precision, o.signal, validationObserver(observers), run.valCache !== undefined)
    : undefined;
  const validation = scored?.result(report.classes);
  const e: EpochReport = {
    epoch: p.epoch,
    trainLoss: p.running.lossSum / Math.max(1, p.running.seen),
    trainTop1: p.running.correct / Math.max(1, p.running.seen),
    valLoss: validation?.loss ?? NaN,
    valTop1: validation?.top1 ?? NaN,
    valTop5: validation?.top5 ?? NaN,
    imagesPerSecond: p.running.images / Math.max(p.running.seconds, 1e-6),
    lr: ratesAt(run, p.globalStep - 1)[0],
    seconds: p.running.seconds + (Date.now() - started) / 1000, // training and validation
  };
  record(run, e);
  p.epoch++;
  p.step = 0;
  p.running = emptyTotals();
  await notify(observers, 'epoch', { report, validation, position: p });
  if (p.epoch < o.epochs && !report.stoppedEarly) await run.cache?.enter(model);
}

/** Appends the epoch, keeps the best one, counts epochs without improvement for early stopping. */
function record(run: TrainingRun, e: EpochReport): void {
  const { report, options: o, position: p } = run;
  report.epochs.push(e);
  const hasVal = run.valLoader !== undefined;
  const improved =
    report.bestEpoch < 0 || (hasVal ? e.valTop1 > report.best.valTop1 + (o.earlyStopping?.minDelta ?? 0) : better(e, report.best, false));
  if (report.bestEpoch < 0 || better(e, report.best, hasVal)) {
    report.bestEpoch = report.epochs.length - 1;
    report.best = e;
  }
  p.sinceBest = improved ? 0 : p.sinceBest + 1;
  if (o.earlyStopping && hasVal && p.sinceBest >= o.earlyStopping.patience && e.epoch + 1 < o.epochs) report.stoppedEarly = true;
}

/** Highest validation top-1, or lowest training loss without validation. */
function better(a: EpochReport, b: EpochReport, hasVal: boolean): boolean {
  return hasVal ? a.valTop1 > b.valTop1 : a.trainLoss < b.trainLoss;
}
