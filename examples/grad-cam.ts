// Where the evidence for the top-1 class lies: a Grad-CAM overlay per image.
//   npx tsx examples/grad-cam.ts cat.jpg
import { vgg } from 'vgg-native';

async function main(paths: string[]): Promise<void> {
  const model = await vgg('vgg16', { weights: 'imagenet' });
  try {
    for (const p of paths) {
      const cam = await model.explain(p); // conv5 (stage5) of the top-1 class
      await cam.save(`${p}.cam.png`);
      console.log(`${p}: ${cam.label} (${(cam.probability * 100).toFixed(1)}%) -> ${p}.cam.png`);
    }
  } finally {
    model.dispose();
  }
}

main(process.argv.slice(2)).catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
