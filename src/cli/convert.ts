// `convert`: rewrite any weights vgg-native reads as a .pth PyTorch loads.
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { UsageError, withModel, withModelFlags, type ModelFlags } from './common';
import { printJson } from './json';

interface ConvertFlags extends ModelFlags {
  layout: string;
  json?: boolean;
}

export function registerConvert(program: Command): void {
  withModelFlags(program.command('convert').description('rewrite weights (.pth, .onnx, .model, registry weights) as a .pth PyTorch loads'))
    .argument('<out>', 'the .pth to write')
    .option('-l, --layout <layout>', "'mmcls' or 'torchvision'", 'mmcls')
    .option('--json', 'print {out, arch, layout, bytes} as JSON')
    .action(async (out: string, flags: ConvertFlags) => {
      if (!flags.weights) throw new UsageError('convert needs --weights <weights>');
      if (flags.layout !== 'mmcls' && flags.layout !== 'torchvision')
        throw new UsageError(`--layout must be 'mmcls' or 'torchvision', got '${flags.layout}'`);
      const layout = flags.layout;
      await withModel(flags, async (model) => {
        await model.save(out, { layout });
        const bytes = fs.statSync(out).size;
        if (flags.json) printJson({ out, arch: model.arch, layout, bytes });
        else console.log(`wrote ${out} (${model.arch}, ${layout} layout, ${(bytes / 2 ** 20).toFixed(1)} MiB)`);
      });
    });
}
