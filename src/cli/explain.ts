// `vgg-native explain -w model.pth image.jpg -o cam.png`: Grad-CAM of one image,
// the map blended over the crop the network saw, written atomically.
import { type Command, Option } from 'commander';
import { GRADCAM_LAYERS, type GradCamLayer } from '../inference/explain';
import { intArg, requireModelSource, withModel, withModelFlags, type ModelFlags } from './common';

interface ExplainFlags extends ModelFlags {
  output: string;
  classIndex?: number;
  layer: GradCamLayer;
  json?: boolean;
}

/**
 * Registers `explain` on the program.
 *
 * @param program - the vgg-native command
 * @example
 * registerExplain(program); // vgg-native explain -w model.pth cat.jpg -o cam.png
 */
export function registerExplain(program: Command): void {
  withModelFlags(
    program
      .command('explain')
      .description('Grad-CAM: where in an image the evidence for a class lies, as a PNG overlay')
      .argument('<image>', 'image file'),
  )
    .requiredOption('-o, --output <png>', 'where to write the overlay (PNG)')
    .option('-c, --class-index <k>', 'class to explain (default: the top-1 class)', intArg('--class-index', 0))
    .addOption(new Option('-l, --layer <layer>', 'activation to explain').choices(GRADCAM_LAYERS).default('stage5'))
    .option('--json', 'print {"path", "output", "classIndex", "label", "probability"} as JSON')
    .action(async (image: string, flags: ExplainFlags) => {
      requireModelSource(flags, 'explain');
      await withModel(flags, async (model) => {
        const cam = await model.explain(image, {
          layer: flags.layer,
          ...(flags.classIndex !== undefined ? { classIndex: flags.classIndex } : {}),
        });
        await cam.save(flags.output);
        const result = { path: image, output: flags.output, classIndex: cam.classIndex, label: cam.label, probability: cam.probability };
        if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        else process.stdout.write(`${image}: ${cam.label} (${(cam.probability * 100).toFixed(1)}%) -> ${flags.output}\n`);
      });
    });
}
