// The main job behind `vgg-native demo`, end to end and offline: crops of
// three photographs become a small labelled dataset (photo-crops.ts), a
// frozen VGG trunk's classifier learns it in seconds (fineTune with
// cacheFeatures), optionally every layer is then fine-tuned for an epoch,
// the result is evaluated, saved as a .pth, loaded back from that file, and
// the reloaded model classifies held-out crops and explains them with
// Grad-CAM. The command line (src/cli/demo.ts) only prints what this returns.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { Architecture } from '../arch';
import type { DownloadProgress } from '../hub/download';
import { isSourceName } from '../hub/registry';
import { writeFileAtomic } from '../fs/atomic-file';
import { vgg, type Vgg } from '../model';
import type { Device, VggOptions } from '../options';
import type { FineTuneOptions, FineTuneProgress } from '../train/options';
import { writePhotoCrops, type PhotoCrops } from './photo-crops';

/** The architecture trained when neither `arch` nor `weights` says otherwise: the smallest VGG with batch norm. */
export const DEMO_ARCH: Architecture = 'vgg11_bn';
/** Side of the crops and of the network's input, pixels. */
export const DEMO_IMAGE_SIZE = 64;
/** Crops cut from each photograph (train and validation together). */
export const DEMO_CROPS_PER_PHOTO = 160;
/** Held-out crops per class that the saved model classifies and explains. */
export const DEMO_HELD_OUT_PER_CLASS = 2;
/**
 * Epochs of the full fine-tune when not told otherwise: none. From the demo's random
 * initialisation one full epoch lowered validation top-1 by about 2 points at every
 * learning rate tried (SGD and AdamW, 3e-6 to 5e-4); with `--weights` it is worth one.
 */
export const DEMO_FULL_EPOCHS = 0;

/** Seeds: the crop boxes, the model's initialisation, the data order. */
const CROP_SEED = 0;
const INIT_SEED = 4;
const TRAIN_SEED = 1;
/** The fast path (classifier on cached trunk outputs), as measured in test/transfer.test.ts. */
const TRANSFER = { epochs: 2, batchSize: 32, lr: 0.003 } as const;
/**
 * The full fine-tune: every layer, batch norm kept in eval mode (`normEval`, so the
 * trunk's outputs keep the statistics the classifier was just fitted to). AdamW, whose
 * steps do not depend on the gradients' scale: the fast path standardised the trunk's
 * channels and folded that into fc6, so on a random trunk fc6's weights differ by orders
 * of magnitude between channels. Low rates: a few steps should adjust, not relearn.
 */
const FULL = { batchSize: 32, optimizer: 'adamw', lr: 1e-5, headLr: 1e-4 } as const;
/** Side of each half of a Grad-CAM picture (the crop, then its overlay), pixels. */
const GRADCAM_SIDE = 256;

/** The steps of the job, in order. */
export type DemoPhase = 'data' | 'model' | 'transfer' | 'full' | 'evaluate' | 'save' | 'classify';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** The output folder; created if missing. The caller decides it may be written (the CLI refuses the package's own folder). */
  out: string;
  /** Architecture. Default: the one of a `weights` file or registry key, else {@link DEMO_ARCH}. */
  arch?: Architecture;
  /** Weights for the trunk (a file, or a name the hub resolves, e.g. 'imagenet'), given a new 3-class head. Default: none (a randomly initialised trunk). */
  weights?: string;
  /** LibTorch device. Default: 'auto'. */
  device?: Device;
  /** LibTorch intra-op threads. Default: unchanged. */
  threads?: number;
  /** Epochs of the full fine-tune after the fast path, an integer >= 0; 0 skips it. Default: {@link DEMO_FULL_EPOCHS}. */
  fullEpochs?: number;
  /** Folder holding the photographs. Default: where Debian's python3-skimage keeps them. */
  photoDir?: string;
  /** Called when a phase starts. */
  onPhase?: (phase: DemoPhase) => void;
  /** Called after every training step of the 'transfer' and 'full' phases. */
  onStep?: (phase: 'transfer' | 'full', p: FineTuneProgress) => void;
  /** Called while named weights download. */
  onDownloadProgress?: (p: DownloadProgress) => void;
}

/** One held-out crop, classified by the model loaded back from `model.pth`. */
export interface DemoPrediction {
  /** The crop's path. */
  image: string;
  /** Its class (the folder it is in). */
  trueLabel: string;
  /** The predicted class. */
  label: string;
  /** The predicted class's softmax probability, 0..1. */
  probability: number;
  /** Its Grad-CAM picture: the crop and the map over it, side by side, PNG. */
  gradcam: string;
}

