// `vgg-native demo`: the main job in one command, offline and in about a
// minute on two cores (src/demo/job.ts does the work). It prints the folder
// first, a line as each phase starts, the held-out crops' predictions, and
// at the end where everything is and what each phase took; `--json` prints
// one document with every path and figure instead.
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { DEMO_ARCH, DEMO_FULL_EPOCHS, DEMO_IMAGE_SIZE, runDemo, type DemoPhase, type DemoResult } from '../demo/job';
import { demoFolderProblem, isInside, newDemoFolder, prepareDemoFolder } from '../demo/folder';
import { packageRoot } from '../fs/package';
import type { Device } from '../options';
import { intArg, UsageError, withModelFlags, type ModelFlags } from './common';
import { printJson } from './json';
import { downloadBar, phaseBar } from './progress';
import { cliState } from './state';

interface DemoFlags extends ModelFlags {
  out?: string;
  fullEpochs: number;
  json?: boolean;
}

/** What each phase says when it starts. */
function phaseLine(phase: DemoPhase, flags: DemoFlags): string {
  switch (phase) {
    case 'data':
      return `the dataset: ${DEMO_IMAGE_SIZE}x${DEMO_IMAGE_SIZE} crops of three photographs (cat, coffee, astronaut), training and validation crops from different regions`;
    case 'model':
      return flags.weights
        ? `the model: weights ${flags.weights}${flags.arch ? ` (${flags.arch})` : ''}, the last layer sized for the 3 classes`
        : `the model: ${flags.arch ?? DEMO_ARCH}, randomly initialised (no pretrained weights: the demo runs offline), with a 3-class head`;
    case 'transfer':
      return 'transfer learning: the trunk frozen, its outputs computed once, the classifier trained on them for 2 epochs';
    case 'full':
      return `full fine-tune: every layer, ${flags.fullEpochs} epoch${flags.fullEpochs === 1 ? '' : 's'} at a low learning rate`;
    case 'evaluate':
      return 'evaluating on the validation crops';
    case 'save':
      return 'saving model.pth';
    case 'classify':
      return 'loading model.pth back, classifying held-out crops and explaining each with Grad-CAM';
  }
}

const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;

/** The folder to write: --out (checked), else a new one under the temp folder. @throws UsageError for a folder the demo may not write */
function chooseFolder(out: string | undefined): string {
  const root = packageRoot();
  if (out !== undefined) {
    const problem = demoFolderProblem(out, root);
    if (problem) throw new UsageError(`--out ${problem}`);
    return path.resolve(out);
  }
  if (isInside(os.tmpdir(), root)) {
    throw new UsageError(`the temp folder ${os.tmpdir()} is inside the vgg-native package (${root}): give --out DIR outside it`);
  }
  return newDemoFolder();
}

