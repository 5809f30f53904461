// `convert`: rewrite any weights vgg-native reads as a .pth or .safetensors PyTorch loads, or an ONNX graph.
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import { formatOfFile, SAVE_LAYOUTS } from '../weights/save';
import { withModel, withModelFlags, UsageError, type ModelFlags } from './common';
import { printJson } from './json';

interface ConvertFlags extends ModelFlags {
  layout?: (typeof SAVE_LAYOUTS)[number];
  json?: boolean;
}

export function registerConvert(program: Command): void {
  withModelFlags(
    program
      .command('convert')
      .description(
        'rewrite weights (.pth, .safetensors, .onnx, .model, registry weights) as a .pth or .safetensors PyTorch loads, or an .onnx onnxruntime runs',
      ),
  )
    .argument('<out>', 'the file to write: .safetensors, .onnx, else a .pth')
    .addOption(new Option('-l, --layout <layout>', 'key names of a .pth or .safetensors (default mmcls)').choices([...SAVE_LAYOUTS]))
    .option('--json', 'print {out, arch, layout, bytes} as JSON')
    .action(async (out: string, flags: ConvertFlags) => {
      if (!flags.weights) throw new UsageError('convert needs --weights <weights>');
      const layout = flags.layout;
      await withModel(flags, async (model) => {
        await model.save(out, layout ? { layout } : {});
        const bytes = fs.statSync(out).size;
        const named = formatOfFile(out) === 'onnx' ? 'onnx' : (layout ?? 'mmcls');
        if (flags.json) printJson({ out, arch: model.arch, layout: named, bytes });
        else console.log(`wrote ${out} (${model.arch}, ${named} layout, ${(bytes / 2 ** 20).toFixed(1)} MiB)`);
      });
    });
}
