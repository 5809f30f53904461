// Training checkpoints: weights (mmcls .pth), optimizer state (LibTorch
// archive) and a JSON of where training stands, written to a temp folder and
// renamed into place so a crash leaves either the old or the new checkpoint,
// never half of one. `latest` (itself replaced by rename) names the newest.
import { ModelError } from '../errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelCore } from '../core/model-core';
import { readWeights } from '../weights';
import { removeStaleTempsIn, syncDir, tempNameFor, writeFileAtomic } from '../fs/atomic-file';

export const CHECKPOINT_FORMAT = 'vgg-native-finetune';
const LATEST = 'latest';
const STATE = 'state.json';
const MODEL = 'model.pth';
const OPTIMIZER = 'optimizer.pt';

export interface CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  version: 1;
  arch: string;
  classes: string[];
  seed: number;
  /** The epoch to run next and the step within it to start at. */
  epoch: number;
  step: number;
  /** Optimizer steps taken so far: the learning-rate schedule's (and dropout seeds') position. */
  globalStep: number;
  /** What must match for the data order to continue where it stopped. */
  stepsPerEpoch: number;
  batchSize: number;
  trainCount: number;
  optimizer: string;
  /** Totals of the unfinished epoch's steps (mid-epoch checkpoints). */
  running: { lossSum: number; correct: number; seen: number; seconds: number; images: number };
  /** The report so far (finished epochs), and the early-stopping counter. */
  report: unknown;
  sinceBest: number;
}

function stepDirName(globalStep: number): string {
  return `step-${String(globalStep).padStart(9, '0')}`;
}

async function writeFileSynced(file: string, text: string): Promise<void> {
  const fh = await fs.promises.open(file, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes <dir>/step-N/{model.pth, optimizer.pt, state.json}, points `latest` at it, prunes older ones. */
export async function saveTrainingCheckpoint(dir: string, model: ModelCore, state: CheckpointState, keep: number): Promise<string> {
  await fs.promises.mkdir(dir, { recursive: true });
  const name = stepDirName(state.globalStep);
  const final = path.join(dir, name);
  // Step folders (and `latest`) half-written by a process that was killed.
  await removeStaleTempsIn(dir, (n) => /^step-\d+$/.test(n) || n === LATEST);
  const tmp = tempNameFor(final);
  await fs.promises.mkdir(tmp);
  try {
    await model.save(path.join(tmp, MODEL), 'pth', 'mmcls', { epoch: state.epoch, step: state.step, globalStep: state.globalStep });
    await model.saveOptimizer(path.join(tmp, OPTIMIZER));
    await writeFileSynced(path.join(tmp, STATE), JSON.stringify(state, null, 1));
    // The same global step saved twice (an abort right after an epoch's checkpoint) holds the same state.
    await fs.promises.rm(final, { recursive: true, force: true });
    await fs.promises.rename(tmp, final);
  } catch (err) {
    await fs.promises.rm(tmp, { recursive: true, force: true });
    throw err;
  }
  await syncDir(dir);
  await writeFileAtomic(path.join(dir, LATEST), `${name}\n`);
  await prune(dir, keep, name);
  return final;
}

async function prune(dir: string, keep: number, newest: string): Promise<void> {
  const names = (await fs.promises.readdir(dir)).filter((n) => /^step-\d+$/.test(n) && n !== newest).sort();
  const excess = names.length + 1 - keep;
  for (const n of names.slice(0, Math.max(0, excess))) await fs.promises.rm(path.join(dir, n), { recursive: true, force: true });
}

/**
 * The checkpoint folder `p` designates: a step folder itself (has state.json),
 * or a checkpointDir (its `latest`, else its newest complete step folder).
 * undefined when there is none.
 */
export async function findCheckpoint(p: string): Promise<string | undefined> {
  const abs = path.resolve(p);
  if (fs.existsSync(path.join(abs, STATE))) return abs;
  try {
    const name = (await fs.promises.readFile(path.join(abs, LATEST), 'utf8')).trim();
    if (name && fs.existsSync(path.join(abs, name, STATE))) return path.join(abs, name);
  } catch {
    /* no latest: look for step folders */
  }
  let names: string[];
  try {
    names = await fs.promises.readdir(abs);
  } catch {
    return undefined;
  }
  const complete = names.filter((n) => /^step-\d+$/.test(n) && fs.existsSync(path.join(abs, n, STATE))).sort();
  return complete.length > 0 ? path.join(abs, complete[complete.length - 1]) : undefined;
}

export async function readCheckpointState(ckpt: string): Promise<CheckpointState> {
  const file = path.join(ckpt, STATE);
  let state: CheckpointState;
  try {
    state = JSON.parse(await fs.promises.readFile(file, 'utf8')) as CheckpointState;
  } catch (err) {
    throw new ModelError('BAD_RESUME', `Cannot read the training checkpoint "${file}": ${(err as Error).message}`, { cause: err });
  }
  if (state.format !== CHECKPOINT_FORMAT || state.version !== 1) {
    throw new ModelError(
      'BAD_RESUME',
      `"${file}" is not a vgg-native fine-tuning checkpoint (format ${String(state.format)}, version ${String(state.version)})`,
    );
  }
  return state;
}

/** Loads the checkpoint's weights into the model (head already sized) and its optimizer state (optimizer already configured). */
export async function restoreWeights(ckpt: string, model: ModelCore): Promise<void> {
  const w = await readWeights(path.join(ckpt, MODEL));
  await model.loadStateDict(
    [...w.tensors].map(([name, tensor]) => ({ name, tensor })),
    true,
  );
}

export async function restoreOptimizer(ckpt: string, model: ModelCore): Promise<void> {
  await model.loadOptimizer(path.join(ckpt, OPTIMIZER));
}
