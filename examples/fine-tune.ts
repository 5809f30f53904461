// Fine-tune on a labelled folder (one sub-folder per class), with an HTML
// report and checkpoints, then save a .pth that PyTorch and vgg() load.
//   npx tsx examples/fine-tune.ts data/train tuned.pth
import { vgg } from 'vgg-native';

async function main(train: string, out: string): Promise<void> {
  const model = await vgg('vgg11_bn', { weights: 'imagenet' });
  try {
    const report = await model.fineTune({
      train, // 20% held out for validation (options.valFraction)
      epochs: 5,
      imageSize: 224,
      report: 'report.html',
      checkpointDir: 'checkpoints',
      onProgress: (p) => {
        if (p.warning) console.warn(p.warning);
      },
    });
    console.log(`best epoch ${report.bestEpoch}: validation top-1 ${(report.best.valTop1 * 100).toFixed(1)}%`);
    await model.save(out);
  } finally {
    model.dispose();
  }
}

main(process.argv[2] ?? 'data/train', process.argv[3] ?? 'tuned.pth').catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
