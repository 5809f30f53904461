// fineTune: prepare the run, then train an epoch and end it until the epochs
// are done or early stopping ends them. The user's onProgress, the HTML
// report and the checkpointer watch it as training observers.
import type { ModelCore } from '../core/model-core';
import type { DatasetProblem } from '../data/dataset';
import { abortErrorOf, throwIfAborted } from '../abort';
import { runtime, setThreads } from '../runtime';
import { Checkpointer } from './checkpointer';
import { endEpoch } from './end-epoch';
import { notify, type TrainingObserver } from './observer';
import { resolveFineTuneOptions, type FineTuneOptions, type ResolvedFineTune } from './options';
import { progressObserver } from './progress';
import { TrainingReport } from './report/writer';
import type { FineTuneReport } from './result';
import { prepareRun, type TrainingRun } from './run';
import { trainEpoch } from './train-epoch';

/**
 * Fine-tunes `model` on a labelled image dataset and resolves with a report
 * per epoch. The head is replaced when the dataset's class count differs,
 * and model.labels become the class names.
 */
export async function fineTune(model: ModelCore, options: FineTuneOptions): Promise<FineTuneReport> {
  const o: ResolvedFineTune = resolveFineTuneOptions(options);
  const threadsBefore = runtime().threads;
  try {
    throwIfAborted(o.signal);
    if (o.deterministic) setThreads(1);
    const run = await prepareRun(model, o);
    return await train(run, observersOf(run));
  } finally {
    if (o.deterministic) setThreads(threadsBefore); // deterministic's single thread lasts for this run only
  }
}

/** The observers options ask for, in the order they are told: the page, the user's callback, then the checkpointer. */
function observersOf(run: TrainingRun): TrainingObserver[] {
  const { options: o, rank, data } = run;
  const observers: TrainingObserver[] = [];
  if (o.report !== undefined && rank === 0) {
    observers.push(
      new TrainingReport({
        file: o.report,
        model: run.model,
        options: o,
        classes: data.classes,
        trainCount: data.train.items.length,
        valItems: data.val?.items,
        stepsPerEpoch: run.stepsPerEpoch,
        ...(run.resumed ? { resumedAt: run.resumed.state.globalStep } : {}),
      }),
    );
  }
  if (o.onProgress) observers.push(progressObserver(o.onProgress, o.batchSize));
  if (o.checkpointDir !== undefined && rank === 0) observers.push(new Checkpointer(run, o.checkpointDir));
  return observers;
}

async function train(run: TrainingRun, observers: readonly TrainingObserver[]): Promise<FineTuneReport> {
  const { model, options: o, report, position } = run;
  await run.cache?.enter(model);
  try {
    while (position.epoch < o.epochs && !report.stoppedEarly) {
      await trainEpoch(run, observers);
      await endEpoch(run, observers);
      if (o.signal?.aborted) throw abortErrorOf(o.signal);
    }
  } catch (err) {
    if (!model.disposed) await run.cache?.leave(model); // the model stays one that takes images
    // An abort stops at a step boundary: the checkpointer saves where it stopped, for `resume`.
    if (o.signal?.aborted) {
      await notify(observers, 'finish', { reason: 'aborted', report, position });
      throw abortErrorOf(o.signal);
    }
    throw err;
  }
  // Images the loaders dropped during training (skipInvalid) join those the checks dropped.
  report.skipped = uniqueProblems([...report.skipped, ...run.loader.skipped, ...(run.valLoader?.skipped ?? [])]);
  await notify(observers, 'finish', { reason: 'done', report, position });
  return report;
}

/** One entry per path, the first reason kept. */
function uniqueProblems(problems: DatasetProblem[]): DatasetProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => !seen.has(p.path) && seen.add(p.path) !== undefined);
}
