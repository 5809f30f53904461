// What watches a fineTune run: the user's onProgress, the HTML report and the
// checkpointer are each one TrainingObserver, called at the same four points
// (after a step, around validation, after an epoch, at the end). A new one
// (EMA weights, a CSV log) is one more file implementing this interface.
import type { BatchObserver, EvaluateResult } from './evaluate';
import type { FineTuneProgress } from './options';
import type { FineTuneReport } from './result';

/** Totals of the epoch's steps so far (this rank's images for loss and top-1; all ranks' for images). */
export interface RunningTotals {
  lossSum: number;
  correct: number;
  seen: number;
  seconds: number;
  images: number;
}

/** Where a run stands: the epoch and step to run next, steps taken, and epochs since the best one. */
export interface RunPosition {
  epoch: number;
  step: number;
  globalStep: number;
  sinceBest: number;
  running: RunningTotals;
}

/** One optimizer step, as observers see it right after it: onProgress's fields (epoch, step, loss, lr, ...) and more. */
export interface StepEvent
  extends Pick<FineTuneProgress, 'epoch' | 'step' | 'stepsPerEpoch' | 'globalStep' | 'totalSteps' | 'loss' | 'lr' | 'warning'> {
  /** Correct top-1 predictions and images learned from, on this rank. */
  correct: number;
  n: number;
  /** Images of the global batch (all ranks, before skipping). */
  images: number;
  /** Wall time of the step, seconds. */
  seconds: number;
  /** The run's position after the step (read only). */
  position: Readonly<RunPosition>;
}

/** An epoch recorded in `report.epochs` (its last entry); `position` already names the next epoch. */
export interface EpochEvent {
  report: FineTuneReport;
  /** The epoch's validation result; undefined without validation data. */
  validation: EvaluateResult | undefined;
  position: Readonly<RunPosition>;
}

/** How a run ended: 'done' (every epoch, or early stopping) or 'aborted' (options.signal; position is where it stopped). */
export interface FinishEvent {
  reason: 'done' | 'aborted';
  report: FineTuneReport;
  position: Readonly<RunPosition>;
}

/**
 * Watches a fineTune run. Every method is optional and awaited in turn; a
 * throw fails the run. Observers may fill their own field of the report
 * (the checkpointer `checkpoint`, the HTML report `reportPath`).
 */
export interface TrainingObserver {
  step?(e: StepEvent): void | Promise<void>;
  /** Before each validation pass: a BatchObserver that sees the scored batches, or undefined. */
  validation?(): BatchObserver | undefined;
  epoch?(e: EpochEvent): void | Promise<void>;
  finish?(e: FinishEvent): void | Promise<void>;
}

/** Calls one event on every observer, in order. */
export async function notify<K extends 'step' | 'epoch' | 'finish'>(
  observers: readonly TrainingObserver[],
  event: K,
  e: Parameters<NonNullable<TrainingObserver[K]>>[0],
): Promise<void> {
  for (const o of observers) await (o[event] as ((e: unknown) => void | Promise<void>) | undefined)?.call(o, e);
}

/** One BatchObserver feeding every observer's, or undefined when none wants the batches. */
export function validationObserver(observers: readonly TrainingObserver[]): BatchObserver | undefined {
  const each = observers.map((o) => o.validation?.()).filter((b): b is BatchObserver => b !== undefined);
  if (each.length === 0) return undefined;
  return (logits, batch) => {
    for (const b of each) b(logits, batch);
  };
}
