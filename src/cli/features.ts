// `vgg-native features <images...>`: one layer's activations as .npy or JSON lines.
import { type Command, Option } from 'commander';
import { ImageInputError } from '../image/errors';
import { FEATURE_LAYERS, type FeatureLayer, type Vgg } from '../model';
import type { Tensor } from '../tensor';
import { intArg, requireModelSource, UsageError, withModel, withModelFlags, type ModelFlags } from './common';
import { collectImages } from './images';
import { writeNpy } from './npy';
import { progressBar, type Progress } from './progress';
import { writeFileAtomic } from '../fs/atomic-file';

interface FeaturesFlags extends ModelFlags {
  layer: FeatureLayer;
  normalize?: boolean;
  out?: string;
  json?: boolean;
  batchSize?: number;
  progress: boolean;
}

/** Shortest decimal that reads back as the same float32. */
function f32(v: number): number {
  return Number(v.toPrecision(9));
}

/**
 * Features of all `paths` as one [N, ...] tensor. Runs in chunks of a few
 * batches so the progress bar moves; each chunk is batched and pipelined.
 */
async function extractAll(model: Vgg, paths: string[], flags: FeaturesFlags, bar: Progress): Promise<Tensor> {
  const batchSize = flags.batchSize ?? (model.device.startsWith('cuda') ? 32 : 8);
  const chunkSize = batchSize * 4;
  let data: Float32Array | undefined;
  let rest: number[] = [];
  let size = 0;
  for (let start = 0; start < paths.length; start += chunkSize) {
    const chunk = paths.slice(start, start + chunkSize);
    let t: Tensor;
    try {
      t = await model.extractFeatures(chunk, { layer: flags.layer, normalize: flags.normalize ?? false, batchSize });
    } catch (e) {
      if (e instanceof ImageInputError && e.index !== undefined) throw e.withIndex(start + e.index);
      throw e;
    }
    if (!data) {
      rest = t.shape.slice(1);
      size = rest.reduce((a, b) => a * b, 1);
      data = new Float32Array(paths.length * size);
    } else if (t.shape.slice(1).join() !== rest.join()) {
      throw new UsageError(`'${flags.layer}' has shape [${t.shape.slice(1).join(', ')}] for ${chunk[0]} but [${rest.join(', ')}] for earlier images`);
    }
    data.set(t.data, start * size);
    bar.increment(chunk.length);
  }
  return { data: data!, shape: [paths.length, ...rest] };
}

export function registerFeatures(program: Command): void {
  withModelFlags(
    program
      .command('features')
      .description("one layer's activations for images, as a .npy array [N, ...] (rows in input order) or JSON lines")
      .argument('<images...>', 'image files or folders (walked recursively, sorted by name)'),
  )
    .addOption(new Option('-l, --layer <layer>', 'activation to return').choices(FEATURE_LAYERS).default('pool5'))
    .option('-n, --normalize', 'divide each row by its L2 norm')
    .option('-o, --out <file>', 'where to write: a .npy file, or JSON lines with --json (default stdout for --json)')
    .option('--json', 'JSON lines {"path", "shape", "features"} instead of .npy')
    .option('-b, --batch-size <n>', 'images per forward pass', intArg('--batch-size'))
    .option('--no-progress', 'no progress bar')
    .action(async (images: string[], flags: FeaturesFlags) => {
      requireModelSource(flags, 'features');
      if (!flags.json && !flags.out) throw new UsageError('features needs --out <file.npy> (or --json to print JSON lines)');
      const paths = await collectImages(images);
      await withModel(flags, async (model) => {
        const bar = progressBar(paths.length, flags.progress && (flags.out !== undefined || !process.stdout.isTTY));
        let t: Tensor;
        try {
          t = await extractAll(model, paths, flags, bar);
        } finally {
          bar.stop();
        }
        const rowShape = t.shape.slice(1);
        const size = rowShape.reduce((a, b) => a * b, 1);
        if (flags.json) {
          const lines = paths.map((p, i) =>
            JSON.stringify({ path: p, shape: rowShape, features: Array.from(t.data.subarray(i * size, (i + 1) * size), f32) }),
          );
          const text = lines.join('\n') + '\n';
          if (flags.out) await writeFileAtomic(flags.out, text);
          else process.stdout.write(text);
        } else {
          await writeNpy(flags.out!, t);
        }
        if (flags.out) {
          console.log(
            `wrote ${flags.out}: ${flags.layer}${flags.normalize ? ' (L2-normalised)' : ''} [${t.shape.join(', ')}] float32, ` +
              `rows in input order (${model.arch})`,
          );
        }
      });
    });
}