/** Validation top-1 of a training phase, and its seconds. */
export interface DemoPhaseResult {
  /** Validation top-1 after the phase's last epoch, 0..1. */
  valTop1: number;
  /** Epochs run. */
  epochs: number;
  /** The phase's HTML training report. */
  report: string;
}

/** What {@link runDemo} did and where it put everything. */
export interface DemoResult {
  /** The output folder (absolute). */
  out: string;
  /** The architecture trained. */
  arch: Architecture;
  /** The trunk's weights as given, or null for a random trunk. */
  weights: string | null;
  /** The dataset: ImageFolder roots and counts per class. */
  data: PhotoCrops & { root: string };
  /** The fast path: classifier only, on cached trunk outputs. */
  transfer: DemoPhaseResult;
  /** The full fine-tune, or null when skipped. */
  full: DemoPhaseResult | null;
  /** The saved model's evaluation on the validation crops. */
  evaluation: { top1: number; loss: number; count: number; perClass: Array<{ label: string; count: number; top1: number }> };
  /** The saved model (mmcls layout, loads with torch.load(weights_only=True)). */
  model: string;
  /** Held-out crops classified (and explained) by the model read back from {@link DemoResult.model}. */
  predictions: DemoPrediction[];
  /** The Grad-CAM folder. */
  gradcamDir: string;
  /** Wall-clock seconds per phase, and in total. */
  seconds: Record<DemoPhase | 'total', number>;
}

/**
 * Runs the demo into `options.out`: data/ (train and val crops), report.html
 * (and report-full.html after a full fine-tune), model.pth and gradcam/*.png.
 *
 * @param options - see {@link DemoOptions}
 * @returns what was measured and where every file is
 * @throws DatasetError 'NOT_FOUND' when the photographs are missing (install python3-skimage);
 *   DownloadError when named weights cannot be fetched (e.g. 'OFFLINE'); whatever vgg(), fineTune() or save() throw
 * @example
 * const r = await runDemo({ out: '/tmp/demo', fullEpochs: 0 });
 * console.log(r.evaluation.top1, r.model, r.transfer.report);
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const started = performance.now();
  const out = path.resolve(options.out);
  const fullEpochs = options.fullEpochs ?? DEMO_FULL_EPOCHS;
  const seconds = { data: 0, model: 0, transfer: 0, full: 0, evaluate: 0, save: 0, classify: 0, total: 0 };
  let phaseStart = 0;
  const phase = (p: DemoPhase): void => {
    phaseStart = performance.now();
    options.onPhase?.(p);
  };
  const done = (p: DemoPhase): void => {
    seconds[p] = (performance.now() - phaseStart) / 1000;
  };
  fs.mkdirSync(out, { recursive: true });

  phase('data');
  const root = path.join(out, 'data');
  const data = await writePhotoCrops(root, {
    size: DEMO_IMAGE_SIZE,
    perPhoto: DEMO_CROPS_PER_PHOTO,
    seed: CROP_SEED,
    ...(options.photoDir ? { photoDir: options.photoDir } : {}),
  });
  done('data');

  // A new head for the classes (random, seeded); dropout off, as the measured fast path has it.
  const base: VggOptions = { numClasses: data.classes.length, labels: data.classes, seed: INIT_SEED, dropout: 0 };
  if (options.device) base.device = options.device;
  if (options.threads) base.threads = options.threads;
  const first: VggOptions = { ...base, frozenStages: 5 };
  if (options.weights) {
    first.weights = options.weights;
    if (options.onDownloadProgress) first.onDownloadProgress = options.onDownloadProgress;
  }
  const common = { train: data.train, val: data.val, imageSize: DEMO_IMAGE_SIZE, augment: false, seed: TRAIN_SEED } as const;

  phase('model');
  // A file or a registry key names its architecture; 'imagenet' or a source name does not (vgg16 by default): the demo's.
  const arch = options.arch ?? (options.weights && !isSourceName(options.weights) ? undefined : DEMO_ARCH);
  let model: Vgg = await (arch ? vgg(arch, first) : vgg(first));
  const modelFile = path.join(out, 'model.pth');
  try {
    done('model');

    phase('transfer');
    const transferReport = path.join(out, 'report.html');
    const fast = await model.fineTune({
      ...common,
      ...TRANSFER,
      freeze: 'features',
      cacheFeatures: true,
      report: transferReport,
      onProgress: (p) => options.onStep?.('transfer', p),
    });
    const transfer = { valTop1: lastValTop1(fast.epochs), epochs: fast.epochs.length, report: fast.reportPath ?? transferReport };
    done('transfer');

    let full: DemoPhaseResult | null = null;
    if (fullEpochs > 0) {
      phase('full');
      // Freezing is fixed when a model is built: the same weights go into a model with no stage frozen
      // (built as the first one was, so what a weights file sets, such as ceilMode, stays).
      const again: VggOptions = { ...first, frozenStages: 0, normEval: true };
      const unfrozen = await (arch ? vgg(arch, again) : vgg(again));
      try {
        const state = await model.stateDict();
        await unfrozen.loadStateDict(state.map(({ name, data, shape }) => ({ name, tensor: { kind: 'array', data, shape } })));
      } catch (e) {
        unfrozen.dispose();
        throw e;
      }
      model.dispose();
      model = unfrozen;
      const fullReport = path.join(out, 'report-full.html');
      const tuned = await model.fineTune({
        ...common,
        ...FULL,
        epochs: fullEpochs,
        freeze: 'none',
        report: fullReport,
        onProgress: (p) => options.onStep?.('full', p),
      } satisfies FineTuneOptions);
      full = { valTop1: lastValTop1(tuned.epochs), epochs: tuned.epochs.length, report: tuned.reportPath ?? fullReport };
      done('full');
    }

    phase('evaluate');
    const r = await model.evaluate(data.val);
    const evaluation = { top1: r.top1, loss: r.loss, count: r.count, perClass: r.perClass };
    done('evaluate');

    phase('save');
    await model.save(modelFile);
    done('save');

    model.dispose();
    phase('classify');
    // The file just written, read back the way a user would: labels and input size come from its meta.
    model = await vgg({ weights: modelFile, ...(options.device ? { device: options.device } : {}) });
    const gradcamDir = path.join(out, 'gradcam');
    fs.mkdirSync(gradcamDir, { recursive: true });
    const predictions = await classifyHeldOut(model, data, gradcamDir);
    done('classify');

    seconds.total = (performance.now() - started) / 1000;
    return {
      out,
      arch: model.arch,
      weights: options.weights ?? null,
      data: { ...data, root },
      transfer,
      full,
      evaluation,
      model: modelFile,
      predictions,
      gradcamDir,
      seconds,
    };
  } finally {
    model.dispose();
  }
}

function lastValTop1(epochs: ReadonlyArray<{ valTop1: number }>): number {
  return epochs[epochs.length - 1].valTop1;
}

/** The first {@link DEMO_HELD_OUT_PER_CLASS} validation crops of each class, by file name. */
export function heldOutImages(data: PhotoCrops): Array<{ image: string; trueLabel: string }> {
  return data.classes.flatMap((label) => {
    const dir = path.join(data.val, label);
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.png'))
      .sort()
      .slice(0, DEMO_HELD_OUT_PER_CLASS)
      .map((f) => ({ image: path.join(dir, f), trueLabel: label }));
  });
}

