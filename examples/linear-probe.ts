// Transfer learning in seconds: a frozen trunk computes each image's features
// once (cacheFeatures), then only the classifier trains on them.
//   npx tsx examples/linear-probe.ts data/train
import { vgg } from 'vgg-native';

async function main(train: string): Promise<void> {
  const model = await vgg('vgg16_bn', { weights: 'imagenet', frozenStages: 5 });
  try {
    const report = await model.fineTune({ train, epochs: 10, freeze: 'features', cacheFeatures: true });
    console.log(`validation top-1 ${(report.best.valTop1 * 100).toFixed(1)}%, features cached in ${report.featureCacheSeconds?.toFixed(1)} s`);
  } finally {
    model.dispose();
  }
}

main(process.argv[2] ?? 'data/train').catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
