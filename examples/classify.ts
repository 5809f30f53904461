// Classify images with ImageNet weights: top-5 classes per image.
//   npx tsx examples/classify.ts cat.jpg dog.png
import { vgg } from 'vgg-native';

async function main(paths: string[]): Promise<void> {
  const model = await vgg('vgg16_bn', { weights: 'imagenet' });
  try {
    // One item per input; a bad image is an item with an error, the others still classified.
    for (const item of await model.classify(paths, { topK: 5 })) {
      console.log(paths[item.index]);
      if (item.error) console.log(`  ${item.error.name}: ${item.error.message}`);
      else for (const c of item.predictions) console.log(`  ${(c.probability * 100).toFixed(1).padStart(5)}%  ${c.label}`);
    }
  } finally {
    model.dispose();
  }
}

main(process.argv.slice(2)).catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