/** Classifies the held-out crops and writes a Grad-CAM picture of each: `<n>-<true label>.png`, n from 1. */
async function classifyHeldOut(model: Vgg, data: PhotoCrops, gradcamDir: string): Promise<DemoPrediction[]> {
  const images = heldOutImages(data);
  const top1 = await model.classify(
    images.map((i) => i.image),
    { topK: 1, failFast: true },
  );
  const predictions: DemoPrediction[] = [];
  for (const [k, { image, trueLabel }] of images.entries()) {
    const cam = await model.explain(image);
    const gradcam = path.join(gradcamDir, `${k + 1}-${trueLabel}.png`);
    await writeFileAtomic(gradcam, await sideBySide(image, await cam.toPng()));
    const best = top1[k][0];
    predictions.push({ image, trueLabel, label: best.label, probability: best.probability, gradcam });
  }
  return predictions;
}

/** The crop and its Grad-CAM overlay, each enlarged to {@link GRADCAM_SIDE}, side by side (PNG). */
async function sideBySide(image: string, overlay: Buffer): Promise<Buffer> {
  const enlarge = (input: string | Buffer) =>
    sharp(input).removeAlpha().resize(GRADCAM_SIDE, GRADCAM_SIDE, { fit: 'fill', kernel: 'nearest' }).png().toBuffer();
  const [left, right] = await Promise.all([enlarge(image), enlarge(overlay)]);
  return sharp({ create: { width: 2 * GRADCAM_SIDE, height: GRADCAM_SIDE, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite([
      { input: left, left: 0, top: 0 },
      { input: right, left: GRADCAM_SIDE, top: 0 },
    ])
    .png()
    .toBuffer();
}