/** The human summary: predictions, then where everything is, then the seconds. */
function printSummary(r: DemoResult): void {
  const rel = (p: string) => path.relative(r.out, p);
  const rows = r.predictions.map((p) => [
    rel(p.image),
    p.trueLabel,
    `${p.label} (${pct(p.probability)})`,
    p.label === p.trueLabel ? 'ok' : 'WRONG',
    rel(p.gradcam),
  ]);
  const header = ['held-out image', 'true', 'predicted (prob)', '', 'Grad-CAM'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i])).join('  ')}`.trimEnd();
  console.log('');
  console.log(line(header));
  for (const row of rows) console.log(line(row));

  const train = r.data.counts.reduce((n, c) => n + c.train, 0);
  const val = r.data.counts.reduce((n, c) => n + c.val, 0);
  const accuracy = r.full
    ? `transfer learning ${pct(r.transfer.valTop1)}, after the full fine-tune ${pct(r.full.valTop1)}`
    : `transfer learning ${pct(r.transfer.valTop1)}`;
  console.log('');
  console.log(`Validation top-1: ${accuracy}; the saved model: ${pct(r.evaluation.top1)} of ${r.evaluation.count} crops`);
  console.log(`  per class: ${r.evaluation.perClass.map((c) => `${c.label} ${pct(c.top1)}`).join(', ')}`);
  console.log('');
  console.log(`Where everything is: ${r.out}`);
  const items: Array<[string, string]> = [
    ['data/', `the dataset: train/<class>/*.png (${train} crops), val/<class>/*.png (${val} crops)`],
    [rel(r.transfer.report), 'training report of the transfer learning (open it in a browser)'],
  ];
  if (r.full) items.push([rel(r.full.report), 'training report of the full fine-tune']);
  items.push(
    [rel(r.model), `the model (${r.arch}, mmcls layout): vgg-native classify -w ${r.model} <image>; PyTorch: torch.load(path, weights_only=True)`],
    [`${rel(r.gradcamDir)}/`, 'Grad-CAM of each held-out crop: the crop, then where the evidence for the predicted class lies'],
  );
  const w = Math.max(...items.map(([name]) => name.length));
  for (const [name, what] of items) console.log(`  ${name.padEnd(w)}  ${what}`);
  const s = r.seconds;
  const phases = (Object.keys(s) as Array<keyof typeof s>).filter((k) => k !== 'total' && (k !== 'full' || r.full));
  console.log('');
  console.log(`Seconds: ${phases.map((k) => `${k} ${s[k].toFixed(1)}`).join(', ')}; total ${s.total.toFixed(1)}`);
}

/**
 * Registers `demo` on the program.
 *
 * @param program - the vgg-native command
 * @example
 * registerDemo(program); // vgg-native demo [--out DIR] [--full-epochs N] [--weights imagenet] [--json]
 */
export function registerDemo(program: Command): void {
  withModelFlags(
    program
      .command('demo')
      .description(
        `the main job, offline, in about a minute: build a small real-image dataset, fine-tune (${DEMO_ARCH} from a random ` +
          'initialisation unless --arch/--weights say otherwise), evaluate, write a training report, save a .pth, classify ' +
          'held-out images with Grad-CAM; prints where everything is',
      ),
  )
    .option('-o, --out <dir>', 'folder for everything the demo writes (default: a new vgg-native-demo-<date>-* folder in the temp folder)')
    .option('--full-epochs <n>', 'epochs of the full fine-tune after transfer learning (0 skips it)', intArg('--full-epochs', 0), DEMO_FULL_EPOCHS)
    .option('--json', 'print one JSON document at the end: every path, accuracy and the seconds per phase')
    .action(async (flags: DemoFlags) => {
      const out = chooseFolder(flags.out);
      prepareDemoFolder(out);
      const human = !flags.json;
      if (human) console.log(`vgg-native demo: writing to ${out}`);
      const bar = phaseBar(human);
      const download = downloadBar(!cliState.quiet);
      let step = 0;
      const steps = flags.fullEpochs > 0 ? 7 : 6;
      let result: DemoResult;
      try {
        result = await runDemo({
          out,
          fullEpochs: flags.fullEpochs,
          ...(flags.arch ? { arch: flags.arch } : {}),
          ...(flags.weights ? { weights: flags.weights, onDownloadProgress: download.update } : {}),
          ...(flags.device ? { device: flags.device as Device } : {}),
          ...(flags.threads ? { threads: flags.threads } : {}),
          onPhase: (phase) => {
            download.stop();
            bar.stop();
            step++;
            if (human) console.log(`[${step}/${steps}] ${phaseLine(phase, flags)}`);
          },
          onStep: (phase, p) => {
            bar.update(phase, p);
            if (p.warning) process.stderr.write(`\nvgg-native: warning: ${p.warning}\n`);
          },
        });
      } finally {
        bar.stop();
        download.stop();
      }
      if (flags.json) printJson(result);
      else printSummary(result);
    });
}
