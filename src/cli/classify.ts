// `vgg-native classify <images...>`: top-k classes per image, streamed.
import type { Command } from 'commander';
import type { Prediction } from '../inference/classify';
import { intArg, requireModelSource, withModel, withModelFlags, type ModelFlags } from './common';
import { collectImages } from './images';
import { progressBar } from './progress';

interface ClassifyFlags extends ModelFlags {
  topK: number;
  batchSize?: number;
  json?: boolean;
  progress: boolean;
}

export function formatPredictions(predictions: readonly Prediction[]): string {
  return predictions.map((p) => `${p.label} (${(p.probability * 100).toFixed(1)}%)`).join(' ');
}

export function registerClassify(program: Command): void {
  withModelFlags(
    program
      .command('classify')
      .description('top-k classes of images (files or folders, walked recursively)')
      .argument('<images...>', 'image files or folders'),
  )
    .option('-k, --top-k <k>', 'predictions per image', intArg('--top-k'), 5)
    .option('-b, --batch-size <n>', 'images per forward pass (default 8 on CPU, 32 on CUDA)', intArg('--batch-size'))
    .option('--json', 'one JSON line per image: {"path", "predictions"} or {"path", "error"}')
    .option('--no-progress', 'no progress bar (shown on a terminal when stdout is redirected)')
    .action(async (images: string[], flags: ClassifyFlags) => {
      requireModelSource(flags, 'classify');
      const paths = await collectImages(images);
      await withModel(flags, async (model) => {
        let failed = 0;
        const bar = progressBar(paths.length, flags.progress && !process.stdout.isTTY);
        try {
          const options = { topK: flags.topK, ...(flags.batchSize ? { batchSize: flags.batchSize } : {}) };
          for await (const r of model.classifyStream(paths, options)) {
            const file = paths[r.index];
            bar.increment();
            if (r.error) {
              failed++;
              if (flags.json) process.stdout.write(`${JSON.stringify({ path: file, error: r.error.message })}\n`);
              else process.stderr.write(`vgg-native: ${r.error.message}\n`);
            } else if (flags.json) {
              process.stdout.write(`${JSON.stringify({ path: file, predictions: r.predictions })}\n`);
            } else {
              process.stdout.write(`${file}: ${formatPredictions(r.predictions)}\n`);
            }
          }
        } finally {
          bar.stop();
        }
        if (failed > 0) {
          if (!flags.json) process.stderr.write(`vgg-native: ${failed} of ${paths.length} images could not be classified\n`);
          process.exitCode = 1;
        }
      });
    });
}
