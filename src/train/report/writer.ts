// fineTune's hook for `options.report`: it records every step, keeps the
// validation pass's worst images, and after each epoch (and at the end)
// rewrites the page atomically, so a browser watching it never sees half a
// file. Nothing here may fail training: a page that cannot be written is a
// process warning (once), pictures that cannot be made are left out.
import * as path from 'node:path';
import type { ModelCore } from '../../core/model-core';
import type { DatasetItem } from '../../data/types';
import { writeFileAtomic } from '../../fs/atomic-file';
import type { BatchObserver, EvaluateResult } from '../evaluate';
import type { EpochEvent, FinishEvent, StepEvent, TrainingObserver } from '../observer';
import type { ResolvedFineTune } from '../options';
import { StepLog, type EpochRow, type ReportData, type ValidationSnapshot } from './collect';
import { describeMachine, describeOptions } from './context';
import { renderReport } from './html';
import { WorstTracker, withThumbnails } from './thumbnails';

/** What the report knows from the start of a run. */
export interface ReportSetup {
  /** The page to write. */
  file: string;
  /** The model being trained. */
  model: ModelCore;
  /** fineTune's resolved options (shown on the page). */
  options: ResolvedFineTune;
  /** Class names, index = label. */
  classes: string[];
  /** Training images. */
  trainCount: number;
  /** The validation items (batch indices point into them); undefined without validation. */
  valItems: readonly DatasetItem[] | undefined;
  /** Optimizer steps per epoch. */
  stepsPerEpoch: number;
  /** The global step a resumed run starts at. */
  resumedAt?: number;
}

/** The training progress the page is drawn from (fineTune's FineTuneReport has these fields). */
export interface ReportProgress {
  /** Finished epochs, in order. */
  epochs: readonly EpochRow[];
  /** Index of the best epoch in `epochs`, -1 before the first. */
  bestEpoch: number;
}

/** Warning code of a report that could not be written. */
export const REPORT_WARNING = 'VGG_NATIVE_REPORT';

/**
 * The training report of one fineTune run (rank 0 only), a training
 * observer. Methods never reject: the run goes on whatever happens to the page.
 *
 * @example
 * const page = new TrainingReport({ file: 'report.html', model, options: o, classes, trainCount, valItems, stepsPerEpoch });
 * // fineTune calls these as a TrainingObserver:
 * page.step(stepEvent);
 * await page.epoch({ report, validation });
 * await page.finish({ reason: 'done', report }); // sets report.reportPath
 */
export class TrainingReport implements TrainingObserver {
  readonly #log = new StepLog();
  readonly #options: Array<[string, string]>;
  readonly #machine: Array<[string, string]>;
  #tracker: WorstTracker | undefined;
  #validation: ValidationSnapshot | undefined;
  #warned = false;
  readonly #warnings: string[] = [];

  constructor(private readonly setup: ReportSetup) {
    this.#options = describeOptions(setup.options);
    this.#machine = describeMachine(setup.model);
  }

  /** Records one training step (see {@link StepLog.record}). */
  step(e: StepEvent): void {
    this.#log.record(e);
    if (e.warning) this.#warnings.push(e.warning);
  }

  /** A fresh observer for this epoch's validation pass (it keeps the worst images), or undefined without validation. */
  validation(): BatchObserver | undefined {
    if (!this.setup.valItems) return undefined;
    this.#tracker = new WorstTracker(this.setup.valItems);
    return this.#tracker.observe;
  }

  /** After an epoch: keeps its validation (with thumbnails for the worst images) and rewrites the page. */
  async epoch(e: Pick<EpochEvent, 'report' | 'validation'>): Promise<void> {
    const epoch = e.report.epochs[e.report.epochs.length - 1]?.epoch ?? 0;
    if (e.validation) this.#validation = await this.#snapshot(epoch, e.validation);
    await this.#write('running', e.report);
    this.#log.restartClock();
  }

  /** The last write when the run is done; sets report.reportPath to the page's absolute path when it could be written. */
  async finish(e: Pick<FinishEvent, 'reason' | 'report'>): Promise<void> {
    if (e.reason !== 'done') return;
    if (await this.#write('finished', e.report)) e.report.reportPath = path.resolve(this.setup.file);
  }

  async #snapshot(epoch: number, val: EvaluateResult): Promise<ValidationSnapshot> {
    const plain = this.#tracker?.worst ?? [];
    const { model, options } = this.setup;
    // Grad-CAM of a few images; on any failure the epoch's page lists them without pictures.
    const worst = await withThumbnails(model, plain, model.defaultPreprocess(), options.signal).catch(() => plain);
    const perClass = val.perClass.map((c) => ({ ...c }));
    return { epoch, count: val.count, confusion: val.confusion.map((row) => [...row]), perClass, worst };
  }

  #data(status: ReportData['status'], progress: ReportProgress): ReportData {
    const s = this.setup;
    return {
      title: `${s.model.arch} fine-tuning`,
      status,
      updated: new Date().toISOString(),
      classes: s.classes,
      trainCount: s.trainCount,
      valCount: s.valItems?.length ?? 0,
      stepsPerEpoch: s.stepsPerEpoch,
      epochsPlanned: s.options.epochs,
      ...(s.resumedAt !== undefined ? { resumedAt: s.resumedAt } : {}),
      steps: this.#log.steps,
      epochs: [...progress.epochs],
      bestEpoch: progress.bestEpoch,
      ...(this.#validation ? { validation: this.#validation } : {}),
      warnings: this.#warnings,
      options: this.#options,
      machine: this.#machine,
    };
  }

  /** true when the page was written. */
  async #write(status: ReportData['status'], progress: ReportProgress): Promise<boolean> {
    try {
      await writeFileAtomic(this.setup.file, renderReport(this.#data(status, progress)));
      return true;
    } catch (e) {
      if (!this.#warned)
        process.emitWarning(`cannot write the training report "${this.setup.file}": ${(e as Error).message}`, { code: REPORT_WARNING });
      this.#warned = true;
      return false;
    }
  }
}
