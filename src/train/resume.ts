// Resuming fineTune: find the checkpoint options.resume names (or the newest
// in checkpointDir), refuse one written by a different run before the model
// changes, and continue its report and position.
import type { ModelCore } from '../core/model-core';
import type { DatasetProblem } from '../data/dataset';
import { ModelError } from '../errors';
import { findCheckpoint, readCheckpointState, type CheckpointState } from './checkpoint';
import type { RunPosition } from './observer';
import type { ResolvedFineTune } from './options';
import type { EpochReport, FineTuneReport } from './result';

/** A checkpoint to continue from: its folder and the state it recorded. */
export interface ResumePoint {
  dir: string;
  state: CheckpointState;
}

/** What must match between the checkpoint's run and this one for the data order to continue. */
export type RunIdentity = Pick<CheckpointState, 'arch' | 'classes' | 'seed' | 'stepsPerEpoch' | 'batchSize' | 'trainCount' | 'optimizer'>;

/** The checkpoint to resume from, or undefined to start afresh. @throws ModelError 'BAD_RESUME' */
export async function findResumePoint(o: ResolvedFineTune, now: RunIdentity): Promise<ResumePoint | undefined> {
  if (o.resume === false) return undefined;
  const where = typeof o.resume === 'string' ? o.resume : o.checkpointDir!;
  const dir = await findCheckpoint(where);
  if (!dir) {
    if (typeof o.resume !== 'string') return undefined;
    throw new ModelError(
      'BAD_RESUME',
      `options.resume: no training checkpoint in "${where}" (expected state.json there, or a 'latest' file naming one)`,
    );
  }
  const state = await readCheckpointState(dir);
  checkResumable(state, now, dir);
  return { dir, state };
}

/** The identity of a run of `model` on these data and options. */
export function runIdentity(model: ModelCore, o: ResolvedFineTune, classes: string[], trainCount: number, stepsPerEpoch: number): RunIdentity {
  return { arch: model.arch, classes, seed: o.seed, stepsPerEpoch, batchSize: o.batchSize, trainCount, optimizer: o.optimizer.type };
}

/** The report and position to start from: the checkpoint's, or an empty report at step 0. */
export function startingPoint(
  resume: ResumePoint | undefined,
  fresh: { classes: string[]; skipped: DatasetProblem[]; trainCount: number; valCount: number },
): { report: FineTuneReport; position: RunPosition } {
  const s = resume?.state;
  if (!s) {
    return {
      report: {
        epochs: [],
        bestEpoch: -1,
        best: undefined as unknown as EpochReport,
        stoppedEarly: false,
        warnings: [],
        ...fresh,
      },
      position: { epoch: 0, step: 0, globalStep: 0, sinceBest: 0, running: emptyTotals() },
    };
  }
  return {
    report: {
      ...(s.report as FineTuneReport),
      warnings: (s.report as Partial<FineTuneReport>).warnings ?? [], // absent in checkpoints of earlier versions
      skipped: fresh.skipped,
      resumedFrom: { epoch: s.epoch, step: s.step, globalStep: s.globalStep, checkpoint: resume!.dir },
    },
    position: { epoch: s.epoch, step: s.step, globalStep: s.globalStep, sinceBest: s.sinceBest, running: { ...s.running } },
  };
}

export function emptyTotals(): RunPosition['running'] {
  return { lossSum: 0, correct: 0, seen: 0, seconds: 0, images: 0 };
}

function checkResumable(state: CheckpointState, now: RunIdentity, dir: string): void {
  const diffs: string[] = [];
  if (state.arch !== now.arch) diffs.push(`arch ${state.arch} vs ${now.arch}`);
  if (JSON.stringify(state.classes) !== JSON.stringify(now.classes))
    diffs.push(`classes [${state.classes.slice(0, 5).join(', ')}…] vs [${now.classes.slice(0, 5).join(', ')}…]`);
  if (state.seed !== now.seed) diffs.push(`seed ${state.seed} vs ${now.seed}`);
  if (state.batchSize !== now.batchSize) diffs.push(`batchSize ${state.batchSize} vs ${now.batchSize}`);
  if (state.trainCount !== now.trainCount) diffs.push(`${state.trainCount} vs ${now.trainCount} training images`);
  else if (state.stepsPerEpoch !== now.stepsPerEpoch) diffs.push(`${state.stepsPerEpoch} vs ${now.stepsPerEpoch} steps per epoch`);
  if (state.optimizer !== now.optimizer) diffs.push(`optimizer ${state.optimizer} vs ${now.optimizer}`);
  if (diffs.length > 0) {
    throw new ModelError(
      'BAD_RESUME',
      `Cannot resume from "${dir}": it was written by a different run (checkpoint vs now: ${diffs.join('; ')}). ` +
        'Resume with the same data, seed, batchSize and optimizer, or start afresh without options.resume',
    );
  }
}
