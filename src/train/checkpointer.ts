// options.checkpointDir as a training observer: a checkpoint every
// checkpointEvery steps, after every epoch, and where an aborted run stopped,
// so `resume` continues from there. Rank 0 writes; the others hold the same weights.
import { CHECKPOINT_FORMAT, saveTrainingCheckpoint, type CheckpointState } from './checkpoint';
import type { RunPosition, TrainingObserver } from './observer';
import type { TrainingRun } from './run';

export class Checkpointer implements TrainingObserver {
  #savedAt: number;

  constructor(
    private readonly run: TrainingRun,
    private readonly dir: string,
  ) {
    this.#savedAt = run.resumed ? run.position.globalStep : -1;
  }

  async step(e: { step: number; stepsPerEpoch: number; globalStep: number }): Promise<void> {
    const every = this.run.options.checkpointEvery;
    // The epoch's last step is saved by epoch(), after validation.
    if (every > 0 && e.globalStep % every === 0 && e.step + 1 < e.stepsPerEpoch) await this.#save();
  }

  async epoch(): Promise<void> {
    await this.#save();
  }

  async finish(e: { reason: 'done' | 'aborted' }): Promise<void> {
    if (e.reason === 'aborted') await this.#save();
  }

  async #save(): Promise<void> {
    const { model, options: o, report, position: p } = this.run;
    if (this.#savedAt === p.globalStep) return;
    const state = checkpointState(this.run, p);
    // Saved weights are the ordinary model's, also mid-epoch while the feature cache has fc6 composed.
    const save = () => saveTrainingCheckpoint(this.dir, model, state, o.keepCheckpoints);
    report.checkpoint = await (this.run.cache ? this.run.cache.ordinary(model, save) : save());
    this.#savedAt = p.globalStep;
  }
}

function checkpointState(run: TrainingRun, p: RunPosition): CheckpointState {
  const { model, options: o, report, data } = run;
  return {
    format: CHECKPOINT_FORMAT,
    version: 1,
    arch: model.arch,
    classes: report.classes,
    seed: o.seed,
    epoch: p.epoch,
    step: p.step,
    globalStep: p.globalStep,
    stepsPerEpoch: run.stepsPerEpoch,
    batchSize: o.batchSize,
    trainCount: data.train.items.length,
    optimizer: o.optimizer.type,
    running: { ...p.running },
    report: { ...report, skipped: [], resumedFrom: undefined, checkpoint: undefined },
    sinceBest: p.sinceBest,
  };
}
