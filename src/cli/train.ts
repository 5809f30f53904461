// `finetune` and `evaluate`: fine-tune on a labelled folder (or CSV) and
// score a model on one, with a progress bar when a person is watching.
import { type Command, InvalidArgumentError } from 'commander';
import type { DatasetSource } from '../data/dataset';
import type { FineTuneOptions } from '../train/options';
import { epochBar } from './progress';
import { intArg, requireModelSource, withModel, withModelFlags, type ModelFlags } from './common';

function numberArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number, got '${v}'`);
    return n;
  };
}

/** A folder, or a CSV (path,label) when the argument ends in .csv. */
function datasetArg(v: string): DatasetSource {
  return v.toLowerCase().endsWith('.csv') ? { csv: v } : v;
}

interface FineTuneFlags extends ModelFlags {
  val?: string;
  out: string;
  epochs: number;
  batchSize: number;
  imageSize: number;
  lr?: number;
  headLr?: number;
  optimizer: 'sgd' | 'adamw';
  schedule: 'constant' | 'step' | 'cosine';
  augment: boolean;
  checkpointDir?: string;
  resume?: boolean;
  seed: number;
  frozenStages?: number;
  cacheFeatures?: boolean;
  report?: string;
  json?: boolean;
  progress: boolean;
}

export function registerFineTune(program: Command): void {
  withModelFlags(program.command('finetune').description('fine-tune on a labelled image folder (root/<class>/*.jpg) or CSV, then save a .pth'))
    .argument('<train>', 'training images: a folder of class folders, or a CSV of path,label')
    .requiredOption('-o, --out <file>', 'the fine-tuned .pth to write (mmcls layout)')
    .option('--val <dataset>', 'validation images (default: a seeded 20% split of <train>)')
    .option('-e, --epochs <n>', 'epochs', intArg('--epochs'), 10)
    .option('-b, --batch-size <n>', 'global batch size', intArg('--batch-size'), 32)
    .option('-s, --image-size <n>', 'square input side', intArg('--image-size'), 224)
    .option('--lr <rate>', 'backbone learning rate', numberArg('--lr'))
    .option('--head-lr <rate>', 'learning rate of the new head', numberArg('--head-lr'))
    .option('--optimizer <name>', "'sgd' or 'adamw'", 'sgd')
    .option('--schedule <name>', "'constant', 'step' or 'cosine'", 'cosine')
    .option('--no-augment', 'no random crops, flips or colour jitter')
    .option('--frozen-stages <n>', 'freeze the first n stages (mmcls frozen_stages)', intArg('--frozen-stages', 0))
    .option('--cache-features', 'with --frozen-stages 5 and --no-augment: run the trunk once per image, train the classifier on its outputs')
    .option('--checkpoint-dir <dir>', 'write a resumable checkpoint there each epoch')
    .option('--resume', 'continue from the latest checkpoint in --checkpoint-dir')
    .option('--seed <n>', 'seed for order, split, augmentation, dropout', intArg('--seed', 0), 0)
    .option('--report <file>', 'write a self-contained HTML training report there (rewritten after every epoch)')
    .option('--json', 'print the report as JSON')
    .option('--no-progress', 'no progress bar')
    .action(async (train: string, flags: FineTuneFlags) => {
      requireModelSource(flags, 'finetune');
      const extra = flags.frozenStages !== undefined ? { frozenStages: flags.frozenStages } : {};
      await withModel(
        flags,
        async (model) => {
          const bar = epochBar(flags.progress && !flags.json);
          const options: FineTuneOptions = {
            train: datasetArg(train),
            epochs: flags.epochs,
            batchSize: flags.batchSize,
            imageSize: flags.imageSize,
            optimizer: flags.optimizer,
            schedule: flags.schedule,
            augment: flags.augment,
            seed: flags.seed,
            onProgress: (p) => {
              bar.update(p);
              if (p.warning) process.stderr.write(`\nvgg-native: warning: ${p.warning}\n`); // on stderr, also with --json
            },
          };
          if (flags.val) options.val = datasetArg(flags.val);
          if (flags.lr !== undefined) options.lr = flags.lr;
          if (flags.headLr !== undefined) options.headLr = flags.headLr;
          if (flags.frozenStages !== undefined) options.freeze = flags.frozenStages;
          if (flags.cacheFeatures) options.cacheFeatures = true;
          if (flags.checkpointDir) options.checkpointDir = flags.checkpointDir;
          if (flags.resume) options.resume = true;
          if (flags.report) options.report = flags.report;
          let report: Awaited<ReturnType<typeof model.fineTune>>;
          try {
            report = await model.fineTune(options);
          } finally {
            bar.stop();
          }
          await model.save(flags.out);
          if (flags.json) {
            console.log(JSON.stringify({ ...report, out: flags.out }));
            return;
          }
          for (const e of report.epochs) {
            const val = e.valTop1 === undefined ? '' : `, val loss ${e.valLoss?.toFixed(4)}, val top-1 ${(100 * e.valTop1).toFixed(2)}%`;
            console.log(`epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(4)}${val}, ${e.imagesPerSecond.toFixed(1)} img/s`);
          }
          console.log(`saved ${flags.out} (${model.arch}, ${model.numClasses} classes: ${model.labels?.join(', ')})`);
          if (report.reportPath) console.log(`report ${report.reportPath}`);
        },
        extra,
      );
    });
}

interface EvaluateFlags extends ModelFlags {
  batchSize?: number;
  imageSize?: number;
  json?: boolean;
}

export function registerEvaluate(program: Command): void {
  withModelFlags(program.command('evaluate').description('top-1, top-5, loss and per-class accuracy on a labelled image folder or CSV'))
    .argument('<dataset>', 'a folder of class folders, or a CSV of path,label')
    .option('-b, --batch-size <n>', 'batch size', intArg('--batch-size'))
    .option('-s, --image-size <n>', 'square input side (as in training)', intArg('--image-size'))
    .option('--json', 'print the result as JSON')
    .action(async (dataset: string, flags: EvaluateFlags) => {
      requireModelSource(flags, 'evaluate');
      await withModel(flags, async (model) => {
        const r = await model.evaluate(datasetArg(dataset), {
          ...(flags.batchSize ? { batchSize: flags.batchSize } : {}),
          ...(flags.imageSize ? { imageSize: flags.imageSize } : {}),
        });
        if (flags.json) {
          console.log(JSON.stringify(r));
          return;
        }
        console.log(`${r.count} images: top-1 ${(100 * r.top1).toFixed(2)}%, top-5 ${(100 * r.top5).toFixed(2)}%, loss ${r.loss.toFixed(4)}`);
        for (const c of r.perClass) console.log(`  ${c.label}: ${(100 * c.top1).toFixed(1)}% of ${c.count}`);
      });
    });
}
