// Image embeddings for retrieval or a classifier of your own: pool5 features,
// L2-normalised, and the cosine similarity of every pair.
//   npx tsx examples/features.ts a.jpg b.jpg c.jpg
import { vgg } from 'vgg-native';

async function main(paths: string[]): Promise<void> {
  const model = await vgg('vgg16', { weights: 'imagenet' });
  try {
    const f = await model.extractFeatures(paths, { layer: 'pool5', normalize: true }); // Tensor [N, 512]
    const d = f.shape[1];
    for (let i = 0; i < paths.length; i++) {
      for (let j = i + 1; j < paths.length; j++) {
        let dot = 0;
        for (let k = 0; k < d; k++) dot += f.data[i * d + k] * f.data[j * d + k];
        console.log(`${paths[i]} ~ ${paths[j]}: ${dot.toFixed(3)}`);
      }
    }
  } finally {
    model.dispose();
  }
}

main(process.argv.slice(2)).catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
